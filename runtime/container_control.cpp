#include "runtime/container_control.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/enum_names.h"
#include "core/fd.h"
#include "core/file_io.h"

namespace flotilla::runtime {
namespace {

int Millis(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms < 0 ? 0 : (ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms));
}

// Spawns argv in a new session with stdio on /dev/null, except `keep_fd`
// which becomes fd 3, and waits for it to exit unless `reap` is false (the
// caller reaps it later). posix_spawn is a vfork: it does not copy the
// (large) caller's page tables as fork does. A detached program must detach
// itself (flotilla-monitor forks and its parent exits at once), so that it
// is no child of ours and outlives us.
Status Spawn(const std::vector<std::string>& argv, int keep_fd, bool reap) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  // fd 3 first: keep_fd may be 0, 1 or 2 when the caller runs without stdio.
  ::posix_spawn_file_actions_adddup2(&actions, keep_fd, 3);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0);
  ::posix_spawn_file_actions_adddup2(&actions, 0, 1);
  ::posix_spawn_file_actions_adddup2(&actions, 0, 2);
  ::posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t child = -1;
  int err = ::posix_spawn(&child, args[0], &actions, &attr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (err != 0) return IOErrorFromErrno("spawn " + argv[0], err);
  int status;
  while (reap && ::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return Status::Ok();
}

// Reads '\n'-terminated lines from a pipe, keeping what follows a line.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line without its '\n'; "" when the writers closed or
  // `timeout_ms` passed without one.
  std::string Next(int timeout_ms) {
    uint8_t buf[512];
    while (buffer_.find('\n') == std::string::npos && buffer_.size() < 65536) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) != 1) break;
      size_t n = ReadSome(fd_, buf).value_or(0);
      if (n == 0) break;
      buffer_.append(reinterpret_cast<const char*>(buf), n);
    }
    size_t end = buffer_.find('\n');
    if (end == std::string::npos) return "";
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    return line;
  }

 private:
  int fd_;
  std::string buffer_;
};

std::vector<DeviceRule> RulesFor(const LaunchPlan& plan) {
  std::vector<DeviceRule> rules = DefaultDeviceRules();
  for (const auto& d : plan.devices) {
    rules.push_back({d.type, d.major, d.minor, d.access});
  }
  return rules;
}

}  // namespace

constexpr EnumName<ContainerState> kContainerStateNames[] = {{ContainerState::kNone, "none"},
                                                             {ContainerState::kRunning, "running"},
                                                             {ContainerState::kExited, "exited"},
                                                             {ContainerState::kLost, "lost"}};

std::string_view ContainerStateName(ContainerState state) {
  return NameOf(kContainerStateNames, state);
}

bool WaitForProcessExit(pid_t pid, uint64_t start_ticks, Duration timeout) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return true;  // no such process
  if (!ProcessMatches(pid, start_ticks)) return true;
  pollfd p{pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, Millis(timeout)) == 1;
}

Result<int> ContainerControl::SpawnMonitor(const std::string& dir, bool attached) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return IOErrorFromErrno("pipe", errno);
  std::vector<std::string> argv = {monitor_path_, "run", dir, "3"};
  if (attached) argv.push_back("attached");
  Status spawned = Spawn(argv, ready[1], !attached);
  ::close(ready[1]);
  if (!spawned.ok()) {
    ::close(ready[0]);
    return spawned;
  }
  return ready[0];
}

Result<RunningRecord> ContainerControl::Start(LaunchPlan plan, const std::string& cgroup_name,
                                              bool attached) {
  if (Inspect(plan.dir).state == ContainerState::kRunning) {
    return FailedPrecondition("a container already runs in " + plan.dir);
  }
  for (const char* sub : {"/upper", "/work", "/rootfs"}) {
    RETURN_IF_ERROR(CreateDirectories(plan.dir + sub, 0755));
  }
  ::unlink(RunningFile(plan.dir).c_str());
  ::unlink(ExitFile(plan.dir).c_str());
  ::unlink(UnhealthyFile(plan.dir).c_str());
  RETURN_IF_ERROR(cgroups_.Destroy(cgroup_name));  // a leftover of a lost container
  auto created = cgroups_.Create(cgroup_name, plan.spec.resources, RulesFor(plan));
  if (!created.ok()) {
    cgroups_.Destroy(cgroup_name).IgnoreError();  // what it made before it failed
    return created.status();
  }
  CgroupPlacement placement = std::move(*created);
  plan.cgroup_procs = placement.procs_files;
  plan.cgroup_dirs = placement.dirs;
  plan.oom_events_file = placement.oom_events_file;
  RETURN_IF_ERROR(WriteFileReplace(LaunchFile(plan.dir), LaunchPlanToJson(plan).dump(2)));
  ASSIGN_OR_RETURN(int ready, SpawnMonitor(plan.dir, attached));
  // "monitor <pid>" from the detached monitor, then "ok ..." or "error ...".
  LineReader reader(ready);
  std::string line = reader.Next(60000);
  pid_t monitor = 0;
  if (line.rfind("monitor ", 0) == 0) {
    monitor = std::atoi(line.c_str() + 8);
    line = reader.Next(60000);
  }
  ::close(ready);
  if (line.rfind("ok ", 0) != 0) {
    if (monitor > 0) ::kill(monitor, SIGKILL);
    if (monitor > 0 && attached) ::waitpid(monitor, nullptr, 0);
    cgroups_.Destroy(cgroup_name).IgnoreError();
    if (line.empty()) return Unavailable("the monitor of " + plan.dir + " did not report");
    return FailedPrecondition("start " + plan.spec.name + ": " + line.substr(6));
  }
  return LoadRunningRecord(plan.dir);
}

