// Starting, observing and stopping one release's container from the node's
// side, through its monitor and the files in its release dir. Everything
// here works equally for a container this process started and for one it
// re-adopted after a restart: the files and the recorded pids are the truth.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "runtime/cgroup.h"
#include "runtime/launch_plan.h"

namespace flotilla::runtime {

enum class ContainerState {
  kNone,     // never started here
  kRunning,  // monitor and PID 1 alive, as recorded
  kExited,   // exit.json written by the monitor
  kLost,     // recorded as started, but the monitor died without a record
};

std::string_view ContainerStateName(ContainerState state);

struct ContainerStatus {
  ContainerState state = ContainerState::kNone;
  std::optional<RunningRecord> running;
  std::optional<ExitRecord> exit;
};

class ContainerControl {
 public:
  // `monitor_path`: the flotilla-monitor binary. `cgroups`: shared, outlives this.
  ContainerControl(std::string monitor_path, CgroupDriver& cgroups)
      : monitor_path_(std::move(monitor_path)), cgroups_(cgroups) {}

  // Starts the container described by `plan` (plan.dir is the release dir,
  // cgroup fields are filled here) under the cgroup `cgroup_name`. Returns
  // once the app was exec'd, or with the container's own setup error.
  // `attached`: the monitor stays this process's child (a one-shot run that
  // waits for the end and then calls ReapAttached); else it detaches and
  // outlives this process.
  Result<RunningRecord> Start(LaunchPlan plan, const std::string& cgroup_name,
                              bool attached = false);

  // Reaps the monitor of an attached Start once it has exited.
  static void ReapAttached(const RunningRecord& running);

  ContainerStatus Inspect(const std::string& dir) const;

  // SIGTERM to PID 1 (init forwards it to the app), SIGKILL after `grace`,
  // then waits for the monitor to record the exit; removes the cgroup.
  Status Stop(const std::string& dir, const std::string& cgroup_name, Duration grace);

  // The log ring: from the live monitor, else the file it left. With
  // `since_unix_s` > 0, the live monitor sends only the lines that started
  // at or after it (a monitor before line times, and the file, send all).
  Result<std::string> Logs(const std::string& dir, int64_t since_unix_s = 0) const;

  // Runs a helper mode of the monitor binary (exec / http-get) and returns
  // its exit code, killing it after `timeout`.
  Result<int> RunHelper(const std::vector<std::string>& args, Duration timeout,
                        bool quiet = true) const;

  // Waits until the container's monitor exits or `timeout` passes; true if it exited.
  bool WaitForExit(const std::string& dir, Duration timeout) const;

 private:
  // Starts `flotilla-monitor run dir 3 [attached]`; returns the read end of
  // its report pipe.
  Result<int> SpawnMonitor(const std::string& dir, bool attached);

  std::string monitor_path_;
  CgroupDriver& cgroups_;
};

// Waits up to `timeout` for `pid` to exit (pidfd + poll); true if it is gone.
bool WaitForProcessExit(pid_t pid, uint64_t start_ticks, Duration timeout);

}  // namespace flotilla::runtime
