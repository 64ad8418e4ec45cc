// flotilla-node under systemd, with the real binaries: `flotilla-node run`
// started with NOTIFY_SOCKET and WATCHDOG_USEC against a real
// `flotilla-tracker serve` sends READY=1, WATCHDOG=1 every half period and
// STOPPING=1 on SIGTERM, all from its main pid; the unit file passes
// `systemd-analyze verify`; the example configuration loads. A stuck event
// loop sends no ping.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "core/file_io.h"
#include "node/daemon/node_config.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"
#include "tests/systemd/notify_listener.h"

namespace flotilla::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kUnitFile =
    std::string(FLOTILLA_SOURCE_DIR) + "/node/systemd/flotilla-node.service";

std::string ProcFile(pid_t pid, const std::string& file) {
  auto text = ReadTextFileBounded("/proc/" + std::to_string(pid) + "/" + file, 1 << 16);
  return text.ok() ? *text : "";
}

// The state letter of /proc/<pid>/stat ('Z' once it exited, unreaped).
char ProcState(pid_t pid) {
  const std::string stat = ProcFile(pid, "stat");
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

class NodeSystemd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-systemd-");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
    node_.Stop();
    tracker_.Stop();
    if (!dir_.empty()) RunShell("rm -rf " + dir_);
  }
  // Starts flotilla-node run with `config` under the environment systemd gives.
  void StartNode(const Json& config, const std::string& watchdog_usec) {
    ASSERT_TRUE(listener_.Bind(dir_ + "/notify.sock"));
    ::setenv("NOTIFY_SOCKET", (dir_ + "/notify.sock").c_str(), 1);
    if (!watchdog_usec.empty()) ::setenv("WATCHDOG_USEC", watchdog_usec.c_str(), 1);
    RunShell("mkdir -p " + dir_ + "/node");
    const bool started = node_.Start(dir_ + "/node", config);
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ASSERT_TRUE(started);
  }
  // The next notification holding `line`, skipping others, within `timeout`.
  std::optional<Notification> NextWith(const std::string& line, milliseconds timeout,
                                       std::vector<Notification>* skipped = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto got = listener_.Receive(
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (!got) break;
      if (HasLine(*got, line)) return got;
      if (skipped != nullptr) skipped->push_back(*got);
    }
    return std::nullopt;
  }

  std::string dir_;
  TrackerProcess tracker_;
  NodeProcess node_;
  NotifyListener listener_;
};

