// Builds a container's root filesystem, inside the container's fresh mount
// namespace: overlayfs over the lowers, fresh /proc, read-only /sys, a tmpfs
// /dev with the standard nodes and the granted devices, volumes and binds,
// then pivot_root with the old root detached, then the OCI masked and
// read-only paths.
//
// Paths chosen by the image (a symlink at /proc, /data, ...) never lead a
// mount outside the rootfs: every mount target is opened component by
// component with O_NOFOLLOW under the rootfs and mounted through its
// /proc/self/fd link.
#pragma once

#include "core/status.h"
#include "runtime/launch_plan.h"

namespace flotilla::runtime {

// REQUIRES: the caller is PID 1 of a new pid namespace in a new mount
// namespace, single-threaded, with CAP_SYS_ADMIN.
Status BuildRootfs(const LaunchPlan& plan);

// Sets up the loopback interface of a fresh network namespace.
Status BringUpLoopback();

}  // namespace flotilla::runtime
