#include "runtime/launch_plan.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "core/file_io.h"
#include "runtime/state_file.h"

namespace flotilla::runtime {

Json LaunchPlanToJson(const LaunchPlan& p) {
  Json j;
  j["spec"] = appspec::AppSpecToJson(p.spec);
  j["lowers"] = p.lowers;
  j["dir"] = p.dir;
  j["devices"] = Json::array();
  for (const auto& d : p.devices) {
    j["devices"].push_back({{"path", d.path},
                            {"type", std::string(1, d.type)},
                            {"major", d.major},
                            {"minor", d.minor},
                            {"mode", d.mode},
                            {"access", d.access}});
  }
  j["mounts"] = p.mounts;
  j["cgroup_procs"] = p.cgroup_procs;
  j["cgroup_dirs"] = p.cgroup_dirs;
  j["oom_events_file"] = p.oom_events_file;
  j["seccomp_cache"] = p.seccomp_cache;
  return j;
}

namespace {

void ReadDevice(JsonObjectReader& r, ResolvedDevice& device) {
  r.Require({"path", "type", "major", "minor", "mode", "access"});
  std::string type;
  r.String("path", device.path);
  r.String("type", type);
  r.Unsigned("major", device.major);
  r.Unsigned("minor", device.minor);
  r.Unsigned("mode", device.mode);
  r.String("access", device.access);
  r.Check(type == "c" || type == "b", "type", "must be c or b");
  if (!type.empty()) device.type = type[0];
}

}  // namespace

Result<LaunchPlan> ParseLaunchPlan(const Json& j) {
  LaunchPlan p;
  JsonObjectReader r(j, "launch plan", UnknownKeys::kIgnore);
  r.Require({"spec", "lowers", "dir", "devices", "mounts", "cgroup_procs", "cgroup_dirs",
             "oom_events_file", "seccomp_cache"});
  const Json* spec = r.Object("spec");
  r.Strings("lowers", p.lowers);
  r.String("dir", p.dir);
  r.Objects("devices", [&](JsonObjectReader& d) { ReadDevice(d, p.devices.emplace_back()); });
  r.Objects("mounts", [&](JsonObjectReader& m) {
    ResolvedMount& mount = p.mounts.emplace_back();
    m.Require({"source", "destination", "read_only"});
    m.String("source", mount.source);
    m.String("destination", mount.destination);
    m.Bool("read_only", mount.read_only);
  });
  r.Strings("cgroup_procs", p.cgroup_procs);
  r.Strings("cgroup_dirs", p.cgroup_dirs);
  r.String("oom_events_file", p.oom_events_file);
  r.String("seccomp_cache", p.seccomp_cache);
  if (Status st = r.Finish(); !st.ok()) return Corruption(st.message());
  ASSIGN_OR_RETURN(p.spec, appspec::ParseAppSpec(*spec));
  return p;
}

Result<LaunchPlan> LoadLaunchPlan(const std::string& dir) {
  ASSIGN_OR_RETURN(Json j, LoadStateJson(LaunchFile(dir)));
  return ParseLaunchPlan(j);
}

std::string ExitRecord::Describe() const {
  if (!start_error.empty()) return start_error;
  std::string what = signal != 0 ? "killed by signal " + std::to_string(signal)
                                 : "exited with code " + std::to_string(exit_code);
  if (oom_killed) what += " (out of memory)";
  return unhealthy.empty() ? what : unhealthy + "; stopped: " + what;
}

Result<RunningRecord> LoadRunningRecord(const std::string& dir) {
  auto read = [](JsonObjectReader& r, RunningRecord& rec) {
    r.Require(
        {"monitor_pid", "monitor_start_ticks", "init_pid", "init_start_ticks", "started_unix_ms"});
    r.Int("monitor_pid", rec.monitor_pid);
    r.Unsigned("monitor_start_ticks", rec.monitor_start_ticks);
    r.Int("init_pid", rec.init_pid);
    r.Unsigned("init_start_ticks", rec.init_start_ticks);
    r.Int("started_unix_ms", rec.started_unix_ms);
  };
  return LoadStateRecord<RunningRecord>(RunningFile(dir), read);
}

Result<ExitRecord> LoadExitRecord(const std::string& dir) {
  auto read = [](JsonObjectReader& r, ExitRecord& rec) {
    r.Require({"exit_code", "signal", "oom_killed", "start_error", "finished_unix_ms"});
    r.Int("exit_code", rec.exit_code);
    r.Int("signal", rec.signal);
    r.Bool("oom_killed", rec.oom_killed);
    r.String("start_error", rec.start_error);
    r.Int("finished_unix_ms", rec.finished_unix_ms);
  };
  ASSIGN_OR_RETURN(ExitRecord r, LoadStateRecord<ExitRecord>(ExitFile(dir), read));
  auto unhealthy = ReadTextFileBounded(UnhealthyFile(dir), 4096);
  if (unhealthy.ok()) r.unhealthy = *unhealthy;
  return r;
}

Status WriteFileReplace(const std::string& path, std::string_view data, mode_t mode) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return IOErrorFromErrno("create " + temp, errno);
  if (Status st = WriteAll(fd.get(), data); !st.ok()) {
    ::unlink(temp.c_str());
    return st.WithContext(temp);
  }
  fd.Reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return IOErrorFromErrno("rename " + temp, err);
  }
  return Status::Ok();
}

Result<uint64_t> ProcessStartTicks(pid_t pid) {
  ASSIGN_OR_RETURN(std::string text,
                   ReadTextFileBounded("/proc/" + std::to_string(pid) + "/stat", 4096));
  // The command name (field 2) may hold spaces and ')': skip to the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) {
    return Corruption("unreadable /proc stat");
  }
  // A zombie (state Z, or X while it is reaped) has ended: it is no process to wait for.
  if (text[close + 2] == 'Z' || text[close + 2] == 'X') return NotFound("process ended");
  size_t pos = close + 2;
  for (int field = 3; field < 22; ++field) {
    pos = text.find(' ', pos);
    if (pos == std::string::npos) return Corruption("short /proc stat");
    ++pos;
  }
  return std::stoull(text.substr(pos));
}

bool ProcessMatches(pid_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  auto ticks = ProcessStartTicks(pid);
  return ticks.ok() && *ticks == start_ticks;
}

}  // namespace flotilla::runtime
