// `flotilla-node app ...`: drives the built-in container runtime directly,
// without a tracker (docs/runtime.md, "Command line").
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "core/clock.h"
#include "core/file_io.h"
#include "node/commands.h"
#include "runtime/runtime.h"

namespace flotilla::node {
namespace {

using runtime::Runtime;

struct AppFlags {
  std::string state_dir;
  std::string monitor;
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_version = "auto";
  std::string name;
  std::string spec_file;
  std::vector<std::string> lowers;
  std::string release;
  std::string out_dir;
  bool json = false;
  bool once = false;
  double for_seconds = 0;
};

Result<std::unique_ptr<Runtime>> OpenRuntime(const AppFlags& f) {
  runtime::RuntimeOptions options;
  options.state_dir = f.state_dir;
  options.monitor_path = f.monitor.empty() ? runtime::DefaultMonitorPath() : f.monitor;
  options.cgroup.root = f.cgroup_root;
  options.cgroup.version = f.cgroup_version == "1"   ? runtime::CgroupVersion::kV1
                           : f.cgroup_version == "2" ? runtime::CgroupVersion::kV2
                                                     : runtime::CgroupVersion::kAuto;
  return Runtime::Open(std::move(options), SystemClock::Instance());
}

int AppFail(const char* what, const Status& st) {
  fmt::print(stderr, "app {}: {}\n", what, st.ToString());
  return 1;
}

int PrintOutcome(const runtime::DeployOutcome& o) {
  fmt::print("{} {}: release {}\n", o.app, o.message, o.release);
  return o.switched || o.message.rfind("already", 0) == 0 || o.message == "started" ? 0 : 3;
}

Json StatusToJson(const runtime::AppStatus& s) {
  Json j = {{"name", s.name},
            {"current", s.current},
            {"previous", s.previous},
            {"desired_running", s.desired_running},
            {"state", runtime::ContainerStateName(s.state)},
            {"pid", s.init_pid},
            {"restarts", s.restarts},
            {"last_exit", s.last_exit},
            {"running_releases", s.running_releases},
            {"switch", nullptr}};
  if (s.switching) {
    j["switch"] = {{"from", s.switching->from},
                   {"to", s.switching->to},
                   {"step", runtime::SwitchStepName(s.switching->step)}};
  }
  return j;
}

int RunLs(Runtime& rt, bool json) {
  auto apps = rt.List();
  if (!apps.ok()) return AppFail("ls", apps.status());
  if (json) {
    Json all = Json::array();
    for (const auto& s : *apps) all.push_back(StatusToJson(s));
    fmt::print("{}\n", all.dump());
    return 0;
  }
  fmt::print("{:<16} {:<14} {:<8} {:>8} {:>8}  {}\n", "APP", "RELEASE", "STATE", "PID", "RESTARTS",
             "LAST EXIT");
  for (const auto& s : *apps) {
    std::string state(s.desired_running ? runtime::ContainerStateName(s.state) : "stopped");
    if (s.switching) state = "switching:" + std::string(runtime::SwitchStepName(s.switching->step));
    fmt::print("{:<16} {:<14} {:<8} {:>8} {:>8}  {}\n", s.name, s.current, state, s.init_pid,
               s.restarts, s.last_exit);
  }
  return 0;
}

// Reconciles until killed (or once, or for a while): the supervision loop
// a node runs, usable on its own.
int RunSupervise(Runtime& rt, const AppFlags& f) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(f.for_seconds * 1000));
  for (;;) {
    auto next = rt.Reconcile();
    if (!next.ok()) fmt::print(stderr, "app supervise: {}\n", next.status().ToString());
    if (f.once) return next.ok() ? 0 : 1;
    if (f.for_seconds > 0 && std::chrono::steady_clock::now() >= until) return 0;
    std::this_thread::sleep_for(next.ok() ? *next : std::chrono::seconds(1));
  }
}

// The app spec of --spec and the canonical paths of each --lower.
struct SpecAndLowers {
  appspec::AppSpec spec;
  std::vector<std::string> lowers;
};

Result<SpecAndLowers> LoadSpecAndLowers(const AppFlags& f) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(f.spec_file, 1 << 20));
  auto spec = appspec::ParseAppSpecText(text);
  if (!spec.ok()) return spec.status().WithContext(f.spec_file);
  SpecAndLowers out{std::move(spec).value(), {}};
  for (const auto& l : f.lowers) {
    std::error_code ec;
    auto abs = std::filesystem::canonical(l, ec);
    if (ec) return NotFound("lower " + l + " does not exist");
    out.lowers.push_back(abs.string());
  }
  return out;
}

int RunDeploy(Runtime& rt, const AppFlags& f) {
  auto loaded = LoadSpecAndLowers(f);
  if (!loaded.ok()) return AppFail("deploy", loaded.status());
  auto outcome = rt.Deploy(loaded->spec, loaded->lowers, f.release);
  if (!outcome.ok()) return AppFail("deploy", outcome.status());
  return PrintOutcome(*outcome);
}

