// "Tracker down": pieces from a neighbour while the tracker is
// down, or while the site reaches no origin (an offline bundle spread). Real flotilla-tracker and
// flotilla-node processes in a private network namespace (so LSD's and the beacons' multicast on
// its loopback are the test's own). Node A fetches a release from the tracker; the tracker is
// stopped; node B then gets the release's signed metadata from A over the
// LAN exchange (docs/node.md), the .torrent files from A's exchange
// endpoint, and every piece from A, found by local service discovery: all
// of B's bytes come from peers, none from the origin. Both for a B that
// never reached the tracker and for an enrolled B that was off while a
// newer release came out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

class NodeTrackerDown : public ::testing::Test {
 public:
  void SetUp() override {
    auto lo = EnterNetnsWithLoopbackMulticast();
    if (!lo) GTEST_SKIP() << "cannot create a network namespace";
    ASSERT_EQ(lo->exit_code, 0) << lo->output;
    dir_ = MakeTempDir("node-tracker-down-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_));
  }
  void TearDown() override {
    a_.Stop();
    b_.Stop();
    for (const auto& data : deployed_) {
      RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data +
               "/runtime kiosk >/dev/null 2>&1");
    }
    tracker_.Stop();
    if (!dir_.empty()) RunShell("rm -rf " + dir_);
  }
  // A p2p node on 127.0.0.<host> with LSD and the LAN exchange on.
  Json P2pConfig(const std::string& name, int host, const std::string& tracker_url) {
    Json c = NodeConfigFor(name, dir_ + "/" + name + "/data", tracker_url,
                           repo_ + "/metadata/1.root.json", "kiosk");
    c["transfer_mode"] = "p2p";
    c["listen"] = "127.0.0." + std::to_string(host) + ":0";
    c["site"] = "shop-7";
    c["lan"] = {{"enabled", true},
                {"http_listen", "127.0.0.1:0"},  // a beacon's source address
                {"interface", "127.0.0.1"},
                {"beacon_interval_s", 1}};
    return c;
  }
  bool StartNode(NodeProcess& node, const std::string& name, const Json& config) {
    RunShell("mkdir -p " + dir_ + "/" + name);
    return node.Start(dir_ + "/" + name, config);
  }
  bool WaitReady(const std::string& name, uint64_t release, seconds timeout) {
    return WaitFor(
        [&] { return AppState(dir_ + "/" + name + "/data", "kiosk")["ready_release"] == release; },
        timeout);
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  NodeProcess a_, b_;
  std::vector<std::string> deployed_;  // data dirs of nodes that run the app
};

TEST_F(NodeTrackerDown, NeighbourServesEveryPieceWhileTheTrackerIsDown) {
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 2048, "1"));
  const uint64_t artifact_bytes = FullArtifactBytes(repo_, "kiosk", 1);
  ASSERT_GT(artifact_bytes, 2000u * 1024);
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  const std::string tracker_url = tracker_.url();
  ASSERT_TRUE(StartNode(a_, "a", P2pConfig("a", 2, tracker_url)));
  ASSERT_TRUE(WaitReady("a", 1, seconds(60))) << a_.Log();

  // The tracker goes away; B, which never reached it, starts.
  tracker_.Stop();
  ASSERT_TRUE(StartNode(b_, "b", P2pConfig("b", 3, tracker_url)));
  ASSERT_TRUE(WaitReady("b", 1, seconds(90))) << b_.Log();

  Json b = AppState(dir_ + "/b/data", "kiosk");
  std::printf("B: %s; signed full artifacts: %llu bytes\n", b.dump().c_str(),
              static_cast<unsigned long long>(artifact_bytes));
  EXPECT_EQ(b["bytes_from_peers"].get<uint64_t>(), artifact_bytes) << b.dump();
  EXPECT_EQ(b["bytes_from_origin"].get<uint64_t>(), 0u) << b.dump();
  EXPECT_NE(b_.Log().find("taken from neighbour a"), std::string::npos) << b_.Log();
  EXPECT_EQ(b_.Stop(), 0);
  EXPECT_EQ(
      RunShell(BinaryPath("flotilla-node") + " store --store " + dir_ + "/b/data/store verify")
          .exit_code,
      0);
}

