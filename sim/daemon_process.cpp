#include "sim/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "sim/command.h"

extern char** environ;

namespace flotilla::sim {

Result<DaemonProcess> DaemonProcess::Start(const std::string& ns,
                                           const std::vector<std::string>& argv,
                                           const std::string& log_path) {
  if (argv.empty()) return InvalidArgument("no program to start");
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return IOErrorFromErrno("open " + log_path, errno);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log, 1);
  posix_spawn_file_actions_adddup2(&actions, log, 2);
  // Its own process group, so a Ctrl-C at the terminal reaches only the
  // harness, which then stops everything in order.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  // nsenter joins only the network namespace. `ip netns exec` would also
  // unshare the mount namespace and mount a fresh sysfs over /sys, hiding
  // /sys/fs/cgroup: a node could then not deploy its app.
  std::vector<std::string> full = {"nsenter", "--net=/run/netns/" + ns, "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  for (const std::string& a : full) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(log);
  if (rc != 0) return IOErrorFromErrno("start " + JoinArgv(full), rc);
  return DaemonProcess(pid, log_path);
}

DaemonProcess::DaemonProcess(DaemonProcess&& other) noexcept
    : pid_(other.pid_), log_path_(std::move(other.log_path_)), wait_status_(other.wait_status_) {
  other.pid_ = -1;
}

DaemonProcess::~DaemonProcess() { Stop(); }

bool DaemonProcess::Running() {
  if (pid_ < 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) wait_status_ = status;
  pid_ = -1;
  return false;
}

void DaemonProcess::Stop(int grace_ms) {
  if (!Running()) return;
  ::kill(pid_, SIGTERM);
  for (int waited = 0; waited < grace_ms; waited += 20) {
    if (!Running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
}

void DaemonProcess::Signal(int signal) {
  if (Running()) ::kill(pid_, signal);
}

void DaemonProcess::Kill() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  if (::waitpid(pid_, &status, 0) == pid_) wait_status_ = status;
  pid_ = -1;
}

}  // namespace flotilla::sim
