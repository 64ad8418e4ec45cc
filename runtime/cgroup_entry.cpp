#include "runtime/cgroup_entry.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace flotilla::runtime {
namespace {

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

std::string CgroupDirOf(const std::string& file) {
  size_t slash = file.rfind('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}

Result<CgroupEntry> CgroupEntry::Open(const std::vector<std::string>& procs_files) {
  CgroupEntry entry;
  for (const auto& procs : procs_files) {
    const std::string dir = CgroupDirOf(procs);
    const std::string tasks = dir + "/tasks";         // only cgroup v1 has it
    if (!Exists(tasks) && procs_files.size() == 1) {  // the one v2 cgroup
      entry.v2_dir_fd_.Reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!entry.v2_dir_fd_.valid()) return IOErrorFromErrno("open cgroup " + dir, errno);
      entry.v2_procs_ = procs;
      continue;
    }
    const std::string& join = Exists(tasks) ? tasks : procs;
    UniqueFd fd(::open(join.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return IOErrorFromErrno("open " + join, errno);
    entry.joins_.push_back({std::move(fd), join});
  }
  return entry;
}

pid_t CgroupEntry::Clone(unsigned long flags) {
  if (v2_dir_fd_.valid()) {
    clone_args args{};
    args.flags = flags | CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(v2_dir_fd_.get());
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) born_inside_ = true;
    if (pid >= 0) return static_cast<pid_t>(pid);
    // No clone3, or one without CLONE_INTO_CGROUP: the child joins itself.
  }
  return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
}

Status CgroupEntry::JoinSelf() {
  Status result;
  for (const auto& join : joins_) {
    if (result.ok() && ::write(join.fd.get(), "0", 1) != 1) {
      result = IOErrorFromErrno("join cgroup through " + join.path, errno);
    }
  }
  if (result.ok() && !v2_procs_.empty() && !born_inside_) {
    UniqueFd fd(::open(v2_procs_.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), "0", 1) != 1) {
      result = IOErrorFromErrno("join cgroup through " + v2_procs_, errno);
    }
  }
  Close();
  return result;
}

void CgroupEntry::Close() {
  joins_.clear();
  v2_dir_fd_.Reset();
}

}  // namespace flotilla::runtime