TEST_F(NodeTrackerDown, EnrolledNodeGetsANewerReleaseFromItsNeighbourWhileTheTrackerIsDown) {
  // Both nodes enrol and take release 1 while the tracker is up.
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 256, "1"));
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  const std::string tracker_url = tracker_.url();
  ASSERT_TRUE(StartNode(a_, "a", P2pConfig("a", 2, tracker_url)));
  ASSERT_TRUE(StartNode(b_, "b", P2pConfig("b", 3, tracker_url)));
  ASSERT_TRUE(WaitReady("a", 1, seconds(60))) << a_.Log();
  ASSERT_TRUE(WaitReady("b", 1, seconds(60))) << b_.Log();
  ASSERT_EQ(b_.Stop(), 0);
  ASSERT_EQ(::access((dir_ + "/b/data/credentials.json").c_str(), F_OK), 0);

  // Release 2 reaches A alone, from the origin; then the tracker goes away.
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 2048, "2"));
  ASSERT_TRUE(WaitReady("a", 2, seconds(60))) << a_.Log();
  Json a = AppState(dir_ + "/a/data", "kiosk");
  const uint64_t release_bytes =
      a["bytes_from_peers"].get<uint64_t>() + a["bytes_from_origin"].get<uint64_t>();
  ASSERT_GT(release_bytes, 2000u * 1024) << a.dump();
  tracker_.Stop();

  // B comes back: metadata, torrents and pieces of release 2 all from A.
  ASSERT_TRUE(StartNode(b_, "b", P2pConfig("b", 3, tracker_url)));
  ASSERT_TRUE(WaitReady("b", 2, seconds(90))) << b_.Log();
  Json b = AppState(dir_ + "/b/data", "kiosk");
  std::printf("A: %s\nB: %s\n", a.dump().c_str(), b.dump().c_str());
  EXPECT_EQ(b["bytes_from_peers"].get<uint64_t>(), release_bytes) << b.dump();
  EXPECT_EQ(b["bytes_from_origin"].get<uint64_t>(), 0u) << b.dump();
  EXPECT_NE(b_.Log().find("taken from neighbour a"), std::string::npos) << b_.Log();
  EXPECT_EQ(b_.Stop(), 0);
  EXPECT_EQ(
      RunShell(BinaryPath("flotilla-node") + " store --store " + dir_ + "/b/data/store verify")
          .exit_code,
      0);
}

using NodeTrackerDownFixture = NodeTrackerDown;

// The sum of the origin's flotilla_artifact_bytes_served_total.
uint64_t OriginBytesServed(int port) {
  auto r = RunShell("curl -sf http://127.0.0.1:" + std::to_string(port) +
                    "/metrics | awk '/^flotilla_artifact_bytes_served_total/ {s += $2} END "
                    "{printf \"%d\", s}'");
  return std::strtoull(r.output.c_str(), nullptr, 10);
}

// How device A takes the bundle: from its import directory while it runs,
// or with `flotilla-node import` before it first starts.
enum class ImportWay { kImportDirectory, kWhileStopped };

