// A recall with a real node (docs/fleet.md, "The desired release"): the real
// tracker (publish, fleet init, recall, fleet publish, serve) and a real
// flotilla-node deploying into its built-in runtime on loopback. The device
// running a recalled release moves to the newest release that is not
// recalled through the health-gated switch; when that one fails its health
// check, the node rolls back and keeps running what it ran: nothing stops a
// running app without a healthy replacement.
#include <gtest/gtest.h>

#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/node/fleet_node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr char kApp[] = "web";

class NodeRecallTest : public FleetNodeTest {
 protected:
  NodeRecallTest() : FleetNodeTest("recall", kApp) {}
  void SetUp() override {
    FleetNodeTest::SetUp();
    PublishApp("1", "exit 3");  // release 1: exits at once
    PublishApp("2");
    PublishApp("3");
    StartTrackerWithFleet();
    Fleet("group create all --select all");
    Fleet("app assign web --group all");
  }
  Json State() { return AppState(data_, kApp); }
};

TEST_F(NodeRecallTest, ARecalledReleaseIsLeftForTheNewestHealthyOneNotRecalled) {
  Json config = NodeConfig("screen-1");
  config["max_backoff_s"] = 2;
  StartNode(config);
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Running() == 3; }, seconds(60))) << node_.Log();

  // Release 3 recalled: the device goes back to 2 through the switch.
  Fleet("recall --app web --release 3");
  Json desired = Json::parse(Fleet("fleet desired --device screen-1 --json"));
  EXPECT_EQ(desired["apps"][0]["release"], 2) << desired.dump();
  EXPECT_EQ(desired["apps"][0]["reason"], "newest release not recalled");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Running() == 2; }, seconds(60))) << node_.Log();
  EXPECT_NE(node_.Log().find("app web: deploying release 2 (health-gated switch from release 3)"),
            std::string::npos)
      << node_.Log();
  EXPECT_EQ(State()["previous_release"], 3) << State().dump();
  EXPECT_EQ(State()["failed_release"], 0) << State().dump();

  // Release 2 recalled too: the newest not recalled is 1, whose app fails
  // its health check. The node tries it, rolls back, and keeps running 2.
  Fleet("recall --app web --release 2");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return State()["failed_release"] == 1; }, seconds(90)))
      << State().dump() << "\n"
      << node_.Log();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(Running(), 2u) << State().dump();
  EXPECT_EQ(State()["failure"], "health") << State().dump();
  EXPECT_NE(node_.Log().find("app web: deploying release 1 (health-gated switch from release 2)"),
            std::string::npos)
      << node_.Log();
  EXPECT_NE(node_.Log().find("app web release 1 not deployed: rolled back"), std::string::npos)
      << node_.Log();
  // The runtime runs it: the container of release 2 is up.
  auto ls = RunShell(BinaryPath("flotilla-node") + " app ls --json --state-dir " + data_ +
                     "/runtime 2>&1");
  auto apps = ParseJsonStrict(ls.output);
  ASSERT_TRUE(apps.ok()) << ls.output;
  ASSERT_EQ(apps->size(), 1u) << ls.output;
  EXPECT_EQ((*apps)[0]["state"], "running") << ls.output;
  EXPECT_EQ((*apps)[0]["current"], "r2") << ls.output;
  EXPECT_EQ((*apps)[0]["running_releases"], Json::array({"r2"})) << ls.output;
}

}  // namespace
}  // namespace flotilla::testing
