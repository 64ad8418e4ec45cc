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
      entry.v2_dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (entry.v2_dir_fd_ < 0) return IOErrorFromErrno("open cgroup " + dir, errno);
      entry.v2_procs_ = procs;
      continue;
    }
    const std::string& join = Exists(tasks) ? tasks : procs;
    int fd = ::open(join.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return IOErrorFromErrno("open " + join, errno);
    entry.joins_.push_back({fd, join});
  }
  return entry;
}

CgroupEntry::CgroupEntry(CgroupEntry&& other) noexcept { *this = std::move(other); }

CgroupEntry& CgroupEntry::operator=(CgroupEntry&& other) noexcept {
  if (this != &other) {
    Close();
    v2_dir_fd_ = other.v2_dir_fd_;
    v2_procs_ = std::move(other.v2_procs_);
    born_inside_ = other.born_inside_;
    joins_ = std::move(other.joins_);
    other.v2_dir_fd_ = -1;
    other.joins_.clear();
  }
  return *this;
}

CgroupEntry::~CgroupEntry() { Close(); }

pid_t CgroupEntry::Clone(unsigned long flags) {
  if (v2_dir_fd_ >= 0) {
    clone_args args{};
    args.flags = flags | CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(v2_dir_fd_);
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
    if (result.ok() && ::write(join.fd, "0", 1) != 1) {
      result = IOErrorFromErrno("join cgroup through " + join.path, errno);
    }
  }
  if (result.ok() && !v2_procs_.empty() && !born_inside_) {
    int fd = ::open(v2_procs_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      result = IOErrorFromErrno("join cgroup through " + v2_procs_, errno);
    }
    if (fd >= 0) ::close(fd);
  }
  Close();
  return result;
}

void CgroupEntry::Close() {
  for (const auto& join : joins_) ::close(join.fd);
  joins_.clear();
  if (v2_dir_fd_ >= 0) ::close(v2_dir_fd_);
  v2_dir_fd_ = -1;
}

}  // namespace flotilla::runtime
