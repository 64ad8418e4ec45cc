// Maintenance windows end to end: the real tracker (init, publish, fleet
// init, group window, fleet publish, serve) and a real flotilla-node daemon
// deploying into its built-in runtime on loopback. Outside the group's
// window a new release is fetched and ready but not switched to, and status
// says when the window opens; a window that includes now, published, lets
// the switch happen. The first install does not wait. Then an update lock
// (flotilla-node lock) holds the next release inside the open window, across
// a restart of the node, until `unlock`.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/node/fleet_node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr char kApp[] = "web";

// HH:MM in UTC, `hours_from_now` from now.
std::string UtcClock(int hours_from_now) {
  const auto now = std::chrono::system_clock::now() + std::chrono::hours(hours_from_now);
  const auto minutes =
      std::chrono::duration_cast<std::chrono::minutes>(now.time_since_epoch()).count();
  const int of_day = static_cast<int>(((minutes % 1440) + 1440) % 1440);
  char text[8];
  std::snprintf(text, sizeof text, "%02d:%02d", of_day / 60, of_day % 60);
  return text;
}

class NodeWindowTest : public FleetNodeTest {
 protected:
  NodeWindowTest() : FleetNodeTest("window", kApp) {}
  void SetUp() override {
    FleetNodeTest::SetUp();
    PublishApp("0");
    StartTrackerWithFleet();
  }
  Json App() {
    auto run = RunShell(BinaryPath("flotilla-node") + " status --json --config " + dir_ +
                        "/node/node.json 2>/dev/null");
    auto json = ParseJsonStrict(run.output);
    if (run.exit_code != 0 || !json.ok()) return Json();
    for (const auto& a : (*json)["apps"]) {
      if (a["name"] == kApp) return a;
    }
    return Json();
  }
};

TEST_F(NodeWindowTest, AReadyReleaseWaitsForTheWindowThenForAnUpdateLock) {
  // A window three hours from now: closed for the whole test.
  const std::string from = UtcClock(3), to = UtcClock(4);
  Fleet("group create all --select all");
  Fleet("app assign web --group all");
  Fleet("group window all --days daily --from " + from + " --to " + to + " --tz UTC");
  Fleet("fleet publish");
  Json config = NodeConfig("screen-1");
  // The device enrolled after the publish: publish again for its document.
  StartNode(config);
  Fleet("fleet publish");
  // The first install does not wait for a window: nothing runs yet.
  ASSERT_TRUE(WaitFor([&] { return Running() == 1; }, seconds(60))) << node_.Log();
  ASSERT_TRUE(WaitFor([&] { return App()["desired_release"] == 1; }, seconds(30))) << node_.Log();

  // Release 2: fetched and ready, not switched to.
  PublishApp("1");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return AppState(data_, kApp)["ready_release"] == 2; }, seconds(60)))
      << node_.Log();
  const std::string waiting = "waiting for the maintenance window, opens " + from + " UTC";
  ASSERT_TRUE(WaitFor([&] { return App()["waiting"] == waiting; }, seconds(30)))
      << App().dump() << "\n"
      << node_.Log();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(Running(), 1u) << "held outside the window";
  auto text =
      RunShell(BinaryPath("flotilla-node") + " status --config " + dir_ + "/node/node.json");
  EXPECT_NE(text.output.find("release 2 " + waiting), std::string::npos) << text.output;
  EXPECT_NE(node_.Log().find("release 2 ready, " + waiting), std::string::npos) << node_.Log();

  // The group's window changed to one that includes now: the switch happens.
  Fleet("group window all --clear");
  Fleet("group window all --days daily --from " + UtcClock(-1) + " --to " + UtcClock(1) +
        " --tz UTC");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Running() == 2; }, seconds(60))) << node_.Log();
  EXPECT_TRUE(WaitFor([&] { return App()["waiting"] == ""; }, seconds(15))) << App().dump();
  EXPECT_EQ(AppState(data_, kApp)["previous_release"], 1);

  // An update lock: release 3 is fetched, held inside the open window.
  const std::string node = BinaryPath("flotilla-node") + " ";
  const std::string on_node = " --config " + dir_ + "/node/node.json 2>&1";
  auto too_long = RunShell(node + "lock web --for 48h" + on_node);
  EXPECT_EQ(too_long.exit_code, 2) << too_long.output;
  EXPECT_NE(too_long.output.find("--for must be a duration from 1s to 24h"), std::string::npos)
      << too_long.output;
  auto unknown = RunShell(node + "lock nothing" + on_node);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("no app 'nothing' is followed here"), std::string::npos);
  auto locked = RunShell(node + "lock web --for 10m --reason 'customer at the screen'" + on_node);
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  EXPECT_NE(locked.output.find("web: locked until "), std::string::npos) << locked.output;
  const int64_t until = App()["lock_until_unix"].get<int64_t>();
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(until, now + 600, 30);
  EXPECT_EQ(App()["lock_reason"], "customer at the screen");
  PublishApp("2");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return AppState(data_, kApp)["ready_release"] == 3; }, seconds(60)))
      << node_.Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        return App()["waiting"].get<std::string>().find("waiting for the update lock, until ") == 0;
      },
      seconds(30)))
      << App().dump();
  // A restart keeps the lock (locks.json) and the release held.
  EXPECT_EQ(node_.Stop(), 0);
  ASSERT_TRUE(node_.Start(dir_ + "/node", config));
  ASSERT_TRUE(WaitFor([&] { return App()["lock_until_unix"] == until; }, seconds(30)))
      << node_.Log();
  ASSERT_TRUE(WaitFor([&] { return App()["waiting"] != ""; }, seconds(30))) << App().dump();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(Running(), 2u) << "held by the lock";
  text = RunShell(node + "status" + on_node);
  EXPECT_NE(text.output.find("locked until "), std::string::npos) << text.output;
  EXPECT_NE(text.output.find(" UTC: customer at the screen"), std::string::npos) << text.output;
  auto unlocked = RunShell(node + "unlock web" + on_node);
  ASSERT_EQ(unlocked.exit_code, 0) << unlocked.output;
  EXPECT_EQ(unlocked.output, "web: unlocked\n");
  ASSERT_TRUE(WaitFor([&] { return Running() == 3; }, seconds(60))) << node_.Log();
  EXPECT_EQ(App()["lock_until_unix"], 0);
}

}  // namespace
}  // namespace flotilla::testing
