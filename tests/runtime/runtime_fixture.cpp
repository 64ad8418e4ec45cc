#include "tests/runtime/runtime_fixture.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/file_io.h"
#include "runtime/runtime.h"

namespace flotilla::testing {

namespace fs = std::filesystem;

void RuntimeTest::SetUp() {
  dir_ = MakeTempDir("runtime");
  ASSERT_FALSE(dir_.empty());
  lower_ = dir_ + "/lower";
  state_ = dir_ + "/state";
  sentinel_ = dir_ + "/host-sentinel";
  std::ofstream(sentinel_) << "host only\n";
  for (const char* d : {"/bin", "/tmp", "/proc", "/sys", "/dev", "/data"}) {
    fs::create_directories(lower_ + d);
  }
  fs::permissions(lower_ + "/tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file("/bin/busybox", lower_ + "/bin/busybox");
  for (const char* tool : {"sh", "sleep", "true", "false", "cat", "echo", "ls", "test", "touch"}) {
    fs::create_symlink("busybox", lower_ + "/bin/" + tool);
  }
  fs::copy_file(FLOTILLA_PROBE, lower_ + "/probe");
}

void RuntimeTest::TearDown() {
  for (const auto& [name, status] : Ls()) App("stop " + name);
  // Every cgroup this state dir made lives under one parent per controller.
  auto parent = runtime::CgroupParentFor(state_);
  if (parent.ok()) {
    for (const char* ctrl : {"memory", "pids", "cpu", "devices"}) {
      ::rmdir(("/sys/fs/cgroup/" + std::string(ctrl) + "/" + *parent).c_str());
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

CommandResult RuntimeTest::App(const std::string& args, const std::string& env) {
  std::string command = env + (env.empty() ? "" : " ") +
                        "FLOTILLA_MONITOR=" + FLOTILLA_MONITOR_BINARY + " " +
                        BinaryPath("flotilla-node") + " app " + args + " --state-dir " + state_;
  return RunShell(command);
}

CommandResult RuntimeTest::Deploy(const Json& spec, const std::string& release,
                                  const std::string& env) {
  std::string path = dir_ + "/spec-" + spec["name"].get<std::string>() + "-" + release + ".json";
  WriteFileAtomic(path, spec.dump()).IgnoreError();
  return App("deploy --spec " + path + " --lower " + lower_ + " --release " + release, env);
}

std::map<std::string, Json> RuntimeTest::Ls() {
  std::map<std::string, Json> out;
  auto r = App("ls --json");
  if (r.exit_code != 0) return out;
  auto parsed = ParseJsonStrict(r.output);
  if (!parsed.ok() || !parsed->is_array()) return out;
  for (const auto& app : *parsed) out[app["name"].get<std::string>()] = app;
  return out;
}

std::string RuntimeTest::Logs(const std::string& app, const std::string& release) {
  return App("logs " + app + (release.empty() ? "" : " --release " + release)).output;
}

bool RuntimeTest::WaitFor(const std::function<bool()>& pred, double seconds) {
  return flotilla::testing::WaitFor(pred,
                                    std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)),
                                    std::chrono::milliseconds(50));
}

bool RuntimeTest::WaitForLog(const std::string& app, const std::string& text, double seconds,
                             const std::string& release) {
  return WaitFor([&] { return Logs(app, release).find(text) != std::string::npos; }, seconds);
}

std::map<std::string, std::string> RuntimeTest::ParseFacts(const std::string& text) {
  std::map<std::string, std::string> facts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos) facts[line.substr(0, eq)] = line.substr(eq + 1);
    pos = end + 1;
  }
  return facts;
}

Json RuntimeTest::BaseSpec(const std::string& name, const Json& command) {
  return {{"name", name},
          {"command", command},
          {"restart", {{"policy", "no"}}},
          {"health", {{"type", "running"}, {"seconds", 0}}},
          {"stop_grace_ms", 2000}};
}

pid_t RuntimeTest::AppPidUnder(pid_t init_pid) {
  auto children = ReadTextFileBounded(
      "/proc/" + std::to_string(init_pid) + "/task/" + std::to_string(init_pid) + "/children",
      4096);
  return children.ok() ? std::atoi(children->c_str()) : 0;
}

bool RuntimeTest::Alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace flotilla::testing
