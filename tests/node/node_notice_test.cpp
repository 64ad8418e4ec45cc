// The node's notice watcher with real processes (docs/node.md, "Notice"):
// with refresh_interval_s 300, a node holding a notice request takes a new
// release within seconds of its publish, while a node with `notice` off
// still waits for its next poll; behind a tracker without the route (404,
// here haproxy answering for an older tracker) the node falls back to
// polling at refresh_interval_s.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class NodeNoticeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-notice-");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_)) << FileText(dir_ + "/init.log");
    ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "1")) << FileText(dir_ + "/publish.log");
    ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
  }
  void TearDown() override {
    for (auto& node : nodes_) node.Stop();
    haproxy_.Stop(5s);
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  static std::string FileText(const std::string& path) {
    return ReadTextFileBounded(path, 1 << 20).value_or("");
  }
  std::string NodeDir(int i) { return dir_ + "/node-" + std::to_string(i); }
  void StartNode(int i, const std::string& tracker_url, uint32_t refresh_interval_s, bool notice) {
    Json config = NodeConfigFor("kiosk-" + std::to_string(i), NodeDir(i) + "/data", tracker_url,
                                repo_ + "/metadata/1.root.json", "kiosk");
    config["refresh_interval_s"] = refresh_interval_s;
    config["notice"] = notice;
    std::filesystem::create_directories(NodeDir(i));
    ASSERT_TRUE(nodes_[i].Start(NodeDir(i), config));
  }
  bool Ready(int i, uint64_t release) {
    Json a = AppState(NodeDir(i) + "/data", "kiosk");
    return a.is_object() && a["ready_release"] == release;
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  ChildProcess haproxy_;
  NodeProcess nodes_[2];
};

TEST_F(NodeNoticeTest, ANewReleaseArrivesWithinSecondsWithoutPolling) {
  StartNode(0, tracker_.url(), 300, true);
  StartNode(1, tracker_.url(), 300, false);
  // Release 1 comes with each node's first refresh, at start.
  ASSERT_TRUE(WaitFor([&] { return Ready(0, 1) && Ready(1, 1); }, 60s))
      << nodes_[0].Log() << nodes_[1].Log();
  std::this_thread::sleep_for(2s);  // node 0's request is held by now
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "2", "1")) << FileText(dir_ + "/publish.log");
  const auto published = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return Ready(0, 2); }, 30s)) << nodes_[0].Log();
  const auto took = Clock::now() - published;
  EXPECT_LT(took, 30s);
  EXPECT_NE(nodes_[0].Log().find("notice: the tracker holds image timestamp"), std::string::npos)
      << nodes_[0].Log();
  // Without the notice the other node waits for its poll, 270-330 s away.
  EXPECT_FALSE(Ready(1, 2)) << nodes_[1].Log();
  EXPECT_EQ(nodes_[1].Log().find("notice:"), std::string::npos) << nodes_[1].Log();
  // The node stops at once though its request is held.
  const auto stopping = Clock::now();
  EXPECT_EQ(nodes_[0].Stop(), 0);
  EXPECT_LT(Clock::now() - stopping, 10s);
}

TEST_F(NodeNoticeTest, WithoutTheRouteTheNodeGoesOnPolling) {
  if (!std::filesystem::exists("/usr/sbin/haproxy")) {
    GTEST_FAIL() << "haproxy is not installed: run scripts/setup.sh";
  }
  // An older tracker: every notice request answered 404, the rest passed on.
  const int port = FreePort();
  const std::string config =
      "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n"
      "  timeout server 60s\n"
      "frontend devices\n  bind 127.0.0.1:" +
      std::to_string(port) +
      "\n  http-request return status 404 content-type text/plain string \"not found\" if "
      "{ path_end /notice }\n"
      "  default_backend tracker\n"
      "backend tracker\n  server t1 127.0.0.1:" +
      std::to_string(tracker_.port()) + "\n";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/haproxy.cfg", config).ok());
  ASSERT_TRUE(haproxy_.Start({"/usr/sbin/haproxy", "-db", "-f", dir_ + "/haproxy.cfg"},
                             dir_ + "/haproxy.log", dir_ + "/haproxy.err"));
  ASSERT_TRUE(WaitFor([&] { return GetFrom("127.0.0.1", port, "/healthz").status == 200; }, 10s))
      << FileText(dir_ + "/haproxy.err");
  StartNode(0, "http://127.0.0.1:" + std::to_string(port), 2, true);
  ASSERT_TRUE(WaitFor([&] { return Ready(0, 1); }, 60s)) << nodes_[0].Log();
  ASSERT_TRUE(WaitFor([&] { return nodes_[0].Log().find("notice: ") != std::string::npos; }, 10s))
      << nodes_[0].Log();
  EXPECT_NE(nodes_[0].Log().find("HTTP 404"), std::string::npos) << nodes_[0].Log();
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "2", "1")) << FileText(dir_ + "/publish.log");
  ASSERT_TRUE(WaitFor([&] { return Ready(0, 2); }, 40s)) << nodes_[0].Log();
  EXPECT_EQ(nodes_[0].Log().find("notice: the tracker holds"), std::string::npos)
      << nodes_[0].Log();
}

}  // namespace
}  // namespace flotilla::testing
