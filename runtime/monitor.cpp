#include "runtime/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/clock.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "runtime/container_process.h"
#include "runtime/log_ring.h"
#include "runtime/privileges.h"
#include "runtime/program_pages.h"

namespace flotilla::runtime {
namespace {

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SystemClock::Instance().Now().time_since_epoch())
      .count();
}

void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string text = line + "\n";
  if (::write(fd, text.data(), text.size()) < 0) {
    // The node went away; the files in the release dir still tell the story.
  }
  ::close(fd);
}

struct Pipe {
  int read = -1, write = -1;
};

Result<Pipe> MakePipe(int flags) {
  int fds[2];
  if (::pipe2(fds, flags) != 0) return IOErrorFromErrno("pipe", errno);
  return Pipe{fds[0], fds[1]};
}

int ReadOomKills(const std::string& file) {
  if (file.empty()) return 0;
  auto text = ReadTextFileBounded(file, 65536);
  if (!text.ok()) return 0;
  size_t pos = text->find("oom_kill ");
  return pos == std::string::npos ? 0 : std::atoi(text->c_str() + pos + 9);
}

// The container's PID 1 and the pipes the monitor keeps.
struct Started {
  pid_t init = -1;
  int output_read = -1;
  int status_read = -1;
};

// Clones PID 1 into new namespaces and the container's cgroups, and waits
// until it has exec'd the app; fails with the container's own error message.
Result<Started> StartContainer(const LaunchPlan& plan) {
  ASSIGN_OR_RETURN(std::string filter, DefaultSeccompFilter(plan.seccomp_cache));
  ASSIGN_OR_RETURN(CgroupEntry cgroups, CgroupEntry::Open(plan.cgroup_procs));
  ASSIGN_OR_RETURN(Pipe error, MakePipe(O_CLOEXEC));
  ASSIGN_OR_RETURN(Pipe status, MakePipe(O_CLOEXEC));
  ASSIGN_OR_RETURN(Pipe output, MakePipe(O_CLOEXEC));
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (plan.spec.network == "none") flags |= CLONE_NEWNET;
  pid_t pid = cgroups.Clone(flags);
  if (pid < 0) return IOErrorFromErrno("clone the container", errno);
  if (pid == 0) {
    ::close(error.read);
    ::close(status.read);
    ::close(output.read);
    RunContainerInit(plan, {error.write, status.write, output.write}, cgroups, filter);
  }
  cgroups.Close();
  ::close(error.write);
  ::close(status.write);
  ::close(output.write);
  std::string message;
  uint8_t buf[1024];
  for (;;) {
    size_t n = ReadSome(error.read, buf).value_or(0);
    if (n == 0) break;
    message.append(reinterpret_cast<const char*>(buf), n);
  }
  ::close(error.read);
  if (!message.empty()) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return FailedPrecondition(message);
  }
  return Started{pid, output.read, status.read};
}

// Bound, listening on DIR/monitor.sock (the monitor's cwd is DIR).
int ListenForLogReaders() {
  ::unlink(kMonitorSocketName);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, kMonitorSocketName, sizeof addr.sun_path - 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0) {
    ::close(fd);
    return -1;
  }
  ::chmod(kMonitorSocketName, 0600);
  return fd;
}

// A reader may ask for the lines since a moment: "since <unix seconds>\n",
// sent right after it connects (docs/runtime.md, "Logs"). A reader that
// sends nothing within kLogRequestWait (a node before this monitor) gets
// the whole ring, as before.
constexpr int kLogRequestWaitMs = 100;

std::string LogsAsked(int client, const LogRing& ring) {
  pollfd p{client, POLLIN, 0};
  if (::poll(&p, 1, kLogRequestWaitMs) != 1) return ring.Contents();
  char request[64];
  ssize_t n = ::recv(client, request, sizeof request - 1, 0);
  if (n <= 0) return ring.Contents();
  request[n] = '\0';
  long long since = 0;
  if (std::sscanf(request, "since %lld\n", &since) == 1 && since > 0) {
    return ring.ContentsSince(since);
  }
  return ring.Contents();
}

void ServeLogReader(int listen_fd, const LogRing& ring) {
  int client = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  timeval timeout{2, 0};
  ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  std::string contents = LogsAsked(client, ring);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::send(client, contents.data() + done, contents.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(client);
}

bool DrainOutput(int fd, LogRing& ring) {
  char buf[8192];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) ring.Append(std::string_view(buf, static_cast<size_t>(n)), ::time(nullptr));
  return n > 0 || (n < 0 && errno == EINTR);
}

