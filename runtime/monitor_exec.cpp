// The monitor binary's helper modes: run a command inside a running
// container (exec health checks) and GET from its network namespace (http
// health checks). Both run in a fresh single-threaded process, as setns needs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/fd.h"
#include "runtime/container_process.h"
#include "runtime/monitor.h"
#include "runtime/privileges.h"

namespace flotilla::runtime {
namespace {

Result<RunningRecord> RunningContainer(const std::string& dir) {
  ASSIGN_OR_RETURN(RunningRecord running, LoadRunningRecord(dir));
  if (!ProcessMatches(running.init_pid, running.init_start_ticks)) {
    return FailedPrecondition("the container of " + dir + " is not running");
  }
  return running;
}

Status EnterNamespace(pid_t pid, const char* name, int type) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + name;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  if (::setns(fd.get(), type) != 0) return IOErrorFromErrno(std::string("setns ") + name, errno);
  return Status::Ok();
}

Status EnterContainer(const LaunchPlan& plan, pid_t init) {
  ASSIGN_OR_RETURN(CgroupEntry cgroups, CgroupEntry::Open(plan.cgroup_procs));
  RETURN_IF_ERROR(cgroups.JoinSelf());
  std::string root_path = "/proc/" + std::to_string(init) + "/root";
  UniqueFd root(::open(root_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return IOErrorFromErrno("open " + root_path, errno);
  RETURN_IF_ERROR(EnterNamespace(init, "ipc", CLONE_NEWIPC));
  RETURN_IF_ERROR(EnterNamespace(init, "uts", CLONE_NEWUTS));
  if (plan.spec.network == "none") RETURN_IF_ERROR(EnterNamespace(init, "net", CLONE_NEWNET));
  RETURN_IF_ERROR(EnterNamespace(init, "pid", CLONE_NEWPID));
  RETURN_IF_ERROR(EnterNamespace(init, "mnt", CLONE_NEWNS));
  // As nsenter does: take the container's root explicitly.
  if (::fchdir(root.get()) != 0 || ::chroot(".") != 0) return IOErrorFromErrno("chroot", errno);
  return Status::Ok();
}

int Fail(const Status& st) {
  std::fprintf(stderr, "flotilla-monitor: %s\n", st.ToString().c_str());
  return 125;
}

}  // namespace

int RunExecInContainer(const std::string& dir, const std::vector<std::string>& argv) {
  auto plan = LoadLaunchPlan(dir);
  if (!plan.ok()) return Fail(plan.status());
  auto running = RunningContainer(dir);
  if (!running.ok()) return Fail(running.status());
  auto filter = DefaultSeccompFilter(plan->seccomp_cache);
  if (!filter.ok()) return Fail(filter.status());
  if (Status st = EnterContainer(*plan, running->init_pid); !st.ok()) return Fail(st);
  pid_t child = ::fork();  // the child is in the container's pid namespace
  if (child < 0) return Fail(IOErrorFromErrno("fork", errno));
  if (child == 0) {
    Status st = ApplyLimits(plan->spec);
    if (st.ok()) st = ExecAsApp(plan->spec, argv, *filter);
    std::fprintf(stderr, "flotilla-monitor exec: %s\n", st.ToString().c_str());
    ::_exit(126);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int RunHttpProbe(const std::string& dir, int port, const std::string& path, int timeout_ms) {
  auto plan = LoadLaunchPlan(dir);
  if (!plan.ok()) return Fail(plan.status());
  if (plan->spec.network == "none") {
    auto running = RunningContainer(dir);
    if (!running.ok()) return Fail(running.status());
    if (Status st = EnterNamespace(running->init_pid, "net", CLONE_NEWNET); !st.ok()) {
      return Fail(st);
    }
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS) {
    return 1;
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return 1;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return 1;
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return 1;
  }
  std::string answer;
  char buf[256];
  while (answer.find("\r\n") == std::string::npos && answer.size() < 1024) {
    p = {fd.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return 1;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.x 2xx ..."
  return answer.size() > 12 && answer.compare(0, 5, "HTTP/") == 0 && answer[9] == '2' ? 0 : 1;
}

}  // namespace flotilla::runtime
