#include "tests/node/node_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "core/file_io.h"
#include "tests/test_util.h"

namespace flotilla::testing {
namespace {

pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int StopPid(pid_t& pid, int sig) {
  if (pid <= 0) return -1;
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

bool ServeProcess::Start(const std::string& dir, const std::string& repo, int port) {
  const std::string token_file = dir + "/fleet-token";
  if (!WriteFileAtomic(token_file, std::string("fleet-token-for-tests-0123456789\n"), 0600).ok()) {
    return false;
  }
  const std::string port_file = dir + "/port";
  ::unlink(port_file.c_str());
  pid_ = Spawn({BinaryPath("flotilla-tracker"), "serve", "--listen",
                "127.0.0.1:" + std::to_string(port), "--repository", repo, "--port-file", port_file,
                "--fleet-token-file", token_file, "--log-level", "info"},
               dir + "/tracker.log");
  return WaitFor(
      [&] {
        auto text = ReadTextFileBounded(port_file, 64);
        if (!text.ok() || text->empty()) return false;
        port_ = std::atoi(text->c_str());
        return true;
      },
      std::chrono::seconds(10));
}

void ServeProcess::Stop() { StopPid(pid_, SIGTERM); }
void ServeProcess::Kill() { StopPid(pid_, SIGKILL); }

bool NodeProcess::Start(const std::string& dir, const Json& config) {
  dir_ = dir;
  const std::string path = dir + "/node.json";
  if (!WriteFileAtomic(path, config.dump(2)).ok()) return false;
  pid_ = Spawn({BinaryPath("flotilla-node"), "run", "--config", path}, dir + "/node.log");
  return pid_ > 0;
}

int NodeProcess::Stop() { return StopPid(pid_, SIGTERM); }

int NodeProcess::WaitExit(std::chrono::milliseconds timeout) {
  int status = 0;
  bool exited =
      pid_ > 0 && WaitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
  if (!exited) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
void NodeProcess::Kill() { StopPid(pid_, SIGKILL); }

std::string NodeProcess::Log() const {
  auto text = ReadTextFileBounded(dir_ + "/node.log", 16 << 20);
  return text.ok() ? *text : "";
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

Json AppState(const std::string& data_dir, const std::string& app) {
  auto text = ReadTextFileBounded(data_dir + "/state.json", 1 << 20);
  if (!text.ok()) return nullptr;
  auto json = Json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.contains("apps") || !json["apps"].contains(app)) return nullptr;
  return json["apps"][app];
}

std::string QueryTrackerDb(const std::string& db, const std::string& sql) {
  auto r = RunShell(
      "python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
      "[print(*row, sep=\"|\") for row in c.execute(sys.argv[2])]' '" +
      db + "' \"" + sql + "\" 2>&1");
  return r.output;
}

uint64_t ArtifactBytesServed(int port, const std::string& sha256) {
  auto r = RunShell("curl -sf http://127.0.0.1:" + std::to_string(port) +
                    "/metrics | grep 'flotilla_artifact_bytes_served_total{artifact=\"" + sha256 +
                    "\"}' | awk '{print $2}'");
  return std::strtoull(r.output.c_str(), nullptr, 10);
}

bool InitRepository(const std::string& dir, const std::string& repo) {
  auto r = RunShell(BinaryPath("flotilla-tracker") + " init " + repo +
                    " --public-url http://127.0.0.1:1 > " + dir + "/init.log 2>&1");
  return r.exit_code == 0;
}

bool PublishImage(const std::string& dir, const std::string& repo, const std::string& app,
                  int random_kib, const std::string& seed, const std::string& variant,
                  const Json& app_spec) {
  const std::string image = dir + "/image-" + seed + "-" + variant + ".tar";
  const std::string spec = dir + "/" + app + ".json";
  const Json sleeper = {{"name", app}, {"command", {"/bin/sh", "-c", "sleep 1000"}}};
  if (!WriteFileAtomic(spec, (app_spec.is_null() ? sleeper : app_spec).dump()).ok()) return false;
  auto made =
      RunShell("python3 " + std::string(FLOTILLA_SOURCE_DIR) + "/tests/node/make_node_image.py " +
               image + " " + std::to_string(random_kib) + " " + seed + " " + variant + " 2>&1");
  if (made.exit_code != 0) return false;
  auto r = RunShell(BinaryPath("flotilla-tracker") + " publish --repository " + repo + " --app " +
                    app + " --spec " + spec + " " + image + " >> " + dir + "/publish.log 2>&1");
  return r.exit_code == 0;
}

Json NodeConfigFor(const std::string& name, const std::string& data_dir,
                   const std::string& tracker_url, const std::string& root,
                   const std::string& app) {
  return Json{{"tracker_url", tracker_url},
              {"enrolment_token", "fleet-token-for-tests-0123456789"},
              {"device_name", name},
              {"data_dir", data_dir},
              {"root_of_trust", root},
              {"apps", {app}},
              {"transfer_mode", "http-only"},
              {"refresh_interval_s", 1},
              {"report_interval_s", 1},
              {"log_level", "debug"},
              {"deploy", false},
              {"lan", {{"enabled", false}}}};
}

std::optional<CommandResult> EnterNetnsWithLoopbackMulticast() {
  if (::unshare(CLONE_NEWNET) != 0) return std::nullopt;
  return RunShell(
      "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo 2>&1");
}

}  // namespace flotilla::testing
