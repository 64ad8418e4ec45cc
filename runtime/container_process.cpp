#include "runtime/container_process.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "runtime/privileges.h"
#include "runtime/program_pages.h"
#include "runtime/rootfs.h"

namespace flotilla::runtime {
namespace {

[[noreturn]] void FailSetup(int error_fd, const Status& status) {
  std::string message = status.ToString();
  WriteAll(error_fd, message).IgnoreError();
  ::_exit(127);
}

sigset_t ForwardedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD}) {
    sigaddset(&set, sig);
  }
  return set;
}

// The app process (PID 2): stdio, limits, privileges, exec.
[[noreturn]] void StartApp(const LaunchPlan& plan, const ContainerFds& fds, const sigset_t& old,
                           const std::string& seccomp_filter) {
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(fds.output_write, 1) < 0 ||
      ::dup2(fds.output_write, 2) < 0) {
    FailSetup(fds.error_write, IOErrorFromErrno("set up stdio", errno));
  }
  if (Status st = ApplyLimits(plan.spec); !st.ok()) FailSetup(fds.error_write, st);
  Status st = ExecAsApp(plan.spec, plan.spec.command, seccomp_filter);
  FailSetup(fds.error_write, st);
}

// Drops everything init does not need: it keeps CAP_KILL to signal an app
// that runs as another user, and is not dumpable, so the app cannot open
// /proc/1/exe or /proc/1/mem.
void RestrictInit() {
  ::prctl(PR_SET_NAME, "flotilla-init", 0, 0, 0);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = 1u << CAP_KILL;
  ::syscall(SYS_capset, &header, data);
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

[[noreturn]] void SuperviseApp(pid_t app, const ContainerFds& fds, const sigset_t& signals) {
  for (;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&signals, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      ::kill(app, sig);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != app) continue;
      WriteAll(fds.status_write, ByteSpan(reinterpret_cast<const uint8_t*>(&status), sizeof status))
          .IgnoreError();
      ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

}  // namespace

Status ExecAsApp(const appspec::AppSpec& spec, const std::vector<std::string>& argv,
                 const std::string& seccomp_filter) {
  RETURN_IF_ERROR(DropPrivileges(spec.user, spec.capabilities));
  if (::chdir(spec.cwd.c_str()) != 0) return IOErrorFromErrno("chdir " + spec.cwd, errno);
  RETURN_IF_ERROR(InstallSeccompFilter(seccomp_filter));
  return ExecProgram(argv, ProgramEnvironment(spec));
}

void RunContainerInit(const LaunchPlan& plan, const ContainerFds& fds, CgroupEntry& cgroups,
                      const std::string& seccomp_filter) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (Status st = cgroups.JoinSelf(); !st.ok()) FailSetup(fds.error_write, st);
  if (Status st = BuildRootfs(plan); !st.ok()) FailSetup(fds.error_write, st);
  if (plan.spec.network == "none") {
    if (Status st = BringUpLoopback(); !st.ok()) FailSetup(fds.error_write, st);
  }
  sigset_t signals = ForwardedSignals(), old;
  ::sigprocmask(SIG_BLOCK, &signals, &old);
  pid_t app = ::fork();
  if (app < 0) FailSetup(fds.error_write, IOErrorFromErrno("fork the app", errno));
  if (app == 0) StartApp(plan, fds, old, seccomp_filter);
  ::close(fds.error_write);
  ::close(fds.output_write);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && null_fd >= 0; ++fd) ::dup2(null_fd, fd);
  RestrictInit();
  DropProgramPages();
  SuperviseApp(app, fds, signals);
}

}  // namespace flotilla::runtime
