// flotilla-node status|apps|logs|update|rollback through the real binary,
// against a control server this test runs with a scripted view.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "core/file_io.h"
#include "node/control/control_protocol.h"
#include "node/control/control_server.h"
#include "tests/control/control_test_support.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class ControlCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("control-cli-");
    socket_ = dir_ + "/control.sock";
    control_.SetView(SampleView());
  }
  void TearDown() override {
    loop_.reset();
    server_.reset();
    RunShell("rm -rf " + dir_);
  }
  // Serves `socket` from a poll loop that also calls `tick` (may be empty).
  void Serve(const std::string& socket, std::function<void()> tick = {}) {
    auto made = node::ControlServer::Listen(socket, control_);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    server_ = std::move(*made);
    loop_ = std::make_unique<PollLoop>(std::vector<std::function<void()>>{[this, tick] {
      server_->Poll();
      if (tick) tick();
    }});
  }
  CommandResult Node(const std::string& args) {
    return RunShell("timeout 20 " + BinaryPath("flotilla-node") + " " + args + " 2>&1");
  }
  std::string dir_, socket_;
  ScriptedControl control_;
  std::unique_ptr<node::ControlServer> server_;
  std::unique_ptr<PollLoop> loop_;
};

TEST_F(ControlCli, StatusJsonIsTheViewForScripts) {
  Serve(socket_);
  auto r = RunShell(BinaryPath("flotilla-node") + " status --json --socket " + socket_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json json = Json::parse(r.output, nullptr, false);
  ASSERT_TRUE(json.is_object()) << r.output;
  auto view = node::ViewFromJson(json);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->device_name, "kiosk-lobby");
  ASSERT_EQ(view->apps.size(), 2u);
  EXPECT_EQ(view->apps[0].running_release, 3u);
  EXPECT_EQ(view->apps[0].target_release, 4u);
  EXPECT_EQ(view->apps[1].ready_release, 7u);
  EXPECT_EQ(json["apps"][0]["phase"], "downloading");
}

TEST_F(ControlCli, HumanStatusShowsAppsReleasesProgressAndErrors) {
  Serve(socket_);
  auto r = Node("status --socket " + socket_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("kiosk-lobby (site shop-7, p2p, flotilla 0.1.0)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("APP      STATE        RUNNING  PREVIOUS  READY  TARGET"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("signage  downloading  3        2         3      4       running"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("release 4 downloading:  25%  11.4 MiB / 45.8 MiB  512.0 KiB/s  3 "
                          "peers  ETA 1m09s"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("sensor   running      7        6         7      -"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("last error: rolled back by the operator from release 8"),
            std::string::npos);
  EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << "no terminal codes when not a tty";
}

TEST_F(ControlCli, StatusInATerminalRedrawsAProgressBarUntilTheTransferEnds) {
  // The transfer advances, then ends 3.5 s in: the command must redraw and then return.
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> ended{false};
  Serve(socket_, [&] {
    auto elapsed = std::chrono::steady_clock::now() - start;
    node::NodeView v = SampleView();
    if (elapsed > 3500ms) {
      if (ended.exchange(true)) return;
      v.apps[0].phase = "running";
      v.apps[0].running_release = 4;
    } else {
      v.apps[0].bytes_done = elapsed > 1000ms ? 36'000'000 : 12'000'000;
    }
    control_.SetView(v);
  });
  auto r = RunShell("timeout 20 script -qec '" + BinaryPath("flotilla-node") + " status --socket " +
                    socket_ + "' /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[#######.......................]   25%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[######################........]   75%"), std::string::npos) << r.output;
  EXPECT_GE(Count(r.output, "\x1b["), 2u) << "redrawn in place";
  EXPECT_GE(Count(r.output, "kiosk-lobby"), 3u);
  // The last frame: release 4 runs, no progress line.
  std::string last = r.output.substr(r.output.rfind("kiosk-lobby"));
  EXPECT_NE(last.find("signage  running"), std::string::npos) << last;
  EXPECT_EQ(last.find("%"), std::string::npos) << last;
}

TEST_F(ControlCli, WatchWithoutATerminalPrintsPlainBlocks) {
  Serve(socket_);
  auto r = RunShell("timeout 2.5 " + BinaryPath("flotilla-node") + " status --watch --socket " +
                    socket_);
  EXPECT_EQ(r.exit_code, 124) << "--watch runs until interrupted: " << r.output;
  EXPECT_GE(Count(r.output, "kiosk-lobby (site"), 2u) << r.output;
  EXPECT_EQ(r.output.find('\x1b'), std::string::npos);
}

TEST_F(ControlCli, AppsLogsUpdateAndRollback) {
  control_.logs = "started\nserving on :8080\n";
  Serve(socket_);
  auto apps = Node("apps --socket " + socket_);
  ASSERT_EQ(apps.exit_code, 0) << apps.output;
  EXPECT_EQ(apps.output,
            "APP      RUNNING  STATE        CONTAINER  RESTARTS\n"
            "signage  3        downloading  running    1\n"
            "sensor   7        running      running    0\n");

  auto logs = Node("logs signage --bytes 17 --socket " + socket_);
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_EQ(logs.output, "serving on :8080\n");
  EXPECT_EQ(Node("logs signage --bytes many --socket " + socket_).exit_code, 2);
  EXPECT_EQ(Node("logs --socket " + socket_).exit_code, 2);
  auto unknown = Node("logs nope --socket " + socket_);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.output, "flotilla-node logs: no app 'nope' is followed here\n");

  EXPECT_EQ(Node("update --socket " + socket_).exit_code, 2);
  EXPECT_EQ(control_.updates.load(), 0);
  auto update = Node("update --now --socket " + socket_);
  EXPECT_EQ(update.exit_code, 0) << update.output;
  EXPECT_NE(update.output.find("refreshing metadata now"), std::string::npos);
  EXPECT_EQ(control_.updates.load(), 1);

  auto rollback = Node("rollback signage --socket " + socket_);
  EXPECT_EQ(rollback.exit_code, 0) << rollback.output;
  EXPECT_EQ(rollback.output, "signage: release 1 runs (rolled back from 2)\n");
  auto no_app = Node("rollback nope --socket " + socket_);
  EXPECT_EQ(no_app.exit_code, 1);
  EXPECT_NE(no_app.output.find("no app 'nope' is followed here"), std::string::npos);
  EXPECT_EQ(Node("rollback signage --verbose --socket " + socket_).exit_code, 2);
}

