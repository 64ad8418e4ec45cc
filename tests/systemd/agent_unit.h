// Plays systemd for the agent update tests (docs/agent-update.md, "Tests"):
// flotilla-node.service's ExecStart= (`flotilla-node agent launch -- run
// --config ...`) with a NOTIFY_SOCKET the test owns, started again 1 s after
// it fails (Restart=on-failure, RestartPreventExitStatus=2), and the
// probation timer's `flotilla-node agent check` every second while
// <data_dir>/agent/on-probation exists (the unit's ConditionPathExists=),
// with the probation shortened to 5 s.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/file_io.h"
#include "node/agent/agent_layout.h"
#include "node/agent/agent_slots.h"
#include "node/control/control_protocol.h"
#include "node/control/control_server.h"
#include "tests/node/node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_util.h"
#include "tests/systemd/notify_listener.h"

namespace flotilla::testing {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kProbationS = 5;
constexpr auto kRestartSec = seconds(1);
constexpr auto kCheckPeriod = seconds(1);
// Probation, then a check period, a restart and the packaged agent's start.
constexpr auto kRollbackLimit = seconds(kProbationS + 15);

inline const std::string kFakeAgent =
    std::string(FLOTILLA_BINARY_DIR) + "/tests/systemd/fake_agent";
inline const std::string kMonitor = std::string(FLOTILLA_BINARY_DIR) + "/runtime/flotilla-monitor";

// flotilla-node.service and flotilla-node-agent-check.timer, as systemd
// would run them.
class AgentUnit {
 public:
  AgentUnit(std::string dir, std::string data_dir, std::string config)
      : dir_(std::move(dir)), data_dir_(std::move(data_dir)), config_(std::move(config)) {}
  ~AgentUnit() { Stop(); }

  bool Start() {
    if (!listener_bound_) {
      listener_bound_ = listener_.Bind(dir_ + "/notify.sock");
      if (!listener_bound_) return false;
    }
    ::setenv("NOTIFY_SOCKET", (dir_ + "/notify.sock").c_str(), 1);
    const bool started = process_.Start({BinaryPath("flotilla-node"), "agent", "launch",
                                         "--data-dir", data_dir_, "--", "run", "--config", config_},
                                        dir_ + "/unit.log");
    ::unsetenv("NOTIFY_SOCKET");
    ++starts_;
    restart_at_.reset();
    return started;
  }
  // systemctl restart: SIGTERM to the main process (KillMode=process), then start.
  bool Restart() {
    process_.Stop(seconds(10));
    return Start();
  }
  void Stop() { process_.Stop(seconds(5)); }
  // SIGKILL to the main process, as a crash would; the unit restarts it.
  void KillMain() {
    if (process_.running()) ::kill(process_.pid(), SIGKILL);
  }
  // The probation timer runs (true) or is held (a test keeps an agent on probation).
  void EnableChecks(bool enabled) { checks_enabled_ = enabled; }

  // Plays systemd until `done` holds or `timeout` passes.
  bool RunUntil(const std::function<bool()>& done, milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      Step();
      if (done()) return true;
    }
    return done();
  }

  // The pid that sent the last READY=1 (0: none since the last call to ForgetReady).
  pid_t ready_pid() const { return ready_pid_; }
  void ForgetReady() { ready_pid_ = 0; }
  // The latest STATUS= text any process of the unit sent ("" before one).
  const std::string& status() const { return status_; }
  pid_t main_pid() const { return process_.pid(); }
  int starts() const { return starts_; }
  std::string Log() const {
    auto unit = ReadTextFileBounded(dir_ + "/unit.log", 16 << 20);
    auto check = ReadTextFileBounded(dir_ + "/check.log", 1 << 20);
    return "unit.log:\n" + (unit.ok() ? *unit : "") + "\ncheck.log:\n" + (check.ok() ? *check : "");
  }

 private:
  void Step() {
    while (auto got = listener_.Receive(milliseconds(100))) {
      if (HasLine(*got, "READY=1")) ready_pid_ = got->pid;
      if (std::string status = ValueOf(*got, "STATUS"); !status.empty()) status_ = status;
    }
    if (process_.running() && !restart_at_) {
      const int code = process_.WaitExit(milliseconds(0));
      // Restart=on-failure, RestartPreventExitStatus=2, RestartSec=.
      if (code != -1 && code != 0 && code != 2) restart_at_ = SteadyClock::now() + kRestartSec;
    }
    if (restart_at_ && SteadyClock::now() >= *restart_at_) Start();
    // The timer's unit runs only while the marker exists (ConditionPathExists=).
    if (checks_enabled_ && SteadyClock::now() >= next_check_ &&
        std::filesystem::exists(data_dir_ + "/agent/on-probation")) {
      RunShell(BinaryPath("flotilla-node") + " agent check --data-dir " + data_dir_ +
               " --probation-s " + std::to_string(kProbationS) + " >> " + dir_ + "/check.log 2>&1");
      next_check_ = SteadyClock::now() + kCheckPeriod;
    }
  }

  std::string dir_, data_dir_, config_;
  ChildProcess process_;
  NotifyListener listener_;
  bool listener_bound_ = false;
  bool checks_enabled_ = true;
  pid_t ready_pid_ = 0;
  std::string status_;
  int starts_ = 0;
  std::optional<SteadyClock::time_point> restart_at_;
  SteadyClock::time_point next_check_ = SteadyClock::now();
};

