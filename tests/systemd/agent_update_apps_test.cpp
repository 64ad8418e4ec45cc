// The apps keep running while the agent updates itself and rolls back
// (docs/agent-update.md, "Tests"): real containers (LOCK runtime), the unit
// played by the test (tests/systemd/agent_unit.h). A new agent that crashes
// after READY is rolled back and the app's container keeps its pids; an app
// release the new agent deployed before it was killed, unconfirmed, keeps
// running under the restored agent.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/canonical_json.h"
#include "tests/systemd/agent_unit.h"

namespace flotilla::testing {
namespace {

class AgentUpdateAppsTest : public AgentUpdateFixture {
 protected:
  bool Deploys() const override { return true; }

  // init_pid and monitor_pid of every running container (its init alive),
  // by running.json path.
  std::map<std::string, std::pair<int64_t, int64_t>> ContainerPids() {
    std::map<std::string, std::pair<int64_t, int64_t>> pids;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(data_dir_ + "/runtime", ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().filename() != "running.json") continue;
      auto text = ReadTextFileBounded(it->path().string(), 1 << 20);
      if (!text.ok()) continue;
      auto json = ParseJsonStrict(*text);
      if (!json.ok()) continue;
      const int64_t init = (*json)["init_pid"].get<int64_t>();
      if (Alive(init)) pids[it->path().string()] = {init, (*json)["monitor_pid"].get<int64_t>()};
    }
    return pids;
  }
  static bool Alive(int64_t pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0; }
  uint64_t RunningRelease() {
    const Json app = AppState(data_dir_, "kiosk");
    return app.is_object() && app.contains("running_release")
               ? app["running_release"].get<uint64_t>()
               : 0;
  }
  // Waits for a rollback to restore the packaged agent: READY from its main
  // pid and answering its control API.
  bool PackagedAgentRestored() {
    return unit_->RunUntil(
        [&] {
          return Slots().rolled_back && unit_->ready_pid() != 0 &&
                 ExeOf(unit_->ready_pid()) == Canonical(BinaryPath("flotilla-node-full")) &&
                 ViewOfNode();
        },
        kRollbackLimit);
  }
  void TearDown() override {
    unit_.reset();
    RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_dir_ +
             "/runtime kiosk >/dev/null 2>&1");
    AgentUpdateFixture::TearDown();
  }
};

TEST_F(AgentUpdateAppsTest, ARollbackLeavesTheAppsContainerRunningWithTheSamePids) {
  StartPackaged();
  ASSERT_TRUE(unit_->RunUntil([&] { return RunningRelease() == 1; }, seconds(90))) << unit_->Log();
  const auto before = ContainerPids();
  ASSERT_EQ(before.size(), 1u);
  ::setenv("FLOTILLA_FAKE_AGENT", "crash-after-ready", 1);
  auto installed = Install(6, kFakeAgent);
  ASSERT_EQ(installed.exit_code, 0) << installed.output;
  unit_->ForgetReady();
  ASSERT_TRUE(unit_->Restart());
  ASSERT_TRUE(PackagedAgentRestored()) << unit_->Log();
  // The restored agent re-adopted the app: same container, same monitor.
  unit_->RunUntil([] { return false; }, seconds(2));
  EXPECT_EQ(ContainerPids(), before);
  for (const auto& [path, pids] : before) {
    EXPECT_TRUE(Alive(pids.first)) << path;
    EXPECT_TRUE(Alive(pids.second)) << path;
  }
  EXPECT_EQ(RunningRelease(), 1u);
  auto view = ViewOfNode();
  ASSERT_TRUE(view);
  ASSERT_EQ(view->apps.size(), 1u);
  EXPECT_EQ(view->apps[0].container_state, "running");
}

TEST_F(AgentUpdateAppsTest, AnAppTheNewAgentDeployedKeepsRunningAfterItsRollback) {
  StartPackaged();
  ASSERT_TRUE(unit_->RunUntil([&] { return RunningRelease() == 1; }, seconds(90))) << unit_->Log();
  auto installed = Install(6, BinaryPath("flotilla-node-full"));
  ASSERT_EQ(installed.exit_code, 0) << installed.output;
  // The probation timer is held: release 6 stays on probation while it works.
  unit_->EnableChecks(false);
  unit_->ForgetReady();
  ASSERT_TRUE(unit_->Restart());
  ASSERT_TRUE(unit_->RunUntil([&] { return unit_->ready_pid() != 0; }, seconds(30)))
      << unit_->Log();
  const pid_t candidate = unit_->main_pid();
  ASSERT_EQ(ExeOf(candidate), Canonical(data_dir_ + "/agent/releases/6/flotilla-node-full"));
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "2"));
  ASSERT_TRUE(unit_->RunUntil([&] { return RunningRelease() == 2; }, seconds(90))) << unit_->Log();
  const auto deployed = ContainerPids();
  ASSERT_EQ(deployed.size(), 1u);
  ASSERT_TRUE(Slots().candidate);

  // It dies before it proved itself: the launcher restores the packaged agent.
  unit_->EnableChecks(true);
  unit_->ForgetReady();
  unit_->KillMain();
  ASSERT_TRUE(PackagedAgentRestored()) << unit_->Log();
  unit_->RunUntil([] { return false; }, seconds(2));
  EXPECT_EQ(ContainerPids(), deployed);
  EXPECT_EQ(RunningRelease(), 2u);
  // Rolled back by the launcher at the restart, or by a check that ran
  // first (past the probation, nothing running): either way, release 6.
  EXPECT_EQ(Slots().rolled_back->release, 6u);
}

}  // namespace
}  // namespace flotilla::testing