// Waits for PID 1 while keeping the ring and serving readers; returns the
// app's wait status (the one init reported, else init's own).
int Supervise(const Started& c, LogRing& ring) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  int listen_fd = ListenForLogReaders();
  int output = c.output_read;
  int init_status = -1;
  while (output >= 0 || init_status == -1) {
    pollfd fds[3] = {{output, POLLIN, 0}, {sfd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
    if (::poll(fds, 3, init_status == -1 ? -1 : 2000) == 0) break;  // orphans hold the pipe
    if (fds[0].revents & (POLLIN | POLLHUP) && !DrainOutput(output, ring)) {
      ::close(output);
      output = -1;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) > 0) {
      }
      int status;
      if (::waitpid(c.init, &status, WNOHANG) == c.init) init_status = status;
    }
    if (fds[2].revents & POLLIN) ServeLogReader(listen_fd, ring);
  }
  if (listen_fd >= 0) ::close(listen_fd);
  ::unlink(kMonitorSocketName);
  int app_status = 0;
  if (::read(c.status_read, &app_status, sizeof app_status) == sizeof app_status) {
    return app_status;
  }
  return init_status;
}

ExitRecord RecordFromStatus(int status, const LaunchPlan& plan, int oom_before) {
  ExitRecord r;
  if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  } else {
    r.exit_code = WEXITSTATUS(status);
  }
  r.oom_killed = ReadOomKills(plan.oom_events_file) > oom_before;
  r.finished_unix_ms = UnixMillis();
  return r;
}

void Finish(const LaunchPlan& plan, const ExitRecord& record, const LogRing* ring) {
  if (ring != nullptr && plan.spec.persist_logs) {
    WriteFileReplace(LogFile(plan.dir), ring->Contents()).IgnoreError();
  }
  for (auto it = plan.cgroup_dirs.rbegin(); it != plan.cgroup_dirs.rend(); ++it) {
    ::rmdir(it->c_str());
    // The flotilla-<hash> parent too, unless another container's cgroup is in it.
    ::rmdir(CgroupDirOf(*it).c_str());
  }
  std::string json = Json(record).dump();
  WriteFileReplace(ExitFile(plan.dir), json).IgnoreError();
}

// The runtime spawns the monitor as its child in a new session: fork once
// more and let the parent exit, so that the monitor is nobody's child but
// init's (or a subreaper's) and outlives the node. The pid goes first on the
// report pipe, for the node to kill a monitor that never reports. Returns in
// the detached child; false when it cannot go on (already reported).
bool DetachFromTheNode(int ready_fd, bool detach) {
  pid_t child = detach ? ::fork() : 0;
  if (child < 0) {
    Report(ready_fd, "error fork the monitor: " + std::string(std::strerror(errno)));
    return false;
  }
  if (child > 0) ::_exit(0);
  std::string announce = "monitor " + std::to_string(::getpid()) + "\n";
  return ::write(ready_fd, announce.data(), announce.size()) >= 0;  // else the node is gone
}

}  // namespace

int RunMonitor(const std::string& dir, int ready_fd, bool detach) {
  if (!DetachFromTheNode(ready_fd, detach)) return 1;
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  auto plan = LoadLaunchPlan(dir);
  if (!plan.ok() || ::chdir(dir.c_str()) != 0) {
    Report(ready_fd, "error " + plan.status().ToString());
    return 1;
  }
  int oom_before = ReadOomKills(plan->oom_events_file);
  auto started = StartContainer(*plan);
  if (!started.ok()) {
    ExitRecord failed;
    failed.start_error = "failed to start: " + started.status().ToString();
    failed.finished_unix_ms = UnixMillis();
    Finish(*plan, failed, nullptr);
    Report(ready_fd, "error " + failed.start_error);
    return 1;
  }
  RunningRecord running;
  running.monitor_pid = ::getpid();
  running.monitor_start_ticks = ProcessStartTicks(::getpid()).value_or(0);
  running.init_pid = started->init;
  running.init_start_ticks = ProcessStartTicks(started->init).value_or(0);
  running.started_unix_ms = UnixMillis();
  Status recorded = WriteFileReplace(RunningFile(dir), Json(running).dump());
  Report(ready_fd,
         recorded.ok() ? "ok " + std::to_string(started->init) : "error " + recorded.ToString());
  LogRing ring(plan->spec.log_ring_bytes);
  DropProgramPages();
  int status = Supervise(*started, ring);
  Finish(*plan, RecordFromStatus(status, *plan, oom_before), &ring);
  return 0;
}

}  // namespace flotilla::runtime