// A tracker, a node configuration and the unit; with Deploys() the app kiosk
// has release 1 published and the node runs it in containers.
class AgentUpdateFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("agent-update-");
    ASSERT_FALSE(dir_.empty());
    data_dir_ = dir_ + "/node";
    config_ = dir_ + "/node.json";
    const std::string repo = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo));
    repo_ = repo;
    if (Deploys()) {
      ASSERT_TRUE(PublishImage(dir_, repo, "kiosk", 64, "1"));
    }
    ASSERT_TRUE(tracker_.Start(dir_, repo)) << tracker_.Log();
    RunShell("mkdir -p " + data_dir_);
    Json config = NodeConfigFor("agent-node", data_dir_, tracker_.url(),
                                repo + "/metadata/1.root.json", "kiosk");
    config["deploy"] = Deploys();
    ASSERT_TRUE(WriteFileAtomic(config_, config.dump(2)).ok());
    unit_.emplace(dir_, data_dir_, config_);
  }
  void TearDown() override {
    unit_.reset();
    tracker_.Stop();
    ::unsetenv("FLOTILLA_FAKE_AGENT");
    if (!dir_.empty()) RunShell("rm -rf " + dir_);
  }

  // Its control API answers `status`: the view, else nothing.
  std::optional<node::NodeView> ViewOfNode() {
    auto answer =
        node::ControlRequest(data_dir_ + "/control.sock", Json{{"op", "status"}}, seconds(2));
    if (!answer.ok()) return std::nullopt;
    auto view = node::ViewFromJson(*answer);
    return view.ok() ? std::optional<node::NodeView>(*view) : std::nullopt;
  }
  node::agent::AgentSlots Slots() {
    return node::agent::LoadAgentSlots(node::agent::AgentLayout(data_dir_).slots())
        .value_or(node::agent::AgentSlots{});
  }
  std::string ExeOf(pid_t pid) {
    return std::filesystem::weakly_canonical(node::agent::ExecutableOf(pid)).string();
  }
  static std::string Canonical(const std::string& path) {
    return std::filesystem::weakly_canonical(path).string();
  }

  // The packaged agent runs, READY, and answers.
  void StartPackaged() {
    ASSERT_TRUE(unit_->Start());
    ASSERT_TRUE(
        unit_->RunUntil([&] { return unit_->ready_pid() != 0 && ViewOfNode(); }, seconds(30)))
        << unit_->Log();
    EXPECT_EQ(ExeOf(unit_->ready_pid()), Canonical(BinaryPath("flotilla-node-full")));
  }
  // `agent install --release N` of the build's binaries, `full` as flotilla-node-full.
  CommandResult Install(uint64_t release, const std::string& full) {
    const std::string src = dir_ + "/agent-" + std::to_string(release);
    RunShell("rm -rf " + src + " && mkdir -p " + src + " && cp " + BinaryPath("flotilla-node") +
             " " + kMonitor + " " + src + "/ && cp " + full + " " + src + "/flotilla-node-full");
    return RunShell(BinaryPath("flotilla-node") + " agent install --data-dir " + data_dir_ +
                    " --release " + std::to_string(release) + " " + src + " 2>&1");
  }
  // Installs a fake release 6 behaving as `mode`, restarts into it, and
  // expects the packaged agent back within the limit, with the rollback recorded.
  void ExpectRolledBack(const std::string& mode, const std::string& reason) {
    StartPackaged();
    ::setenv("FLOTILLA_FAKE_AGENT", mode.c_str(), 1);
    auto installed = Install(6, kFakeAgent);
    ASSERT_EQ(installed.exit_code, 0) << installed.output;
    unit_->ForgetReady();
    const auto restarted = SteadyClock::now();
    ASSERT_TRUE(unit_->Restart());
    const bool back = unit_->RunUntil(
        [&] {
          const pid_t ready = unit_->ready_pid();
          return Slots().rolled_back && ready != 0 &&
                 ExeOf(ready) == Canonical(BinaryPath("flotilla-node-full")) && ViewOfNode();
        },
        kRollbackLimit + seconds(10));
    const auto took = SteadyClock::now() - restarted;
    ASSERT_TRUE(back) << unit_->Log();
    EXPECT_LE(took, kRollbackLimit) << unit_->Log();
    const auto slots = Slots();
    EXPECT_EQ(slots.rolled_back->release, 6u);
    EXPECT_NE(slots.rolled_back->reason.find(reason), std::string::npos)
        << slots.rolled_back->reason;
    EXPECT_FALSE(slots.candidate);
    EXPECT_EQ(slots.confirmed, 0u);
    // The packaged agent names the rollback; release 6 is not staged again.
    EXPECT_NE(ViewOfNode()->agent.rolled_back.find("release 6"), std::string::npos);
    auto again = Install(6, kFakeAgent);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.output.find("release 6 was rolled back"), std::string::npos) << again.output;
  }

  virtual bool Deploys() const { return false; }

  std::string dir_, data_dir_, config_, repo_;
  TrackerProcess tracker_;
  std::optional<AgentUnit> unit_;
};

}  // namespace flotilla::testing
