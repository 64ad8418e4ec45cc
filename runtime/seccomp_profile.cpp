// flotilla's default seccomp profile, modelled on the OCI/Docker default:
// an allow list of the calls ordinary programs make; a deny list of calls
// that reach kernel state a container must not touch (EPERM, so programs see
// "not allowed"); and ENOSYS for everything else, so that a program probing
// for a newer call falls back as it would on an older kernel.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "core/file_io.h"
#include "runtime/launch_plan.h"
#include "runtime/privileges.h"

namespace flotilla::runtime {
namespace {

// clang-format off
constexpr const char* kAllowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "cacheflush",
    "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
    "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir",
    "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
    "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
    "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socket", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev", "chroot", "sethostname", "setdomainname",
    "set_tls", "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
    "riscv_flush_icache"};

constexpr const char* kDenied[] = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_adjtime64", "clock_settime",
    "clock_settime64", "create_module", "delete_module", "finit_module", "fsconfig", "fsmount",
    "fsopen", "fspick", "get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
    "move_mount", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root",
    "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "quotactl_fd",
    "reboot", "request_key", "setns", "settimeofday", "stime", "swapoff", "swapon", "_sysctl",
    "sysfs", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
    "personality", "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "migrate_pages"};
// clang-format on

// Bump when the rules below change in a way the lists do not show.
constexpr const char* kProfileVersion = "flotilla-seccomp-1";

// FNV-1a over everything the compiled program depends on.
std::string CacheKey() {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  mix(kProfileVersion);
  for (const char* n : kAllowed) mix(n);
  for (const char* n : kDenied) mix(n);
  const scmp_version* v = seccomp_version();
  mix(std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro));
  mix(std::to_string(seccomp_arch_native()));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

Status BuildProfile(scmp_filter_ctx ctx);

// Compiles with libseccomp and exports the BPF program as bytes.
Result<std::string> CompileProfile() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
  if (ctx == nullptr) return Internal("seccomp_init failed");
  Status built = BuildProfile(ctx);
  UniqueFd fd(built.ok() ? ::memfd_create("seccomp", MFD_CLOEXEC) : -1);
  if (built.ok() && !fd.valid()) built = IOErrorFromErrno("memfd_create", errno);
  if (built.ok()) {
    if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) built = IOErrorFromErrno("export", -rc);
  }
  seccomp_release(ctx);
  RETURN_IF_ERROR(built);
  std::string program;
  char buf[8192];
  ::lseek(fd.get(), 0, SEEK_SET);
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) program.append(buf, static_cast<size_t>(n));
  if (program.empty() || program.size() % sizeof(sock_filter) != 0) {
    return Internal("libseccomp exported a malformed program");
  }
  return program;
}

}  // namespace

Result<std::string> DefaultSeccompFilter(const std::string& cache_dir) {
  const std::string path = cache_dir + "/seccomp-" + CacheKey() + ".bpf";
  if (!cache_dir.empty()) {
    auto cached = ReadTextFileBounded(path, 256 * 1024);
    if (cached.ok() && !cached->empty() && cached->size() % sizeof(sock_filter) == 0) {
      return *cached;
    }
  }
  ASSIGN_OR_RETURN(std::string program, CompileProfile());
  if (!cache_dir.empty() && CreateDirectories(cache_dir, 0700).ok()) {
    WriteFileReplace(path, program).IgnoreError();  // a cache: losing it costs time only
  }
  return program;
}

Json DefaultSeccompOciJson() {
  Json allowed = Json::array(), denied = Json::array();
  for (const char* n : kAllowed) allowed.push_back(n);
  for (const char* n : kDenied) denied.push_back(n);
  return {{"defaultAction", "SCMP_ACT_ERRNO"},
          {"defaultErrnoRet", ENOSYS},
          {"syscalls",
           {{{"names", allowed}, {"action", "SCMP_ACT_ALLOW"}},
            {{"names", denied}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EPERM}},
            {{"names", {"clone"}},
             {"action", "SCMP_ACT_ALLOW"},
             {"args",
              {{{"index", 0},
                {"value", CLONE_NEWUSER},
                {"valueTwo", 0},
                {"op", "SCMP_CMP_MASKED_EQ"}}}}},
            {{"names", {"clone"}},
             {"action", "SCMP_ACT_ERRNO"},
             {"errnoRet", EPERM},
             {"args",
              {{{"index", 0},
                {"value", CLONE_NEWUSER},
                {"valueTwo", CLONE_NEWUSER},
                {"op", "SCMP_CMP_MASKED_EQ"}}}}}}}};
}

Status InstallSeccompFilter(const std::string& program) {
  sock_fprog prog;
  prog.len = static_cast<unsigned short>(program.size() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<char*>(program.data()));
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
    return IOErrorFromErrno("install the seccomp filter", errno);
  }
  return Status::Ok();
}

namespace {

Status BuildProfile(scmp_filter_ctx ctx) {
  auto fail = [&](const std::string& what, int rc) {
    return IOErrorFromErrno("seccomp: " + what, -rc);
  };
  for (const char* name : kAllowed) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a call on this architecture
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc < 0 && rc != -EEXIST) {
      return fail(std::string("allow ") + name, rc);
    }
  }
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0); rc < 0 && rc != -EEXIST) {
      return fail(std::string("deny ") + name, rc);
    }
  }
  // clone3 hides its flags in memory a filter cannot read, so it gets ENOSYS
  // (the default) and libc falls back to clone, whose flags are checked: no
  // new user namespace, the one namespace an unprivileged process may make.
  int clone_nr = seccomp_syscall_resolve_name("clone");
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, clone_nr, 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, 0));
      rc < 0) {
    return fail("allow clone", rc);
  }
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), clone_nr, 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
      rc < 0) {
    return fail("deny clone of a user namespace", rc);
  }
  return Status::Ok();
}

}  // namespace

}  // namespace flotilla::runtime
