#include "runtime/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "core/fd.h"

namespace flotilla::runtime {
namespace {

Status Errno(const std::string& what) { return IOErrorFromErrno(what, errno); }

int LastCapability() {
  char buf[16] = {0};
  UniqueFd fd(::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return CAP_LAST_CAP;
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  return n > 0 ? std::atoi(buf) : CAP_LAST_CAP;
}

Status SetCapabilitySets(uint64_t mask) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2];
  for (int i = 0; i < 2; ++i) {
    uint32_t half = static_cast<uint32_t>(mask >> (32 * i));
    data[i].effective = data[i].permitted = data[i].inheritable = half;
  }
  if (::syscall(SYS_capset, &header, data) != 0) return Errno("capset");
  return Status::Ok();
}

}  // namespace

Status ApplyLimits(const appspec::AppSpec& spec) {
  for (const auto& l : spec.rlimits) {
    struct rlimit limit {
      l.soft, l.hard
    };
    if (::setrlimit(*appspec::RlimitNumber(l.type), &limit) != 0)
      return Errno("setrlimit " + l.type);
  }
  UniqueFd fd(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return Errno("open oom_score_adj");
  std::string value = std::to_string(spec.oom_score_adj);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return Errno("write oom_score_adj");
  }
  return Status::Ok();
}

Status DropPrivileges(const appspec::UserSpec& user, const std::vector<std::string>& capabilities) {
  uint64_t mask = 0;
  for (const auto& name : capabilities) mask |= uint64_t{1} << *appspec::CapabilityNumber(name);
  const int last = LastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    if (!(mask & (uint64_t{1} << cap)) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return Errno("drop capability " + std::to_string(cap) + " from the bounding set");
    }
  }
  // Keep the permitted set across the uid change; capset then trims it.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return Errno("keepcaps");
  std::vector<gid_t> groups(user.additional_gids.begin(), user.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) != 0) return Errno("setgroups");
  if (::setresgid(user.gid, user.gid, user.gid) != 0) return Errno("setgid");
  if (::setresuid(user.uid, user.uid, user.uid) != 0) return Errno("setuid");
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return Errno("clear keepcaps");
  RETURN_IF_ERROR(SetCapabilitySets(mask));
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return Errno("ambient");
  for (int cap = 0; cap <= last; ++cap) {
    if ((mask & (uint64_t{1} << cap)) &&
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      return Errno("raise ambient capability " + std::to_string(cap));
    }
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("no_new_privs");
  return Status::Ok();
}

std::vector<std::string> ProgramEnvironment(const appspec::AppSpec& spec) {
  std::vector<std::string> env = spec.env;
  auto has = [&](const std::string& name) {
    for (const auto& e : env) {
      if (e.compare(0, name.size() + 1, name + "=") == 0) return true;
    }
    return false;
  };
  if (!has("PATH"))
    env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!has("HOSTNAME")) env.push_back("HOSTNAME=" + spec.hostname);
  return env;
}

Status ExecProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    return Errno("mark inherited fds close-on-exec");
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::execve(args[0], args.data(), envp.data());
  return Errno("exec " + argv[0]);
}

}  // namespace flotilla::runtime
