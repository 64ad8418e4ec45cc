// flotilla-node run, end to end: a real tracker (init, publish, serve on
// loopback) and real node processes in http-only mode.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <sstream>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

class NodeE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-e2e-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_)) << RunShell("cat " + dir_ + "/init.log").output;
  }
  void TearDown() override {
    node_.Stop();
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }

  void PublishAndServe(int random_kib) {
    ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", random_kib, "1"))
        << RunShell("cat " + dir_ + "/publish.log").output;
    ASSERT_TRUE(tracker_.Start(dir_, repo_));
  }
  Json Config(const std::string& data_dir) {
    return NodeConfigFor("kiosk-1", data_dir, tracker_.url(), repo_ + "/metadata/1.root.json",
                         "kiosk");
  }
  bool WaitReady(const std::string& data_dir, uint64_t release, seconds timeout) {
    return WaitFor(
        [&] {
          Json a = AppState(data_dir, "kiosk");
          return a.is_object() && a["ready_release"] == release;
        },
        timeout);
  }
  // The release's artifacts as "sha256:<hex> length" lines, from the repository's targets.
  // kind: "full" or "delta".
  std::vector<std::pair<std::string, uint64_t>> Artifacts(int release,
                                                          const std::string& kind = "full") {
    auto r = RunShell(
        "python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))[\"signed\"]"
        "[\"targets\"][sys.argv[2]][\"custom\"][\"flotilla\"]; "
        "[print(a[\"sha256\"], a[\"length\"]) for a in t[\"artifacts\"] "
        "if a[\"kind\"] == sys.argv[3]]' " +
        repo_ + "/metadata/targets.json apps/kiosk/release-" + std::to_string(release) + ".json " +
        kind);
    std::vector<std::pair<std::string, uint64_t>> out;
    std::istringstream in(r.output);
    std::string sha;
    uint64_t length;
    while (in >> sha >> length) out.emplace_back(sha, length);
    return out;
  }
  std::string Db() const { return repo_ + "/tracker.db"; }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

TEST_F(NodeE2e, EnrolsFetchesRebuildsAndReportsInHttpOnlyMode) {
  PublishAndServe(1024);
  const std::string data = dir_ + "/node";
  ASSERT_TRUE(node_.Start(dir_, Config(data)));
  ASSERT_TRUE(WaitReady(data, 1, seconds(60))) << node_.Log();

  // Credentials: 0600, and the secret never reaches the log.
  struct stat st {};
  ASSERT_EQ(::stat((data + "/credentials.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto creds = Json::parse(*ReadTextFileBounded(data + "/credentials.json", 4096));
  EXPECT_EQ(node_.Log().find(creds["credential"].get<std::string>()), std::string::npos);
  EXPECT_EQ(node_.Log().find(creds["passkey"].get<std::string>()), std::string::npos);

  // The report reached the tracker with the origin bytes of the artifacts.
  uint64_t artifact_bytes = 0;
  for (const auto& [sha, length] : Artifacts(1)) artifact_bytes += length;
  ASSERT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(Db(),
                              "SELECT release, state, bytes_from_origin FROM device_status") ==
               "1|idle|" + std::to_string(artifact_bytes) + "\n";
      },
      seconds(10)))
      << QueryTrackerDb(Db(), "SELECT * FROM device_status");
  EXPECT_EQ(AppState(data, "kiosk")["bytes_from_origin"], artifact_bytes);

  // Stopped cleanly; the store holds every signed layer and verifies.
  EXPECT_EQ(node_.Stop(), 0);
  auto verify =
      RunShell(BinaryPath("flotilla-node") + " store --store " + data + "/store verify 2>&1");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  auto layers = RunShell(BinaryPath("flotilla-node") + " store --store " + data + "/store layers");
  auto signed_layers = RunShell(
      "python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))[\"signed\"][\"targets\"]"
      "[\"apps/kiosk/release-1.json\"][\"custom\"][\"flotilla\"]; "
      "[print(l[\"diff_id\"]) for l in t[\"image\"][\"layers\"]]' " +
      repo_ + "/metadata/targets.json");
  std::istringstream in(signed_layers.output);
  int count = 0;
  for (std::string diff_id; in >> diff_id; ++count) {
    EXPECT_NE(layers.output.find(diff_id.substr(7, 12)), std::string::npos) << layers.output;
  }
  EXPECT_EQ(count, 2);
  // http-only: the artifacts are deleted once their layers are in the store.
  EXPECT_EQ(RunShell("ls " + data + "/artifacts | wc -l").output, "0\n");
}

