// LAN metadata exchange, end to end, in a private network namespace (so the
// beacons' multicast route and port are the test's own): node A follows the
// tracker; node B cannot reach any tracker and takes A's signed metadata,
// for a first and then a newer release, verified by its own TUF client.
#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/file_io.h"
#include "metadata/tuf_time.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using metadata::FormatTufTime;
using std::chrono::seconds;

class NodeLan : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lo = EnterNetnsWithLoopbackMulticast();
    if (!lo) GTEST_SKIP() << "cannot create a network namespace";
    ASSERT_EQ(lo->exit_code, 0) << lo->output;
    dir_ = MakeTempDir("node-lan-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_));
    ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 128, "1"));
    ASSERT_TRUE(tracker_.Start(dir_, repo_));
  }
  void TearDown() override {
    a_.Stop();
    b_.Stop();
    tracker_.Stop();
    if (!dir_.empty()) RunShell("rm -rf " + dir_);
  }
  Json LanConfig(const std::string& name, const std::string& tracker_url) {
    Json c = NodeConfigFor(name, dir_ + "/" + name, tracker_url, repo_ + "/metadata/1.root.json",
                           "kiosk");
    c["site"] = "shop-7";
    c["lan"] = {{"enabled", true},
                {"http_listen", "127.0.0.1:0"},
                {"interface", "127.0.0.1"},
                {"beacon_interval_s", 1}};
    return c;
  }
  // Starts A, which follows the tracker, and B, whose tracker is a port
  // where nothing listens (only the LAN can help it); waits until A runs
  // `release` and B has taken it as its target from A's metadata.
  void StartBothUntilBTargets(uint64_t release) {
    RunShell("mkdir -p " + dir_ + "/a " + dir_ + "/b");
    ASSERT_TRUE(a_.Start(dir_ + "/a", LanConfig("a", tracker_.url())));
    ASSERT_TRUE(b_.Start(dir_ + "/b", LanConfig("b", "http://127.0.0.1:1")));
    ASSERT_TRUE(WaitFor([&] { return AppState(dir_ + "/a", "kiosk")["ready_release"] == release; },
                        seconds(60)))
        << a_.Log();
    ASSERT_TRUE(WaitFor([&] { return AppState(dir_ + "/b", "kiosk")["target_release"] == release; },
                        seconds(30)))
        << b_.Log();
  }
  std::string Timestamp(const std::string& name) {
    auto t = ReadTextFileBounded(dir_ + "/" + name + "/tuf/timestamp.json", 1 << 20);
    return t.ok() ? *t : "";
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  NodeProcess a_, b_;
};

TEST_F(NodeLan, NeighbourGivesNewerMetadataWhileTrackerUnreachable) {
  ASSERT_NO_FATAL_FAILURE(StartBothUntilBTargets(1));
  EXPECT_EQ(Timestamp("b"), Timestamp("a"));
  EXPECT_NE(b_.Log().find("taken from neighbour a"), std::string::npos) << b_.Log();

  // A newer release reaches B the same way.
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 128, "2"));
  ASSERT_TRUE(
      WaitFor([&] { return AppState(dir_ + "/a", "kiosk")["ready_release"] == 2; }, seconds(60)))
      << a_.Log();
  ASSERT_TRUE(
      WaitFor([&] { return AppState(dir_ + "/b", "kiosk")["target_release"] == 2; }, seconds(30)))
      << b_.Log();
  // B has no origin: it says why it cannot fetch, and holds nothing unverified.
  EXPECT_EQ(AppState(dir_ + "/b", "kiosk")["ready_release"], 0);
  EXPECT_TRUE(WaitFor([&] { return b_.Log().find("release 2: fetching: ") != std::string::npos; },
                      seconds(10)))
      << b_.Log();
}

