// The daemon updating its own agent, end to end (docs/agent-update.md,
// "Tests"): a real tracker serves an image repository in which agent
// releases of flotilla-agent-<arch> are published with `flotilla-tracker
// agent publish` (the build's binaries, stripped of debug sections, or
// fake_agent as flotilla-node-full); a node
// with "agent_update" on fetches the release, installs it, exits 3, and the
// test, playing systemd (tests/systemd/agent_unit.h), starts the unit again
// through the launcher. A good release is confirmed; a bad one is rolled
// back and not installed again until a newer one is published.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
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

  // Publishes the next release of this machine's agent app with `agent
  // publish`: the build's flotilla-node and flotilla-monitor, and `full` as
  // flotilla-node-full, stripped of their debug sections as it asks.
  void PublishAgent(const std::string& full) {
    const std::string app = node::AgentAppFor(layerstore::Platform::Host());
    const std::string arch = app.substr(std::string("flotilla-agent-").size());
    const std::string src = dir_ + "/agent-src";
    auto r =
        RunShell("rm -rf " + src + " && mkdir -p " + src + " && strip --strip-debug -o " + src +
                 "/flotilla-node " + BinaryPath("flotilla-node") + " && strip --strip-debug -o " +
                 src + "/flotilla-monitor " + kMonitor + " && strip --strip-debug -o " + src +
                 "/flotilla-node-full " + full + " && " + BinaryPath("flotilla-tracker") +
                 " agent publish --repository " + repo_ + " --arch " + arch + " " + src + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // flotilla-tracker ARGS --repository REPO, which must succeed; its output.
  std::string Tracker(const std::string& args) {
    auto run =
        RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ + " 2>&1");
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
    return run.output;
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
  // Reported: the agent app rolled back (agent-probation), the reason in the
  // failures; the app the node follows keeps its own status beside it.
  const std::string db = repo_ + "/tracker.db";
  EXPECT_TRUE(unit_->RunUntil(
      [&] {
        return QueryTrackerDb(db,
                              "SELECT app || ' ' || state || ' ' || failure FROM "
                              "device_status ORDER BY app") ==
               node::AgentAppFor(layerstore::Platform::Host()) +
                   " rolled_back agent-probation\nkiosk idle \n";
      },
      seconds(20)))
      << QueryTrackerDb(db, "SELECT * FROM device_status");
  EXPECT_NE(QueryTrackerDb(db, "SELECT message FROM failures")
                .find("agent release 1 rolled back (agent-probation)"),
            std::string::npos)
      << QueryTrackerDb(db, "SELECT message FROM failures");
  // Marked reported once the tracker took the report (it has: it stored it).
  EXPECT_TRUE(unit_->RunUntil([&] { return Slots().rolled_back->reported; }, seconds(5)));
  // systemctl status says it too (STATUS=), with the reason.
  EXPECT_TRUE(unit_->RunUntil(
      [&] {
        return unit_->status().find("; agent rolled back release 1: " +
                                    Slots().rolled_back->reason) != std::string::npos;
      },
      seconds(35)))
      << unit_->status();
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

// The agent app rolled out in waves as any app (docs/fleet.md, "Rollouts"):
// the device, managed by the fleet before release 1 exists, is sent it by
// the rollout only; it installs it, restarts into it, and once the release
// is confirmed its agent app reports running and healthy, so the wave
// counts it and the rollout completes. The app it follows keeps a status of
// its own beside the agent app's (one per device and app).
TEST_F(AgentSelfUpdateTest, AStagedRolloutOfTheAgentAppCompletes) {
  const std::string app = node::AgentAppFor(layerstore::Platform::Host());
  const int port = tracker_.port();
  tracker_.Stop();
  ASSERT_TRUE(tracker_.Start(dir_, repo_, {"--rollout-interval", "1"}, port)) << tracker_.Log();
  Tracker("fleet init --offline-keys " + dir_ + "/fleet-off");
  Tracker("group create all --select all");
  Tracker("app assign " + app + " --group all");
  StartPackaged();
  ASSERT_TRUE(unit_->RunUntil(
      [&] { return std::filesystem::exists(data_dir_ + "/credentials.json"); }, seconds(30)))
      << unit_->Log();
  Tracker("fleet publish");
  ASSERT_TRUE(unit_->RunUntil(
      [&] {
        auto view = ViewOfNode();
        return view && view->fleet.state == "following";
      },
      seconds(30)))
      << unit_->Log();

  PublishAgent(BinaryPath("flotilla-node-full"));
  // Nothing sent yet: the document names no release of the agent app.
  unit_->RunUntil([] { return false; }, seconds(3));
  EXPECT_EQ(unit_->starts(), 1) << unit_->Log();
  const Json started = ParseJsonStrict(Tracker("rollout start --app " + app +
                                               " --release 1 --waves 100% --group all "
                                               "--soak 0 --max-failures 0% --json"))
                           .value_or(Json());
  ASSERT_TRUE(started.contains("id")) << started.dump();
  const std::string status = "rollout status " + std::to_string(started["id"].get<int64_t>());
  ASSERT_TRUE(unit_->RunUntil([&] { return Slots().confirmed == 1; }, seconds(90))) << unit_->Log();
  EXPECT_EQ(unit_->starts(), 2);
  auto next_poll = SteadyClock::now();
  std::string last;
  EXPECT_TRUE(unit_->RunUntil(
      [&] {
        if (SteadyClock::now() < next_poll) return false;
        next_poll = SteadyClock::now() + seconds(1);
        last = Tracker(status + " --json");
        auto json = ParseJsonStrict(last);
        return json.ok() && (*json)["state"] == "completed";
      },
      seconds(30)))
      << last << "\n"
      << unit_->Log();
  const std::string db = repo_ + "/tracker.db";
  EXPECT_EQ(QueryTrackerDb(db,
                           "SELECT release || ' ' || state || ' ' || health FROM "
                           "device_status WHERE app = '" +
                               app + "'"),
            "1 running healthy\n")
      << QueryTrackerDb(db, "SELECT * FROM device_status");
  EXPECT_EQ(QueryTrackerDb(db, "SELECT COUNT(*) FROM device_status WHERE app = 'kiosk'"), "1\n")
      << QueryTrackerDb(db, "SELECT * FROM device_status");
}

}  // namespace
}  // namespace flotilla::testing