TEST_F(ControlCli, SocketComesFromTheNodeConfiguration) {
  const std::string data_dir = dir_ + "/data";
  ASSERT_TRUE(CreateDirectories(data_dir).ok());
  Json config = {{"tracker_url", "http://127.0.0.1:1"},
                 {"enrolment_token", "fleet-token-for-tests-0123456789"},
                 {"device_name", "n"},
                 {"data_dir", data_dir},
                 {"root_of_trust", dir_ + "/root.json"},
                 {"apps", {"signage"}}};
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/default.json", config.dump()).ok());
  config["control_socket"] = dir_ + "/elsewhere.sock";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/explicit.json", config.dump()).ok());

  Serve(data_dir + "/control.sock");  // the default: <data_dir>/control.sock
  auto r = Node("apps --config " + dir_ + "/default.json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("signage"), std::string::npos);
  r = Node("apps --config " + dir_ + "/explicit.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "flotilla-node apps: no daemon listens on " + dir_ +
                          "/elsewhere.sock: is flotilla-node running?\n");
  r = Node("apps --config " + dir_ + "/missing.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("cannot find the control socket"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing.json"), std::string::npos) << r.output;
}

// Copies flotilla-node and flotilla-node-full into `dir` (created 0755), the
// latter with `full_mode`: what an unprivileged user runs, wherever the build
// tree is (a clone under /root is out of that user's reach).
std::string InstallNodeIn(const std::string& dir, std::filesystem::perms full_mode) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms(0755));
  for (const char* name : {"flotilla-node", "flotilla-node-full"}) {
    fs::copy_file(BinaryPath(name), dir + "/" + name, fs::copy_options::overwrite_existing);
  }
  fs::permissions(dir + "/flotilla-node", fs::perms(0755));
  fs::permissions(dir + "/flotilla-node-full", full_mode);
  return dir + "/flotilla-node";
}

// Runs `command` as user nobody, with /usr/libexec hidden (an installed
// package's flotilla-node-full would answer instead of the one under test).
CommandResult AsNobody(const std::string& command) {
  return RunShell(
      "unshare --mount sh -c 'mount -t tmpfs none /usr/libexec 2>/dev/null; exec setpriv "
      "--reuid=65534 --regid=65534 --clear-groups " +
      command + "' 2>&1");
}

TEST_F(ControlCli, NoDaemonAndNotRootAreClearErrors) {
  auto r = Node("status --socket " + socket_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "flotilla-node status: no daemon listens on " + socket_ +
                          ": is flotilla-node running?\n");
  Serve(socket_);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  const std::string node = InstallNodeIn(dir_ + "/bin", std::filesystem::perms(0755));
  r = AsNobody(node + " status --socket " + socket_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "flotilla-node status: permission denied on " + socket_ +
                          ": the control socket is root-only (try sudo)\n");
}

TEST_F(ControlCli, AFullNodeThisUserMayNotRunIsAClearError) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  const std::string node = InstallNodeIn(dir_ + "/bin", std::filesystem::perms(0700));
  auto r = AsNobody(node + " status --socket " + socket_);
  EXPECT_EQ(r.exit_code, 127) << r.output;
  EXPECT_NE(r.output.find("cannot start flotilla-node-full"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/bin/flotilla-node-full (Permission denied)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("run flotilla-node as root"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Reinstall"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace flotilla::testing