// A release signed where the app key lives (docs/signing.md) lists its
// targets in the delegated role apps/kiosk: B takes that role's file from A
// too and verifies the delegation itself.
TEST_F(NodeLan, NeighbourGivesAReleaseSignedByAnOfflineAppKey) {
  tracker_.Stop();
  repo_ = dir_ + "/offline-repo";
  ASSERT_TRUE(InitOfflineRepository(dir_, repo_, "kiosk"))
      << RunShell("cat " + dir_ + "/offline.log").output;
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 128, "3", "1"));
  ASSERT_TRUE(SignRelease(dir_, repo_, "kiosk", 1))
      << RunShell("cat " + dir_ + "/offline.log").output;
  ASSERT_TRUE(tracker_.Start(dir_, repo_));

  ASSERT_NO_FATAL_FAILURE(StartBothUntilBTargets(1));
  auto role = [&](const std::string& node) {
    auto t = ReadTextFileBounded(dir_ + "/" + node + "/tuf/apps%2Fkiosk.json", 1 << 20);
    return t.ok() ? *t : "";
  };
  EXPECT_NE(role("b"), "");
  EXPECT_EQ(role("b"), role("a"));
  EXPECT_NE(b_.Log().find("taken from neighbour a"), std::string::npos) << b_.Log();
}

// The offline validity window (docs/metadata.md): B's time (its time floor,
// as provisioning may write it) is 10 days ahead, so A's fresh metadata has
// expired for B. Release 2 carries a 30-day window under a root that allows
// 90: B, cut from the tracker, takes it from A all the same, and its floor
// stays where it was.
TEST_F(NodeLan, NeighbourMetadataExpiredForThisDeviceIsTakenWithinTheOfflineWindow) {
  auto tracker_cli = [](const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  };
  ASSERT_EQ(
      tracker_cli("stage-root --repository " + repo_ + " --offline-window-max-days 90").exit_code,
      0);
  const std::string root2 = repo_ + "/pending/2.root.json";
  ASSERT_EQ(tracker_cli("sign " + root2 + " --key " + repo_ + "/keys/root.key").exit_code, 0);
  auto accepted = tracker_cli("accept --repository " + repo_ + " " + root2);
  ASSERT_EQ(accepted.exit_code, 0) << accepted.output;
  ASSERT_TRUE(
      PublishImage(dir_, repo_, "kiosk", 128, "2", "0", nullptr, "", "--offline-valid-days 30"));
  const std::string ahead =
      FormatTufTime(std::chrono::floor<std::chrono::seconds>(SystemClock::Instance().Now()) +
                    std::chrono::hours(24 * 10)) +
      "\n";
  RunShell("mkdir -p " + dir_ + "/b/tuf");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/b/tuf/time-floor", ahead).ok());

  ASSERT_NO_FATAL_FAILURE(StartBothUntilBTargets(2));
  EXPECT_EQ(Timestamp("b"), Timestamp("a"));
  EXPECT_NE(b_.Log().find("taken from neighbour a"), std::string::npos) << b_.Log();
  EXPECT_EQ(ReadTextFileBounded(dir_ + "/b/tuf/time-floor", 64).value_or(""), ahead);
}

TEST_F(NodeLan, ForgedNeighbourMetadataIsRefused) {
  // A fake neighbour announces a newer timestamp and serves garbage: B keeps
  // its trusted metadata and says why.
  RunShell("mkdir -p " + dir_ + "/b " + dir_ + "/fake/metadata && echo '{\"signed\": {}}' > " +
           dir_ + "/fake/metadata/timestamp.json");
  auto server = RunShell("cd " + dir_ +
                         "/fake && (python3 -m http.server 18088 --bind 127.0.0.1 "
                         ">/dev/null 2>&1 & echo $! > " +
                         dir_ + "/fake.pid)");
  ASSERT_EQ(server.exit_code, 0);
  ASSERT_TRUE(b_.Start(dir_ + "/b", LanConfig("b", "http://127.0.0.1:1")));
  auto beacon = RunShell(
      "python3 -c 'import socket,time\n"
      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
      "s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton(\"127.0.0.1\"))\n"
      "for i in range(30):\n"
      "  s.sendto(b\"{\\\"flotilla_beacon\\\":1,\\\"device\\\":\\\"fake\\\",\\\"site\\\":"
      "\\\"shop-7\\\",\\\"port\\\":18088,\\\"root\\\":1,\\\"timestamp\\\":99}\","
      "(\"239.192.70.76\",7476)); time.sleep(0.2)'");
  ASSERT_EQ(beacon.exit_code, 0) << beacon.output;
  RunShell("kill $(cat " + dir_ + "/fake.pid)");
  EXPECT_NE(b_.Log().find("neighbour fake:"), std::string::npos) << b_.Log();
  EXPECT_EQ(Timestamp("b"), "");
  EXPECT_EQ(AppState(dir_ + "/b", "kiosk")["target_release"], 0);
}

}  // namespace
}  // namespace flotilla::testing