TEST_F(NodeSystemd, RunSendsReadyThenWatchdogPingsThenStoppingFromItsMainPid) {
  const std::string repo = dir_ + "/repo";
  ASSERT_TRUE(InitRepository(dir_, repo));
  ASSERT_TRUE(PublishImage(dir_, repo, "kiosk", 64, "1"));
  ASSERT_TRUE(tracker_.Start(dir_, repo));
  const std::string data_dir = dir_ + "/node";
  const std::string config_path = data_dir + "/node.json";
  // WATCHDOG_USEC 2 s: a ping is due every second.
  StartNode(
      NodeConfigFor("sd-node", data_dir, tracker_.url(), repo + "/metadata/1.root.json", "kiosk"),
      "2000000");

  // READY=1 comes first (nothing before it), from the main process.
  auto ready = listener_.Receive(milliseconds(30000));
  ASSERT_TRUE(ready) << node_.Log();
  EXPECT_TRUE(HasLine(*ready, "READY=1")) << ready->text;
  EXPECT_NE(ValueOf(*ready, "STATUS").find("sd-node"), std::string::npos) << ready->text;
  const pid_t main_pid = ready->pid;
  ASSERT_GT(main_pid, 0);
  EXPECT_NE(ProcFile(main_pid, "cmdline").find(config_path), std::string::npos);

  // The release arrives; the pings go on meanwhile, and their STATUS says so.
  std::vector<Notification> pings;
  ASSERT_TRUE(WaitFor(
      [&] {
        while (auto got = listener_.Receive(milliseconds(0))) pings.push_back(*got);
        return AppState(data_dir, "kiosk")["ready_release"] == 1;
      },
      seconds(60)))
      << node_.Log();
  // Then watch the watchdog for 5 s.
  const auto watch_from = std::chrono::steady_clock::now();
  std::vector<Notification> watched;
  while (std::chrono::steady_clock::now() - watch_from < seconds(5)) {
    if (auto got = listener_.Receive(milliseconds(200))) watched.push_back(*got);
  }
  ASSERT_GE(watched.size(), 3u) << node_.Log();
  for (size_t i = 0; i < watched.size(); ++i) {
    EXPECT_TRUE(HasLine(watched[i], "WATCHDOG=1")) << watched[i].text;
    EXPECT_EQ(watched[i].pid, main_pid);
    if (i > 0) {
      EXPECT_LT(watched[i].at - watched[i - 1].at, milliseconds(2000)) << "ping " << i;
    }
  }
  const std::string status = ValueOf(watched.back(), "STATUS");
  EXPECT_NE(status.find("kiosk"), std::string::npos) << status;
  EXPECT_NE(status.find("release 1"), std::string::npos) << status;

  // SIGTERM: STOPPING=1, then a clean exit.
  EXPECT_EQ(node_.Stop(), 0) << node_.Log();
  auto stopping = NextWith("STOPPING=1", milliseconds(5000));
  ASSERT_TRUE(stopping) << node_.Log();
  EXPECT_EQ(stopping->pid, main_pid);
  EXPECT_NE(ValueOf(*stopping, "STATUS").find("signal 15"), std::string::npos) << stopping->text;
}

TEST_F(NodeSystemd, StuckEventLoopSendsNoWatchdogPingButStoppingStillArrives) {
  // A "tracker" that accepts connections and never answers: the daemon's
  // first refresh blocks its event loop for the HTTP read timeout (30 s).
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(silent, 16), 0);
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  // WATCHDOG_USEC 1 s: a live loop pings every 0.5 s.
  const std::string repo = dir_ + "/repo";
  ASSERT_TRUE(InitRepository(dir_, repo));  // for a root of trust
  StartNode(NodeConfigFor("sd-node", dir_ + "/node", url, repo + "/metadata/1.root.json", "kiosk"),
            "1000000");
  auto ready = listener_.Receive(milliseconds(30000));
  ASSERT_TRUE(ready) << node_.Log();
  ASSERT_TRUE(HasLine(*ready, "READY=1")) << ready->text;

  // The main thread keeps ticking, but no ping task runs: nothing is sent.
  std::vector<Notification> during;
  const auto from = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - from < seconds(5)) {
    if (auto got = listener_.Receive(milliseconds(200))) during.push_back(*got);
  }
  EXPECT_TRUE(during.empty()) << during.front().text << "\n" << node_.Log();

  // STOPPING=1 comes from the main thread, at once, stuck loop or not.
  ::kill(ready->pid, SIGTERM);
  auto stopping = NextWith("STOPPING=1", milliseconds(3000));
  ASSERT_TRUE(stopping) << node_.Log();
  EXPECT_EQ(stopping->pid, ready->pid);
  node_.Kill();  // rather than wait for the read timeout
  ::close(silent);
}

TEST_F(NodeSystemd, BadConfigurationExitsTwoAndSaysWhyWithoutReady) {
  Json config = NodeConfigFor("sd-node", dir_ + "/node", "http://127.0.0.1:1", "", "kiosk");
  config["refresh_intervall_s"] = 5;  // a typo
  StartNode(config, "2000000");
  auto got = listener_.Receive(milliseconds(20000));
  ASSERT_TRUE(got) << node_.Log();
  EXPECT_FALSE(HasLine(*got, "READY=1")) << got->text;
  EXPECT_NE(ValueOf(*got, "STATUS").find("refresh_intervall_s"), std::string::npos) << got->text;
  ASSERT_TRUE(WaitFor([&] { return ProcState(got->pid) == 'Z'; }, seconds(10)));
  EXPECT_EQ(node_.Stop(), 2);
  EXPECT_FALSE(listener_.Receive(milliseconds(100)));
}

