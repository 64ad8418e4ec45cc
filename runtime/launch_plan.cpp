#include "runtime/launch_plan.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "core/file_io.h"

namespace flotilla::runtime {
namespace {

constexpr uint64_t kMaxStateFile = 1 << 20;

Result<Json> LoadJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxStateFile));
  return ParseJsonStrict(text).WithContext(path);
}

}  // namespace

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
  j["mounts"] = Json::array();
  for (const auto& m : p.mounts) {
    j["mounts"].push_back(
        {{"source", m.source}, {"destination", m.destination}, {"read_only", m.read_only}});
  }
  j["cgroup_procs"] = p.cgroup_procs;
  j["cgroup_dirs"] = p.cgroup_dirs;
  j["oom_events_file"] = p.oom_events_file;
  j["seccomp_cache"] = p.seccomp_cache;
  return j;
}

Result<LaunchPlan> ParseLaunchPlan(const Json& j) {
  LaunchPlan p;
  try {
    ASSIGN_OR_RETURN(p.spec, appspec::ParseAppSpec(j.at("spec")));
    p.lowers = j.at("lowers").get<std::vector<std::string>>();
    p.dir = j.at("dir").get<std::string>();
    for (const auto& d : j.at("devices")) {
      ResolvedDevice rd;
      rd.path = d.at("path").get<std::string>();
      rd.type = d.at("type").get<std::string>().at(0);
      rd.major = d.at("major").get<uint32_t>();
      rd.minor = d.at("minor").get<uint32_t>();
      rd.mode = d.at("mode").get<mode_t>();
      rd.access = d.at("access").get<std::string>();
      p.devices.push_back(rd);
    }
    for (const auto& m : j.at("mounts")) {
      p.mounts.push_back({m.at("source").get<std::string>(), m.at("destination").get<std::string>(),
                          m.at("read_only").get<bool>()});
    }
    p.cgroup_procs = j.at("cgroup_procs").get<std::vector<std::string>>();
    p.cgroup_dirs = j.at("cgroup_dirs").get<std::vector<std::string>>();
    p.oom_events_file = j.at("oom_events_file").get<std::string>();
    p.seccomp_cache = j.at("seccomp_cache").get<std::string>();
  } catch (const std::exception& e) {
    return Corruption(std::string("launch plan: ") + e.what());
  }
  return p;
}

Result<LaunchPlan> LoadLaunchPlan(const std::string& dir) {
  ASSIGN_OR_RETURN(Json j, LoadJson(LaunchFile(dir)));
  return ParseLaunchPlan(j);
}

std::string ExitRecord::Describe() const {
  if (!start_error.empty()) return start_error;
  std::string what = signal != 0 ? "killed by signal " + std::to_string(signal)
                                 : "exited with code " + std::to_string(exit_code);
  if (oom_killed) what += " (out of memory)";
  return unhealthy.empty() ? what : unhealthy + "; stopped: " + what;
}

Json RunningRecordToJson(const RunningRecord& r) {
  return {{"monitor_pid", r.monitor_pid},
          {"monitor_start_ticks", r.monitor_start_ticks},
          {"init_pid", r.init_pid},
          {"init_start_ticks", r.init_start_ticks},
          {"started_unix_ms", r.started_unix_ms}};
}

Result<RunningRecord> LoadRunningRecord(const std::string& dir) {
  ASSIGN_OR_RETURN(Json j, LoadJson(RunningFile(dir)));
  RunningRecord r;
  try {
    r.monitor_pid = j.at("monitor_pid").get<pid_t>();
    r.monitor_start_ticks = j.at("monitor_start_ticks").get<uint64_t>();
    r.init_pid = j.at("init_pid").get<pid_t>();
    r.init_start_ticks = j.at("init_start_ticks").get<uint64_t>();
    r.started_unix_ms = j.at("started_unix_ms").get<int64_t>();
  } catch (const std::exception& e) {
    return Corruption(RunningFile(dir) + ": " + e.what());
  }
  return r;
}

Json ExitRecordToJson(const ExitRecord& r) {
  return {{"exit_code", r.exit_code},
          {"signal", r.signal},
          {"oom_killed", r.oom_killed},
          {"start_error", r.start_error},
          {"finished_unix_ms", r.finished_unix_ms}};
}

Result<ExitRecord> LoadExitRecord(const std::string& dir) {
  ASSIGN_OR_RETURN(Json j, LoadJson(ExitFile(dir)));
  ExitRecord r;
  try {
    r.exit_code = j.at("exit_code").get<int>();
    r.signal = j.at("signal").get<int>();
    r.oom_killed = j.at("oom_killed").get<bool>();
    r.start_error = j.at("start_error").get<std::string>();
    r.finished_unix_ms = j.at("finished_unix_ms").get<int64_t>();
  } catch (const std::exception& e) {
    return Corruption(ExitFile(dir) + ": " + e.what());
  }
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
  auto text = ReadTextFileBounded("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!text.ok()) return text.status();
  // The command name (field 2) may hold spaces and ')': skip to the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return Corruption("unreadable /proc stat");
  size_t pos = close + 2;
  for (int field = 3; field < 22; ++field) {
    pos = text->find(' ', pos);
    if (pos == std::string::npos) return Corruption("short /proc stat");
    ++pos;
  }
  return std::stoull(text->substr(pos));
}

bool ProcessMatches(pid_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  auto ticks = ProcessStartTicks(pid);
  return ticks.ok() && *ticks == start_ticks;
}

}  // namespace flotilla::runtime