void ContainerControl::ReapAttached(const RunningRecord& running) {
  while (::waitpid(running.monitor_pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

ContainerStatus ContainerControl::Inspect(const std::string& dir) const {
  ContainerStatus status;
  auto exit = LoadExitRecord(dir);
  if (exit.ok()) {
    status.state = ContainerState::kExited;
    status.exit = *exit;
  }
  auto running = LoadRunningRecord(dir);
  if (running.ok()) {
    status.running = *running;
    if (!exit.ok()) {
      bool alive = ProcessMatches(running->monitor_pid, running->monitor_start_ticks);
      // The monitor may have written exit.json between our two reads.
      if (!alive && (exit = LoadExitRecord(dir)).ok()) {
        status.state = ContainerState::kExited;
        status.exit = *exit;
      } else {
        status.state = alive ? ContainerState::kRunning : ContainerState::kLost;
      }
    }
  }
  return status;
}

bool ContainerControl::WaitForExit(const std::string& dir, Duration timeout) const {
  ContainerStatus status = Inspect(dir);
  if (status.state != ContainerState::kRunning) return true;
  return WaitForProcessExit(status.running->monitor_pid, status.running->monitor_start_ticks,
                            timeout);
}

Status ContainerControl::Stop(const std::string& dir, const std::string& cgroup_name,
                              Duration grace) {
  ContainerStatus status = Inspect(dir);
  if (status.state == ContainerState::kRunning) {
    const RunningRecord& r = *status.running;
    if (ProcessMatches(r.init_pid, r.init_start_ticks)) ::kill(r.init_pid, SIGTERM);
    if (!WaitForProcessExit(r.monitor_pid, r.monitor_start_ticks, grace)) {
      if (ProcessMatches(r.init_pid, r.init_start_ticks)) ::kill(r.init_pid, SIGKILL);
      if (!WaitForProcessExit(r.monitor_pid, r.monitor_start_ticks, std::chrono::seconds(10))) {
        ::kill(r.monitor_pid, SIGKILL);  // a stuck monitor: the cgroup kill below ends the rest
      }
    }
  }
  return cgroups_.Destroy(cgroup_name);
}

Result<std::string> ContainerControl::Logs(const std::string& dir, int64_t since_unix_s) const {
  ContainerStatus status = Inspect(dir);
  if (status.state == ContainerState::kRunning) {
    UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // Through the dir fd, so a long state dir never overflows sun_path.
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dir_fd.get(),
                  kMonitorSocketName);
    if (dir_fd.valid() && sock.valid() &&
        ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      // The request line (runtime/monitor.cpp); "since 0" asks for the whole ring.
      const std::string request =
          "since " + std::to_string(std::max<int64_t>(since_unix_s, 0)) + "\n";
      ::send(sock.get(), request.data(), request.size(), MSG_NOSIGNAL);
      std::string out;
      char buf[16384];
      for (;;) {
        pollfd p{sock.get(), POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) break;
        ssize_t n = ::read(sock.get(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
      return out;
    }
  }
  auto text = ReadTextFileBounded(LogFile(dir), 64ull << 20);
  if (text.status().code() == StatusCode::kNotFound) return std::string();
  return text;
}

Result<int> ContainerControl::RunHelper(const std::vector<std::string>& args, Duration timeout,
                                        bool quiet) const {
  std::vector<std::string> argv = {monitor_path_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargs;
  for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return IOErrorFromErrno("fork", errno);
  if (pid == 0) {
    if (quiet) {
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
    }
    ::syscall(SYS_close_range, 3u, ~0u, 0);
    ::execv(cargs[0], cargs.data());
    ::_exit(127);
  }
  if (UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); pidfd.valid()) {
    pollfd p{pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, Millis(timeout)) != 1) ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace flotilla::runtime
