// The daemon updating its own agent, end to end (docs/agent-update.md,
// "Tests"): a real tracker serves an image repository in which agent
// releases of flotilla-agent-<arch> are published (the build's binaries,
// stripped of debug sections, or fake_agent as flotilla-node-full); a node
// with "agent_update" on fetches the release, installs it, exits 3, and the
// test, playing systemd (tests/systemd/agent_unit.h), starts the unit again
// through the launcher. A good release is confirmed; a bad one is rolled
// back and not installed again until a newer one is published.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <string>

#include "core/file_io.h"
#include "layerstore/types.h"
#include "node/daemon/node_daemon.h"
#include "tests/systemd/agent_unit.h"

namespace flotilla::testing {
namespace {

class AgentSelfUpdateTest : public AgentUpdateFixture {
 protected:
  void SetUp() override {
    AgentUpdateFixture::SetUp();
    auto config = ParseJsonStrict(ReadTextFileBounded(config_, 1 << 20).value());
    ASSERT_TRUE(config.ok());
    (*config)["agent_update"] = true;
    ASSERT_TRUE(WriteFileAtomic(config_, config->dump(2)).ok());
  }

  // Publishes the next release of this machine's agent app: the build's
  // flotilla-node and flotilla-monitor, and `full` as flotilla-node-full.
  void PublishAgent(const std::string& full) {
    const std::string app = node::AgentAppFor(layerstore::Platform::Host());
    const std::string src = dir_ + "/agent-src";
    auto r = RunShell(
        "rm -rf " + src + " && mkdir -p " + src + " && strip --strip-debug -o " + src +
        "/flotilla-node " + BinaryPath("flotilla-node") + " && strip --strip-debug -o " + src +
        "/flotilla-monitor " + kMonitor + " && strip --strip-debug -o " + src +
        "/flotilla-node-full " + full + " && bash " + std::string(FLOTILLA_SOURCE_DIR) +
        "/scripts/image-from-dir.sh " + src + " " + dir_ + "/agent.tar" +
        " && echo '{\"name\": \"" + app +
        "\", \"command\": [\"/flotilla-node\", \"--version\"]}' > " + dir_ +
        "/agent-spec.json && " + BinaryPath("flotilla-tracker") + " publish --repository " + repo_ +
        " --app " + app + " --spec " + dir_ + "/agent-spec.json " + dir_ + "/agent.tar 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  bool RunsPackaged() {
    const pid_t ready = unit_->ready_pid();
    return ready != 0 && ExeOf(ready) == Canonical(BinaryPath("flotilla-node-full")) &&
           ViewOfNode().has_value();
  }
};

TEST_F(AgentSelfUpdateTest, APublishedAgentReleaseIsInstalledRestartedIntoAndConfirmed) {
  StartPackaged();
  const pid_t packaged_pid = unit_->main_pid();
  PublishAgent(BinaryPath("flotilla-node-full"));
  ASSERT_TRUE(unit_->RunUntil([&] { return Slots().confirmed == 1; }, seconds(90))) << unit_->Log();
  // One restart, by exit 3 of the agent that installed it.
  EXPECT_EQ(unit_->starts(), 2);
  EXPECT_NE(unit_->main_pid(), packaged_pid);
  EXPECT_EQ(ExeOf(unit_->main_pid()),
            Canonical(data_dir_ + "/agent/releases/1/flotilla-node-full"));
  auto view = ViewOfNode();
  ASSERT_TRUE(view);
  EXPECT_EQ(view->agent.release, 1u);
  EXPECT_TRUE(view->agent.installed);
  EXPECT_FALSE(Slots().rolled_back);
  EXPECT_NE(unit_->Log().find("restarting into the staged agent release"), std::string::npos);
  // The agent's signers raise its floor: the agent records it for the launcher.
  EXPECT_EQ(Slots().floor, 0u);
  auto raised =
      RunShell(BinaryPath("flotilla-tracker") + " floor --repository " + repo_ + " --app " +
               node::AgentAppFor(layerstore::Platform::Host()) + " --release 1 2>&1");
  ASSERT_EQ(raised.exit_code, 0) << raised.output;
  EXPECT_TRUE(unit_->RunUntil([&] { return Slots().floor == 1; }, seconds(30))) << unit_->Log();
}

TEST_F(AgentSelfUpdateTest, ABadAgentReleaseIsRolledBackAndNotRetriedUntilANewerOne) {
  ::setenv("FLOTILLA_FAKE_AGENT", "crash-after-ready", 1);
  StartPackaged();
  PublishAgent(kFakeAgent);
  unit_->ForgetReady();
  ASSERT_TRUE(unit_->RunUntil(
      [&] { return Slots().rolled_back && Slots().rolled_back->release == 1 && RunsPackaged(); },
      seconds(90)))
      << unit_->Log();
  EXPECT_EQ(Slots().confirmed, 0u);
  // Reported: the agent app rolled back (agent-probation), the reason in the failures.
  const std::string db = repo_ + "/tracker.db";
  EXPECT_TRUE(unit_->RunUntil(
      [&] {
        return QueryTrackerDb(db,
                              "SELECT app || ' ' || state || ' ' || failure FROM "
                              "device_status") ==
               node::AgentAppFor(layerstore::Platform::Host()) + " rolled_back agent-probation\n";
      },
      seconds(20)))
      << QueryTrackerDb(db, "SELECT * FROM device_status");
  EXPECT_NE(QueryTrackerDb(db, "SELECT message FROM failures")
                .find("agent release 1 rolled back (agent-probation)"),
            std::string::npos)
      << QueryTrackerDb(db, "SELECT message FROM failures");
  EXPECT_TRUE(Slots().rolled_back->reported);
  // The packaged agent sees release 1 in its metadata and leaves it alone.
  const int starts = unit_->starts();
  const pid_t main_pid = unit_->main_pid();
  unit_->RunUntil([] { return false; }, seconds(5));
  EXPECT_EQ(unit_->starts(), starts) << unit_->Log();
  EXPECT_EQ(unit_->main_pid(), main_pid);
  EXPECT_FALSE(Slots().candidate);
  // A newer release is installed and confirmed.
  PublishAgent(BinaryPath("flotilla-node-full"));
  ASSERT_TRUE(unit_->RunUntil([&] { return Slots().confirmed == 2; }, seconds(90))) << unit_->Log();
  EXPECT_EQ(ExeOf(unit_->main_pid()),
            Canonical(data_dir_ + "/agent/releases/2/flotilla-node-full"));
  EXPECT_EQ(Slots().rolled_back->release, 1u);
}

}  // namespace
}  // namespace flotilla::testing