// Runs a spec once in the foreground (like `runc run`): prints the app's
// output, exits with its exit code (128+signal when killed).
int RunOnce(Runtime& rt, const AppFlags& f) {
  auto loaded = LoadSpecAndLowers(f);
  if (!loaded.ok()) return AppFail("run", loaded.status());
  auto result = rt.RunOnce(loaded->spec, loaded->lowers);
  if (!result.ok()) {
    AppFail("run", result.status());
    return 125;  // as docker run: the container could not run, not the app's code
  }
  std::fwrite(result->logs.data(), 1, result->logs.size(), stdout);
  if (!result->exit.start_error.empty()) {
    fmt::print(stderr, "app run: {}\n", result->exit.start_error);
    return 125;
  }
  return result->exit.signal ? 128 + result->exit.signal : result->exit.exit_code;
}

int Dispatch(const std::string& command, const AppFlags& f) {
  auto rt = OpenRuntime(f);
  if (!rt.ok()) return AppFail(command.c_str(), rt.status());
  Runtime& r = **rt;
  if (command == "deploy") return RunDeploy(r, f);
  if (command == "ls") return RunLs(r, f.json);
  if (command == "supervise") return RunSupervise(r, f);
  if (command == "run") return RunOnce(r, f);
  if (command == "logs") {
    auto logs = r.Logs(f.name, f.release);
    if (!logs.ok()) return AppFail("logs", logs.status());
    std::fwrite(logs->data(), 1, logs->size(), stdout);
    return 0;
  }
  if (command == "stop") {
    Status st = r.Stop(f.name);
    if (!st.ok()) return AppFail("stop", st);
    fmt::print("{} stopped\n", f.name);
    return 0;
  }
  if (command == "rollback") {
    auto outcome = r.Rollback(f.name);
    if (!outcome.ok()) return AppFail("rollback", outcome.status());
    return PrintOutcome(*outcome);
  }
  if (command == "export") {
    Status st = r.ExportBundle(f.name, f.out_dir);
    if (!st.ok()) return AppFail("export", st);
    fmt::print("{}: OCI bundle written to {}\n", f.name, f.out_dir);
    return 0;
  }
  return -1;
}

}  // namespace

CommandAction RegisterAppCommands(CLI::App& app) {
  auto flags = std::make_shared<AppFlags>();
  auto* group = app.add_subcommand(
      "app", "Run apps in the built-in container runtime directly (no tracker needed)");
  group->require_subcommand(1);
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--state-dir", flags->state_dir,
                    "The runtime's state directory; every cgroup and socket derives from it")
        ->required();
    cmd->add_option("--monitor", flags->monitor, "Path of flotilla-monitor (default: found)");
    cmd->add_option("--cgroup-root", flags->cgroup_root, "Where cgroupfs is mounted");
    cmd->add_option("--cgroup-version", flags->cgroup_version, "auto, 1 or 2")
        ->check(CLI::IsMember({"auto", "1", "2"}));
  };
  auto named = [&](CLI::App* cmd) {
    common(cmd);
    cmd->add_option("name", flags->name, "App name")->required();
  };
  auto with_spec = [&](CLI::App* cmd) {
    common(cmd);
    cmd->add_option("--spec", flags->spec_file, "App spec JSON (docs/app-spec.md)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--lower", flags->lowers, "Lower directory, top-most first (repeatable)")
        ->required();
  };
  auto* deploy = group->add_subcommand(
      "deploy",
      "Deploy an app spec over unpacked layers: start beside the old release, "
      "wait healthy, stop the old (or roll back)");
  with_spec(deploy);
  deploy->add_option("--release", flags->release, "Release id (default: from spec and lowers)");
  auto* run = group->add_subcommand(
      "run", "Run an app spec once in the foreground and print its output (like runc run)");
  with_spec(run);
  auto* ls = group->add_subcommand("ls", "List apps, their releases and containers");
  common(ls);
  ls->add_flag("--json", flags->json, "One JSON array instead of a table");
  auto* logs = group->add_subcommand("logs", "Print an app's log ring");
  named(logs);
  logs->add_option("--release", flags->release, "Which release (default: current)");
  auto* stop = group->add_subcommand("stop", "Stop an app (grace period, then SIGKILL)");
  named(stop);
  auto* rollback = group->add_subcommand("rollback", "Switch back to the previous release");
  named(rollback);
  auto* exp = group->add_subcommand("export", "Write an OCI runtime bundle of the app");
  named(exp);
  exp->add_option("--out", flags->out_dir, "Bundle directory")->required();
  auto* supervise = group->add_subcommand(
      "supervise", "Re-adopt the containers and supervise them (restart policy, switches)");
  common(supervise);
  supervise->add_flag("--once", flags->once, "One pass, then exit");
  supervise->add_option("--for-seconds", flags->for_seconds, "Stop after this long");
  return [group, flags] {
    if (!*group) return -1;
    for (const auto* cmd : group->get_subcommands()) return Dispatch(cmd->get_name(), *flags);
    return -1;
  };
}

}  // namespace flotilla::node