// An offline bundle spreads over a site: A imports release 1; B, C and D
// take its signed metadata and the .torrent files from A's exchange endpoint
// and every piece from A (and from each other): each one's peer bytes are
// exactly the release's artifacts, none from the origin, which nothing on
// the site reaches (`content_url`).
void SpreadFromAStick(NodeTrackerDownFixture& f, const std::string& tracker_url,
                      ImportWay way = ImportWay::kImportDirectory) {
  ASSERT_TRUE(PublishImage(f.dir_, f.repo_, "kiosk", 2048, "1"));
  const uint64_t artifact_bytes = FullArtifactBytes(f.repo_, "kiosk", 1);
  ASSERT_GT(artifact_bytes, 2000u * 1024);
  const std::string stick = f.dir_ + "/stick";
  auto made = RunShell("mkdir -p " + stick + " && " + BinaryPath("flotilla-tracker") +
                       " bundle --repository " + f.repo_ + " --app kiosk --release 1 --out " +
                       stick + "/kiosk-1.bundle 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(RunShell("tar tf " + stick + "/kiosk-1.bundle").output.find("torrents/"),
            std::string::npos);

  auto config = [&](const std::string& name, int host) {
    Json c = f.P2pConfig(name, host, tracker_url);
    c["content_url"] = "http://127.0.0.1:1";  // nothing listens: the origin refuses the site
    c["deploy"] = true;
    f.deployed_.push_back(f.dir_ + "/" + name + "/data");
    return c;
  };
  Json a = config("a", 2);
  if (way == ImportWay::kImportDirectory) {
    a["import_dir"] = stick;
    a["import_poll_s"] = 1;
  } else {
    // The artifacts stay in the fetcher's directory for `run` to seed.
    RunShell("mkdir -p " + f.dir_ + "/a");
    ASSERT_TRUE(WriteFileAtomic(f.dir_ + "/a/node.json", a.dump(2)).ok());
    auto imported = RunShell(BinaryPath("flotilla-node") + " import --config " + f.dir_ +
                             "/a/node.json " + stick + "/kiosk-1.bundle 2>&1");
    ASSERT_EQ(imported.exit_code, 0) << imported.output;
    EXPECT_NE(imported.output.find("artifact(s) kept for the next run to seed to the LAN"),
              std::string::npos)
        << imported.output;
    EXPECT_EQ(::access((f.dir_ + "/a/data/imported-seeds.json").c_str(), F_OK), 0);
  }
  NodeProcess c, d;
  ASSERT_TRUE(f.StartNode(f.a_, "a", a));
  ASSERT_TRUE(f.StartNode(f.b_, "b", config("b", 3)));
  ASSERT_TRUE(f.StartNode(c, "c", config("c", 4)));
  ASSERT_TRUE(f.StartNode(d, "d", config("d", 5)));
  ASSERT_TRUE(f.WaitReady("a", 1, seconds(60))) << f.a_.Log();
  ASSERT_TRUE(f.WaitReady("b", 1, seconds(90))) << f.b_.Log();
  ASSERT_TRUE(f.WaitReady("c", 1, seconds(90))) << c.Log();
  ASSERT_TRUE(f.WaitReady("d", 1, seconds(90))) << d.Log();
  // All four run it.
  for (const std::string name : {"a", "b", "c", "d"}) {
    EXPECT_TRUE(WaitFor(
        [&] {
          Json s = AppState(f.dir_ + "/" + name + "/data", "kiosk");
          return s["running_release"] == 1 && s["phase"] == "running";
        },
        seconds(60)))
        << name << AppState(f.dir_ + "/" + name + "/data", "kiosk").dump();
  }

  Json imported = AppState(f.dir_ + "/a/data", "kiosk");
  EXPECT_EQ(imported["bytes_from_peers"], 0) << imported.dump();
  EXPECT_EQ(imported["bytes_from_origin"], 0) << imported.dump();
  for (const std::string name : {"b", "c", "d"}) {
    Json s = AppState(f.dir_ + "/" + name + "/data", "kiosk");
    std::printf("%s: %s; signed full artifacts: %llu bytes\n", name.c_str(), s.dump().c_str(),
                static_cast<unsigned long long>(artifact_bytes));
    EXPECT_EQ(s["bytes_from_peers"].get<uint64_t>(), artifact_bytes) << name << s.dump();
    EXPECT_EQ(s["bytes_from_origin"].get<uint64_t>(), 0u) << name << s.dump();
  }
  if (way == ImportWay::kWhileStopped) {
    EXPECT_NE(f.a_.Log().find("imported while the node was stopped"), std::string::npos);
    EXPECT_NE(::access((f.dir_ + "/a/data/imported-seeds.json").c_str(), F_OK), 0);
  }
  EXPECT_EQ(c.Stop(), 0);
  EXPECT_EQ(d.Stop(), 0);
}

TEST_F(NodeTrackerDown, ASiteTakesTheReleaseOneDeviceImportedFromAStick) {
  SpreadFromAStick(*this, "http://127.0.0.1:1");  // no tracker either
}

TEST_F(NodeTrackerDown, ASiteTakesTheReleaseOneDeviceImportedWhileStopped) {
  SpreadFromAStick(*this, "http://127.0.0.1:1", ImportWay::kWhileStopped);
}

TEST_F(NodeTrackerDown, ASiteWhoseTrackerAnswersTakesTheImportedReleaseWithNoOriginByte) {
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  SpreadFromAStick(*this, tracker_.url());
  // The devices did reach the tracker (enrolled), and its origin served nothing.
  for (const std::string name : {"a", "b"}) {
    EXPECT_EQ(::access((dir_ + "/" + name + "/data/credentials.json").c_str(), F_OK), 0) << name;
  }
  auto metrics = RunShell("curl -sf http://127.0.0.1:" + std::to_string(tracker_.port()) +
                          "/metrics | grep -c '^flotilla_'");
  ASSERT_EQ(metrics.exit_code, 0) << "the origin's metrics answer";
  EXPECT_EQ(OriginBytesServed(tracker_.port()), 0u);
}

}  // namespace
}  // namespace flotilla::testing
