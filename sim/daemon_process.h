// Long-running processes of a scenario (the tracker, the nodes), each in a
// network namespace with its output in a log file.
//
// The namespace's own teardown (Topology::Down, `flotilla-sim clean`) kills
// whatever is left in it, so a harness that dies still leaves nothing
// running once the run is cleaned; this class stops its processes in order
// and reaps them while the harness lives.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::sim {

class DaemonProcess {
 public:
  // Starts `argv` inside network namespace `ns` (`nsenter --net=`, which
  // execs in place, so the pid is the program's; unlike `ip netns exec` it
  // keeps the host's mount namespace, so /sys/fs/cgroup stays visible for
  // the runtime), stdin from /dev/null, stdout and stderr appended to
  // `log_path`.
  static Result<DaemonProcess> Start(const std::string& ns, const std::vector<std::string>& argv,
                                     const std::string& log_path);

  DaemonProcess(DaemonProcess&& other) noexcept;
  DaemonProcess& operator=(DaemonProcess&&) = delete;
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  // Stops it (SIGTERM, then SIGKILL) if it still runs.
  ~DaemonProcess();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // True while the process has not exited; reaps it when it has, and keeps
  // its wait status for wait_status().
  bool Running();
  // The wait status once Running() returned false.
  int wait_status() const { return wait_status_; }

  // SIGTERM, then SIGKILL after `grace_ms`; reaps. Idempotent.
  void Stop(int grace_ms = 3000);
  // SIGKILL now (a power cut of the device); reaps.
  void Kill();
  // Sends `signal` if it still runs; does not wait (Stop() then reaps it).
  void Signal(int signal);

 private:
  DaemonProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_ = -1;
  std::string log_path_;
  int wait_status_ = 0;
};

}  // namespace flotilla::sim
