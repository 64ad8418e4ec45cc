// The processes inside a container.
//
// PID 1 is flotilla's minimal init (this code, forked from the monitor, not
// re-executed): it builds the rootfs, forks the app as PID 2, forwards
// SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2/SIGWINCH to it, reaps every
// orphan, and when the app exits reports its raw wait status to the monitor
// and exits, which makes the kernel kill whatever is left in the namespace.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/cgroup_entry.h"
#include "runtime/launch_plan.h"

namespace flotilla::runtime {

struct ContainerFds {
  int error_write = -1;   // close-on-exec: a setup error is written here, EOF = exec'd
  int status_write = -1;  // init writes the app's 4-byte wait status here
  int output_write = -1;  // the app's stdout and stderr
};

// Runs as PID 1 of the new namespaces; never returns. It joins `cgroups`
// first, so everything it and the app do is inside them.
// `seccomp_filter` comes from DefaultSeccompFilter, computed before the clone.
[[noreturn]] void RunContainerInit(const LaunchPlan& plan, const ContainerFds& fds,
                                   CgroupEntry& cgroups, const std::string& seccomp_filter);

// In a process that already joined the container's namespaces and cgroups:
// applies the app's user, capabilities, no_new_privs and seccomp and execs
// argv with the app's environment and cwd. Returns only on failure.
Status ExecAsApp(const appspec::AppSpec& spec, const std::vector<std::string>& argv,
                 const std::string& seccomp_filter);

}  // namespace flotilla::runtime
