// Child processes for end-to-end tests: a real binary started with its output
// in a log file, stopped with SIGTERM (then SIGKILL) or killed as a power cut
// would, and reaped so no test leaves a zombie behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace flotilla::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { Stop(std::chrono::seconds(5)); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs argv[0] (a path) with stdout appended to `stdout_path` and stderr to
  // `stderr_path` (the same file when empty). False if fork fails.
  bool Start(const std::vector<std::string>& argv, const std::string& stdout_path,
             const std::string& stderr_path = "");
  // SIGTERM, then SIGKILL after `grace`. The exit code (128 + signal when
  // killed by one), or -1 if nothing was running.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(30));
  // SIGKILL and reap; the same return as Stop.
  int Kill();
  // Waits up to `timeout` for the process to exit by itself: its exit code,
  // or -1 if it still runs.
  int WaitExit(std::chrono::milliseconds timeout);
  // Reaps the process if it has exited; true when nothing runs any more.
  bool Exited();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace flotilla::testing
