// How the container's PID 1 (and an exec'd health check) enters the
// container's cgroups without the kernel's slow path.
//
// Moving another process (or a whole thread group) into a cgroup takes the
// kernel's global threadgroup lock for writing, whose writer waits for an
// RCU grace period: 5 to 20 ms per start on this 2-core host, the longest
// single step of a container start. Two ways around it:
// - cgroup v1: a single-threaded process moving itself through the v1
//   `tasks` file (writing "0") needs no such lock (kernel 6.1 and later;
//   older kernels take the lock, at the usual cost);
// - cgroup v2: clone3(CLONE_INTO_CGROUP) creates the process inside its
//   cgroup from the start (kernel 5.7 and later); where clone3 is missing
//   (older kernels, qemu-user) the process moves itself through
//   `cgroup.procs` instead.
// The files are opened before the clone, so the process can join before
// (and without) seeing the host's /sys/fs/cgroup.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/fd.h"
#include "core/status.h"

namespace flotilla::runtime {

// The directory that holds `path`: a control file's cgroup, or a cgroup's
// flotilla-<hash> parent.
std::string CgroupDirOf(const std::string& path);

class CgroupEntry {
 public:
  // `procs_files`: the launch plan's cgroup.procs files, one per hierarchy.
  static Result<CgroupEntry> Open(const std::vector<std::string>& procs_files);

  // clone(2) with `flags` (namespaces; the exit signal is SIGCHLD) whose
  // child starts inside the v2 cgroup when there is one and clone3 takes it.
  // Returns 0 in the child, as fork does.
  pid_t Clone(unsigned long flags);

  // In the process that must join (single-threaded: the child of Clone, or
  // a process entering a running container): moves itself into every
  // cgroup it is not in yet, then closes the files.
  Status JoinSelf();

  // The parent's copies are not needed once the child exists.
  void Close();

 private:
  struct File {
    UniqueFd fd;
    std::string path;
  };
  UniqueFd v2_dir_fd_;        // for CLONE_INTO_CGROUP
  std::string v2_procs_;      // its cgroup.procs, joined when not born inside
  bool born_inside_ = false;  // set in the child of a clone3 into the v2 cgroup
  std::vector<File> joins_;   // v1 `tasks` files, written "0" to
};

}  // namespace flotilla::runtime
