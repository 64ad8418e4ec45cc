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
  // The daemon says `ready` in its status just before it sends READY=1, so
  // the check may confirm it before the played systemd has read READY=1.
  ASSERT_TRUE(unit_->RunUntil([&] { return unit_->ready_pid() != 0; }, seconds(10)))
      << unit_->Log();
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
  // Probation over: it keeps running, no restart; the check's unit no longer runs.
  EXPECT_FALSE(std::filesystem::exists(data_dir_ + "/agent/on-probation"));
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

// The processes running `run --config <this test's config>`.
std::vector<pid_t> AgentProcesses(const std::string& config) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = ReadFileBounded(entry.path().string() + "/cmdline", 1 << 16);
    if (!cmdline.ok()) continue;
    const std::string text(reinterpret_cast<const char*>(cmdline->data()), cmdline->size());
    if (text.find(std::string("run") + '\0' + "--config" + '\0' + config) != std::string::npos) {
      found.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return found;
}

TEST_F(AgentUpdateTest, SigkillAtEachStepLeavesExactlyOneWorkingAgent) {
  const std::string packaged = Canonical(BinaryPath("flotilla-node-full"));
  const std::string installed = Canonical(data_dir_ + "/agent/releases/6/flotilla-node-full");
  // Exactly one agent runs, it is `binary`, READY and answering.
  auto one_working_agent = [&](const std::string& binary) {
    return unit_->RunUntil(
        [&] {
          const auto agents = AgentProcesses(config_);
          return agents.size() == 1 && ExeOf(agents[0]) == binary &&
                 unit_->ready_pid() == agents[0] && ViewOfNode();
        },
        kRollbackLimit);
  };
  StartPackaged();

  // 1. The install killed while it copies: nothing staged, the packaged agent
  // runs on, and the next install starts afresh.
  const std::string src = dir_ + "/agent-6";
  RunShell("mkdir -p " + src + " && cp " + BinaryPath("flotilla-node") + " " + kMonitor + " " +
           BinaryPath("flotilla-node-full") + " " + src + "/");
  ChildProcess install;
  ASSERT_TRUE(install.Start({BinaryPath("flotilla-node"), "agent", "install", "--data-dir",
                             data_dir_, "--release", "6", src},
                            dir_ + "/install.log"));
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(data_dir_ + "/agent/releases/6.tmp"); },
                      seconds(10), milliseconds(1)));
  install.Kill();
  EXPECT_FALSE(Slots().candidate);
  unit_->ForgetReady();
  unit_->KillMain();
  ASSERT_TRUE(one_working_agent(packaged)) << unit_->Log();

  // 2. The running agent killed once release 6 is staged: the restart tries it.
  auto staged = Install(6, BinaryPath("flotilla-node-full"));
  ASSERT_EQ(staged.exit_code, 0) << staged.output;
  EXPECT_FALSE(std::filesystem::exists(data_dir_ + "/agent/releases/6.tmp"));
  unit_->ForgetReady();
  unit_->KillMain();
  ASSERT_TRUE(one_working_agent(installed)) << unit_->Log();

  // 3. Release 6 confirmed, then killed: it runs again, with no probation.
  ASSERT_TRUE(unit_->RunUntil([&] { return Slots().confirmed == 6; }, kRollbackLimit))
      << unit_->Log();
  unit_->ForgetReady();
  unit_->KillMain();
  ASSERT_TRUE(one_working_agent(installed)) << unit_->Log();
  EXPECT_FALSE(Slots().candidate);
  EXPECT_FALSE(Slots().rolled_back);

  // 4. Release 7 killed on probation: release 6 (confirmed) is restored.
  auto seven = Install(7, kFakeAgent);
  ASSERT_EQ(seven.exit_code, 0) << seven.output;
  ::setenv("FLOTILLA_FAKE_AGENT", "hang", 1);
  unit_->ForgetReady();
  ASSERT_TRUE(unit_->Restart());
  ASSERT_TRUE(unit_->RunUntil([&] { return Slots().candidate && Slots().candidate->launched(); },
                              seconds(10)));
  unit_->KillMain();
  ASSERT_TRUE(one_working_agent(installed)) << unit_->Log();
  EXPECT_EQ(Slots().rolled_back->release, 7u);
  EXPECT_EQ(Slots().confirmed, 6u);
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

// An agent release holds the three binaries and nothing else: another
// file, or a link in a binary's place, is refused before anything is copied.
TEST_F(AgentUpdateTest, AReleaseHoldingAnythingElseIsRefused) {
  const std::string src = dir_ + "/agent-7";
  RunShell("mkdir -p " + src + " && cp " + BinaryPath("flotilla-node") + " " +
           BinaryPath("flotilla-node-full") + " " + kMonitor + " " + src + "/ && echo x > " + src +
           "/extra");
  auto r = RunShell(BinaryPath("flotilla-node") + " agent install --data-dir " + data_dir_ +
                    " --release 7 " + src + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("install agent release 7: it holds 'extra'; an agent release holds "
                          "flotilla-node, flotilla-node-full and flotilla-monitor, and nothing "
                          "else"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(node::agent::AgentLayout(data_dir_).release_dir(7)));
  EXPECT_FALSE(
      std::filesystem::exists(node::agent::AgentLayout(data_dir_).release_dir(7) + ".tmp"));
  RunShell("rm " + src + "/extra && rm " + src + "/flotilla-monitor && ln -s " + kMonitor + " " +
           src + "/flotilla-monitor");
  r = RunShell(BinaryPath("flotilla-node") + " agent install --data-dir " + data_dir_ +
               " --release 7 " + src + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("its 'flotilla-monitor' is not a regular file"), std::string::npos)
      << r.output;
  EXPECT_FALSE(Slots().candidate);
  EXPECT_FALSE(node::agent::IsInstalled(node::agent::AgentLayout(data_dir_), 7));
}

}  // namespace
}  // namespace flotilla::testing
