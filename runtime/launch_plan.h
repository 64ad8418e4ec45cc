// The launch plan: everything the per-container monitor needs to start one
// container, computed by the runtime (which resolves volumes, devices and
// cgroups) and written as <release dir>/launch.json before the monitor runs.
// The monitor trusts this file: it lives in the runtime's 0700 state dir.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "appspec/app_spec.h"
#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla::runtime {

struct ResolvedDevice {
  std::string path;  // inside the container, the same as on the host
  char type = 'c';   // 'c' or 'b'
  uint32_t major = 0;
  uint32_t minor = 0;
  mode_t mode = 0666;
  std::string access = "rw";
};

struct ResolvedMount {
  std::string source;  // absolute host path
  std::string destination;
  bool read_only = false;
};
// to_json (nlohmann): the fields by their names, as launch.json holds them.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ResolvedMount, source, destination, read_only)

struct LaunchPlan {
  appspec::AppSpec spec;
  std::vector<std::string> lowers;  // top-most first, as overlayfs's lowerdir
  std::string dir;                  // the release dir: upper/, work/, rootfs/, state files
  std::vector<ResolvedDevice> devices;
  std::vector<ResolvedMount> mounts;
  std::vector<std::string> cgroup_procs;  // cgroup.procs files the container joins
  std::vector<std::string> cgroup_dirs;   // removed by the monitor after the container died
  std::string oom_events_file;            // "oom_kill N" is read from it at exit
  std::string seccomp_cache;              // compiled default profile, shared by containers
};

Json LaunchPlanToJson(const LaunchPlan& plan);
Result<LaunchPlan> ParseLaunchPlan(const Json& json);
Result<LaunchPlan> LoadLaunchPlan(const std::string& dir);

// Files of a release dir.
inline std::string LaunchFile(const std::string& dir) { return dir + "/launch.json"; }
inline std::string RunningFile(const std::string& dir) { return dir + "/running.json"; }
inline std::string ExitFile(const std::string& dir) { return dir + "/exit.json"; }
inline std::string LogFile(const std::string& dir) { return dir + "/log"; }
// Written by the runtime before it stops a container that failed its health
// rechecks: the stop's exit is then recorded as unhealthy (a failure), even
// when the node dies during the stop. Removed when the release starts again.
inline std::string UnhealthyFile(const std::string& dir) { return dir + "/unhealthy"; }
inline constexpr const char* kMonitorSocketName = "monitor.sock";

// What the monitor records once the container runs.
struct RunningRecord {
  pid_t monitor_pid = 0;
  uint64_t monitor_start_ticks = 0;
  pid_t init_pid = 0;  // in the host's pid namespace
  uint64_t init_start_ticks = 0;
  int64_t started_unix_ms = 0;
};

// What the monitor records once the container is gone.
struct ExitRecord {
  int exit_code = -1;  // -1 when killed by a signal or never started
  int signal = 0;
  bool oom_killed = false;
  std::string start_error;  // set when the container never ran, or was lost
  int64_t finished_unix_ms = 0;
  // Not in exit.json: from UnhealthyFile, when the runtime stopped the
  // container because its health rechecks failed.
  std::string unhealthy;
  bool Success() const {
    return start_error.empty() && unhealthy.empty() && signal == 0 && exit_code == 0;
  }
  std::string Describe() const;
};

// running.json and exit.json: the records' fields by their names (nlohmann's
// to_json; `unhealthy` is not among them).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RunningRecord, monitor_pid, monitor_start_ticks, init_pid,
                                   init_start_ticks, started_unix_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ExitRecord, exit_code, signal, oom_killed, start_error,
                                   finished_unix_ms)
Result<RunningRecord> LoadRunningRecord(const std::string& dir);
Result<ExitRecord> LoadExitRecord(const std::string& dir);

// Replaces `path` via a temporary file and rename, without fsync: readers
// never see a partial file, a crashed process never leaves one, but a power
// cut may lose the write. For the container files (launch, running, exit,
// log): a power cut kills the containers they describe anyway, and the
// runtime treats a container whose monitor is gone as lost.
Status WriteFileReplace(const std::string& path, std::string_view data, mode_t mode = 0600);

// Field 22 of /proc/PID/stat: with the pid it names one process for good,
// so a recycled pid is never mistaken for a container. NotFound for a
// process that has ended, reaped or not (a zombie).
Result<uint64_t> ProcessStartTicks(pid_t pid);
bool ProcessMatches(pid_t pid, uint64_t start_ticks);

}  // namespace flotilla::runtime