TEST_F(NodeE2e, KilledMidTransferResumesWithoutRefetching) {
  PublishAndServe(3072);
  const std::string data = dir_ + "/node";
  Json config = Config(data);
  config["bandwidth"] = {{"down_kib_s", 1024}};
  config["http_chunk_kib"] = 128;
  auto artifacts = Artifacts(1);
  ASSERT_EQ(artifacts.size(), 2u);
  const auto& [big_sha, big_length] =
      artifacts[0].second > artifacts[1].second ? artifacts[0] : artifacts[1];
  const std::string part = data + "/artifacts/" + big_sha.substr(7) + ".part";
  int kills = 0;
  for (uint64_t threshold : {700u << 10, 1600u << 10}) {
    ASSERT_TRUE(node_.Start(dir_, config));
    ASSERT_TRUE(WaitFor(
        [&] {
          struct stat st {};
          return ::stat(part.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= threshold;
        },
        seconds(30)))
        << node_.Log();
    node_.Kill();
    ++kills;
  }
  ASSERT_TRUE(node_.Start(dir_, config));
  ASSERT_TRUE(WaitReady(data, 1, seconds(60))) << node_.Log();
  const uint64_t served = ArtifactBytesServed(tracker_.port(), big_sha);
  EXPECT_GE(served, big_length);
  EXPECT_LE(served, big_length + kills * (128u << 10)) << "served " << served;
  EXPECT_EQ(node_.Stop(), 0);
  EXPECT_EQ(
      RunShell(BinaryPath("flotilla-node") + " store --store " + data + "/store verify").exit_code,
      0);
}

TEST_F(NodeE2e, TrackerDownKeepsStateAndReportsWhyOnceBack) {
  PublishAndServe(256);
  const std::string data = dir_ + "/node";
  ASSERT_TRUE(node_.Start(dir_, Config(data)));
  ASSERT_TRUE(WaitReady(data, 1, seconds(60))) << node_.Log();
  const int port = tracker_.port();
  tracker_.Kill();
  ASSERT_TRUE(WaitFor([&] { return node_.Log().find("metadata refresh") != std::string::npos; },
                      seconds(15)));
  Json before = AppState(data, "kiosk");
  EXPECT_EQ(before["ready_release"], 1);
  EXPECT_EQ(before["phase"], "ready");
  ASSERT_TRUE(tracker_.Start(dir_, repo_, {}, port)) << "port " << port << " taken meanwhile";
  ASSERT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(Db(),
                              "SELECT count(*) FROM failures WHERE message LIKE "
                              "'cannot update:%from the tracker%'") != "0\n";
      },
      seconds(30)))
      << QueryTrackerDb(Db(), "SELECT message FROM failures") << node_.Log();
  EXPECT_EQ(AppState(data, "kiosk")["ready_release"], 1);
}

TEST_F(NodeE2e, TamperedArtifactOnTheOriginIsNeverComplete) {
  PublishAndServe(256);
  auto artifacts = Artifacts(1);
  const std::string victim = repo_ + "/artifacts/" + artifacts[0].first.substr(7);
  ASSERT_EQ(RunShell("printf 'X' | dd of=" + victim + " bs=1 seek=100 conv=notrunc 2>/dev/null")
                .exit_code,
            0);
  const std::string data = dir_ + "/node";
  ASSERT_TRUE(node_.Start(dir_, Config(data)));
  ASSERT_TRUE(WaitFor([&] { return AppState(data, "kiosk")["phase"] == "failed"; }, seconds(60)))
      << node_.Log();
  Json a = AppState(data, "kiosk");
  EXPECT_EQ(a["ready_release"], 0);
  EXPECT_EQ(a["failed_release"], 1);
  EXPECT_NE(a["last_error"].get<std::string>().find("failed verification"), std::string::npos)
      << a.dump();
  EXPECT_EQ(a["failure"], "verification") << a.dump();
  // Neither a complete file nor a partial one is left of the tampered artifact.
  EXPECT_NE(RunShell("test -e " + data + "/artifacts/" + artifacts[0].first.substr(7)).exit_code,
            0);
  EXPECT_NE(RunShell("test -e " + data + "/artifacts/" + artifacts[0].first.substr(7) + ".part")
                .exit_code,
            0);
  ASSERT_TRUE(
      WaitFor([&] { return QueryTrackerDb(Db(), "SELECT state FROM device_status") == "failed\n"; },
              seconds(10)));
}