TEST_F(NodeSystemd, UnitFilePassesSystemdAnalyzeVerify) {
  ASSERT_EQ(RunShell("command -v systemd-analyze").exit_code, 0)
      << "systemd-analyze is missing: install the Debian package systemd";
  auto unit = ReadTextFileBounded(kUnitFile, 1 << 16);
  ASSERT_TRUE(unit.ok()) << unit.status().ToString();
  for (const char* setting :
       {"\nType=notify\n", "\nKillMode=process\n", "\nRestart=on-failure\n",
        "\nWatchdogSec=", "\nStateDirectory=flotilla\n", "\nLimitNOFILE=",
        "\nExecStart=/usr/bin/flotilla-node agent launch --data-dir /var/lib/flotilla -- run "
        "--config /etc/flotilla/node.json\n",
        "\nWants=flotilla-node-agent-check.timer\n"}) {
    EXPECT_NE(unit->find(setting), std::string::npos) << setting;
  }
  for (const char* breaks_the_runtime :
       {"\nProtectSystem=", "\nPrivateTmp=yes",
        "\nPrivateDevices=", "\nSystemCallFilter=", "\nCapabilityBoundingSet="}) {
    EXPECT_EQ(unit->find(breaks_the_runtime), std::string::npos) << breaks_the_runtime;
  }
  // The check runs while the node's start job waits for an agent that never
  // sends READY: no ordering after the node's unit.
  auto check = ReadTextFileBounded(
      std::string(FLOTILLA_SOURCE_DIR) + "/node/systemd/flotilla-node-agent-check.service",
      1 << 16);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_EQ(check->find("\nAfter=flotilla-node.service"), std::string::npos);
  // verify needs ExecStart's binary: copies run the one this tree built;
  // the probation check's service and timer beside it.
  RunShell("mkdir -p " + dir_ + "/units");
  const std::string copy = dir_ + "/units/flotilla-node.service";
  const std::string units = std::string(FLOTILLA_SOURCE_DIR) + "/node/systemd/";
  for (const char* name : {"flotilla-node.service", "flotilla-node-agent-check.service",
                           "flotilla-node-agent-check.timer"}) {
    RunShell("sed 's#^ExecStart=/usr/bin/flotilla-node #ExecStart=" + BinaryPath("flotilla-node") +
             " #' " + units + name + " > " + dir_ + "/units/" + name);
  }
  auto verify = RunShell("cd " + dir_ + "/units && systemd-analyze verify " + copy + " " + dir_ +
                         "/units/flotilla-node-agent-check.service " + dir_ +
                         "/units/flotilla-node-agent-check.timer");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(verify.output, "") << "warnings are ignored settings";

  // The check itself catches a misspelt setting.
  RunShell("sed -i 's/^KillMode=process/KillMode=proces/' " + copy);
  verify = RunShell("systemd-analyze verify " + copy);
  EXPECT_NE(verify.output.find("kill mode"), std::string::npos) << verify.output;
}

TEST_F(NodeSystemd, ExampleConfigurationIsValidForRunAndMatchesTheUnit) {
  auto config = node::LoadNodeConfig(std::string(FLOTILLA_SOURCE_DIR) + "/node/systemd/node.json");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->data_dir, "/var/lib/flotilla");  // the unit's StateDirectory
  EXPECT_TRUE(config->deploy);
  EXPECT_EQ(config->transfer_mode, node::TransferMode::kP2p);
  EXPECT_EQ(config->apps, std::vector<std::string>{"signage"});
}

}  // namespace
}  // namespace flotilla::testing
