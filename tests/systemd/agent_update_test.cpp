// The agent updating itself, driven through the commands the units run
// (docs/agent-update.md, "Tests"), with real binaries and no systemd: the
// test plays systemd. It runs the unit's ExecStart= (`flotilla-node agent
// launch -- run --config ...`) with a NOTIFY_SOCKET it owns, starts it again
// 1 s after it fails (Restart=on-failure), and runs the probation timer's
// `flotilla-node agent check` every second, with the probation shortened to
// 5 s. The agents: the packaged one (the build's flotilla-node-full), the
// same binaries installed as release 6, and fake_agent (a test program) as a
// release 6 that exits at once, hangs before READY, crashes after READY, or
// never proves itself. Each bad one is rolled back, within the probation
// plus the check's and the restart's periods, to the packaged agent, which
// answers its control API again.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "core/file_io.h"
#include "node/agent/agent_layout.h"
#include "node/agent/agent_slots.h"
#include "node/control/control_protocol.h"
#include "node/control/control_server.h"
#include "tests/node/node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_util.h"
#include "tests/systemd/agent_unit.h"
#include "tests/systemd/notify_listener.h"

namespace flotilla::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

class AgentUpdateTest : public AgentUpdateFixture {};

TEST_F(AgentUpdateTest, AGoodAgentIsConfirmedWithinProbationAndKeepsRunning) {
  StartPackaged();
  auto installed = Install(6, BinaryPath("flotilla-node-full"));
  ASSERT_EQ(installed.exit_code, 0) << installed.output;
  EXPECT_EQ(Slots().candidate->release, 6u);
  unit_->ForgetReady();
  const auto restarted = Clock::now();
  ASSERT_TRUE(unit_->Restart());
  ASSERT_TRUE(unit_->RunUntil([&] { return Slots().confirmed == 6; }, seconds(kProbationS + 15)))
      << unit_->Log();
  EXPECT_LT(Clock::now() - restarted, seconds(kProbationS));
  const pid_t main_pid = unit_->main_pid();
  EXPECT_EQ(unit_->ready_pid(), main_pid);
  const std::string installed_binary =
      Canonical(data_dir_ + "/agent/releases/6/flotilla-node-full");
  EXPECT_EQ(ExeOf(main_pid), installed_binary);
  auto view = ViewOfNode();
  ASSERT_TRUE(view);
  EXPECT_EQ(view->agent.release, 6u);
  EXPECT_TRUE(view->agent.installed);
  EXPECT_TRUE(view->agent.metadata_verified);
  // Probation over: it keeps running, no restart.
  const int starts = unit_->starts();
  unit_->RunUntil([] { return false; }, seconds(kProbationS + 1));
  EXPECT_EQ(unit_->main_pid(), main_pid);
  EXPECT_EQ(unit_->starts(), starts);
  EXPECT_FALSE(Slots().rolled_back);
  // The next start runs release 6 again, with no probation.
  unit_->ForgetReady();
  ASSERT_TRUE(unit_->Restart());
  ASSERT_TRUE(unit_->RunUntil([&] { return unit_->ready_pid() != 0; }, seconds(30)))
      << unit_->Log();
  EXPECT_EQ(ExeOf(unit_->ready_pid()), installed_binary);
  EXPECT_FALSE(Slots().candidate);
}

TEST_F(AgentUpdateTest, ANewAgentThatExitsAtStartIsRolledBack) {
  ExpectRolledBack("exit", "did not prove itself before it stopped");
}

TEST_F(AgentUpdateTest, ANewAgentThatHangsBeforeReadyIsRolledBack) {
  ExpectRolledBack("hang", "not proven within 5 s (control API did not answer)");
}

TEST_F(AgentUpdateTest, ANewAgentThatCrashesAfterReadyIsRolledBack) {
  ExpectRolledBack("crash-after-ready", "did not prove itself before it stopped");
}

TEST_F(AgentUpdateTest, ANewAgentThatNeverProvesItselfIsRolledBack) {
  ExpectRolledBack("ready-without-proof", "not proven within 5 s");
}

TEST_F(AgentUpdateTest, ABinaryThatCannotRunHereIsNotStaged) {
  const std::string src = dir_ + "/agent-7";
  RunShell("mkdir -p " + src + " && cp " + BinaryPath("flotilla-node") + " " + kMonitor + " " +
           src + "/ && printf '\\177ELF-not-really' > " + src +
           "/flotilla-node-full && chmod 755 " + src + "/flotilla-node-full");
  auto r = RunShell(BinaryPath("flotilla-node") + " agent install --data-dir " + data_dir_ +
                    " --release 7 " + src + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("agent release 7 cannot run here"), std::string::npos) << r.output;
  EXPECT_FALSE(Slots().candidate);
  EXPECT_FALSE(node::agent::IsInstalled(node::agent::AgentLayout(data_dir_), 7));
}

}  // namespace
}  // namespace flotilla::testing