TEST_F(NodeE2e, SecondReleaseArrivesAsDeltasAndMovesOnlyTheirBytes) {
  PublishAndServe(1024);
  const std::string data = dir_ + "/node";
  ASSERT_TRUE(node_.Start(dir_, Config(data)));
  ASSERT_TRUE(WaitReady(data, 1, seconds(60))) << node_.Log();
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 1024, "1", "2"))
      << RunShell("cat " + dir_ + "/publish.log").output;
  auto deltas = Artifacts(2, "delta");
  ASSERT_EQ(deltas.size(), 2u) << RunShell("cat " + dir_ + "/publish.log").output;
  uint64_t delta_bytes = 0, full_bytes = 0;
  for (const auto& [sha, length] : deltas) delta_bytes += length;
  for (const auto& [sha, length] : Artifacts(2, "full")) full_bytes += length;
  ASSERT_TRUE(WaitReady(data, 2, seconds(60))) << node_.Log();
  // The planner took the deltas: the bytes moved are theirs, not the image's.
  EXPECT_EQ(AppState(data, "kiosk")["bytes_from_origin"], delta_bytes);
  EXPECT_LT(delta_bytes * 10, full_bytes);
  for (const auto& [sha, length] : Artifacts(2, "full")) {
    EXPECT_EQ(ArtifactBytesServed(tracker_.port(), sha), 0u) << sha;
  }
  EXPECT_EQ(node_.Stop(), 0);
  auto verify =
      RunShell(BinaryPath("flotilla-node") + " store --store " + data + "/store verify 2>&1");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST_F(NodeE2e, DeltasOffFetchesFullLayers) {
  PublishAndServe(256);
  const std::string data = dir_ + "/node";
  Json config = Config(data);
  config["deltas"] = false;
  ASSERT_TRUE(node_.Start(dir_, config));
  ASSERT_TRUE(WaitReady(data, 1, seconds(60))) << node_.Log();
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 256, "1", "2"));
  ASSERT_TRUE(WaitReady(data, 2, seconds(60))) << node_.Log();
  uint64_t full_bytes = 0;
  for (const auto& [sha, length] : Artifacts(2, "full")) full_bytes += length;
  // Release 2's full artifacts, except a layer identical to release 1's (none here).
  EXPECT_EQ(AppState(data, "kiosk")["bytes_from_origin"], full_bytes);
}

TEST_F(NodeE2e, PeerToPeerSecondNodeTakesItsBytesFromTheFirst) {
  PublishAndServe(2048);
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  RunShell("mkdir -p " + a + " " + b);
  Json config_a = NodeConfigFor("node-a", a + "/data", tracker_.url(),
                                repo_ + "/metadata/1.root.json", "kiosk");
  config_a["transfer_mode"] = "p2p";
  config_a["listen"] = "127.0.0.2:0";
  Json config_b = config_a;
  config_b["device_name"] = "node-b";
  config_b["data_dir"] = b + "/data";
  config_b["listen"] = "127.0.0.3:0";
  NodeProcess node_a, node_b;
  ASSERT_TRUE(node_a.Start(a, config_a));
  ASSERT_TRUE(WaitReady(a + "/data", 1, seconds(90))) << node_a.Log();
  ASSERT_TRUE(node_b.Start(b, config_b));
  ASSERT_TRUE(WaitReady(b + "/data", 1, seconds(90))) << node_b.Log();
  Json state_b = AppState(b + "/data", "kiosk");
  const uint64_t peers = state_b["bytes_from_peers"], origin = state_b["bytes_from_origin"];
  EXPECT_GE(peers * 10, (peers + origin) * 8) << state_b.dump();
  EXPECT_EQ(node_b.Stop(), 0);
  EXPECT_EQ(node_a.Stop(), 0);
  EXPECT_EQ(RunShell(BinaryPath("flotilla-node") + " store --store " + b + "/data/store verify")
                .exit_code,
            0);
}

// A p2p node that starts while the tracker is down cannot announce; once it
// enrols, its fetcher is reopened with the announce URL, so a second node
// (no LAN discovery here) finds it through the tracker and takes its bytes.
TEST_F(NodeE2e, PeerToPeerNodeEnrolledLateAnnouncesToTheTracker) {
  PublishAndServe(2048);
  const int port = tracker_.port();
  tracker_.Stop();
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  RunShell("mkdir -p " + a + " " + b);
  Json config_a = NodeConfigFor("node-a", a + "/data", "http://127.0.0.1:" + std::to_string(port),
                                repo_ + "/metadata/1.root.json", "kiosk");
  config_a["transfer_mode"] = "p2p";
  config_a["listen"] = "127.0.0.2:0";
  NodeProcess node_a, node_b;
  ASSERT_TRUE(node_a.Start(a, config_a));
  ASSERT_TRUE(
      WaitFor([&] { return node_a.Log().find("enrolment") != std::string::npos; }, seconds(15)))
      << node_a.Log();
  ASSERT_TRUE(tracker_.Start(dir_, repo_, {}, port)) << "port " << port << " taken meanwhile";
  ASSERT_TRUE(WaitReady(a + "/data", 1, seconds(90))) << node_a.Log();
  EXPECT_NE(node_a.Log().find("enrolled as node-a"), std::string::npos);
  Json config_b = config_a;
  config_b["device_name"] = "node-b";
  config_b["data_dir"] = b + "/data";
  config_b["listen"] = "127.0.0.3:0";
  ASSERT_TRUE(node_b.Start(b, config_b));
  ASSERT_TRUE(WaitReady(b + "/data", 1, seconds(90))) << node_b.Log();
  Json state_b = AppState(b + "/data", "kiosk");
  const uint64_t peers = state_b["bytes_from_peers"], origin = state_b["bytes_from_origin"];
  EXPECT_GE(peers * 10, (peers + origin) * 8) << state_b.dump() << node_a.Log();
  EXPECT_EQ(node_b.Stop(), 0);
  EXPECT_EQ(node_a.Stop(), 0);
}

TEST_F(NodeE2e, FourNodesThreeTakeMostOfTheirBytesFromPeersAndTrackerAgrees) {
  PublishAndServe(3072);
  std::vector<std::string> names = {"node-a", "node-b", "node-c", "node-d"};
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  auto config_of = [&](size_t i) {
    Json c = NodeConfigFor(names[i], dir_ + "/" + names[i] + "/data", tracker_.url(),
                           repo_ + "/metadata/1.root.json", "kiosk");
    c["transfer_mode"] = "p2p";
    c["listen"] = "127.0.0." + std::to_string(2 + i) + ":0";
    return c;
  };
  for (size_t i = 0; i < names.size(); ++i) {
    RunShell("mkdir -p " + dir_ + "/" + names[i]);
    nodes.push_back(std::make_unique<NodeProcess>());
  }
  ASSERT_TRUE(nodes[0]->Start(dir_ + "/node-a", config_of(0)));
  ASSERT_TRUE(WaitReady(dir_ + "/node-a/data", 1, seconds(90))) << nodes[0]->Log();
  for (size_t i = 1; i < names.size(); ++i) {
    ASSERT_TRUE(nodes[i]->Start(dir_ + "/" + names[i], config_of(i)));
  }
  uint64_t peers_total = 0, all_total = 0;
  for (size_t i = 1; i < names.size(); ++i) {
    const std::string data = dir_ + "/" + names[i] + "/data";
    ASSERT_TRUE(WaitReady(data, 1, seconds(90))) << nodes[i]->Log();
    Json s = AppState(data, "kiosk");
    peers_total += s["bytes_from_peers"].get<uint64_t>();
    all_total += s["bytes_from_peers"].get<uint64_t>() + s["bytes_from_origin"].get<uint64_t>();
  }
  EXPECT_GE(peers_total * 10, all_total * 8) << peers_total << " of " << all_total;
  // The tracker's latest report of each node carries the node's own counters.
  for (size_t i = 0; i < names.size(); ++i) {
    Json s = AppState(dir_ + "/" + names[i] + "/data", "kiosk");
    const std::string expected = std::to_string(s["bytes_from_peers"].get<uint64_t>()) + "|" +
                                 std::to_string(s["bytes_from_origin"].get<uint64_t>()) + "\n";
    const std::string sql =
        "SELECT s.bytes_from_peers, s.bytes_from_origin FROM device_status s "
        "JOIN devices d USING(device_id) WHERE d.name = '" +
        names[i] + "'";
    EXPECT_TRUE(WaitFor([&] { return QueryTrackerDb(Db(), sql) == expected; }, seconds(10)))
        << names[i] << ": tracker " << QueryTrackerDb(Db(), sql) << " node " << expected;
  }
  for (auto& n : nodes) EXPECT_EQ(n->Stop(), 0);
}

}  // namespace
}  // namespace flotilla::testing
