#include "runtime/rootfs.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/fd.h"

namespace flotilla::runtime {
namespace {

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Status Errno(const std::string& what) { return IOErrorFromErrno(what, errno); }

// mount(2) answers EINVAL for a propagation change on a path that is not a
// mount point: a chroot into a plain directory.
constexpr const char* kRootNotAMount =
    "/ is not a mount point (a chroot into a plain directory?): containers need the root to be "
    "a mount, as it is on a booted system; bind-mount the directory onto itself (mount --bind "
    "DIR DIR) and chroot into that";

// Opens `path` (absolute, clean) below the directory `root_fd`, creating
// missing directories, refusing any symlink on the way. The last component is
// created as a directory, or as an empty file when `leaf_is_file`.
Result<int> OpenBeneath(int root_fd, const std::string& path, bool leaf_is_file) {
  UniqueFd dir(::dup(root_fd));
  if (!dir.valid()) return Errno("dup");
  size_t pos = 1;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string part = path.substr(pos, next - pos);
    bool leaf = next == path.size();
    if (leaf && leaf_is_file) {
      int fd = ::openat(dir.get(), part.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_CREAT, 0644);
      if (fd < 0) fd = ::openat(dir.get(), part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return Errno("open " + path + " in rootfs");
      return fd;
    }
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno("mkdir " + path + " in rootfs");
    }
    int fd = ::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Errno("open " + path + " in rootfs (a symlink or not a directory?)");
    dir.Reset(fd);
    pos = next + 1;
  }
  return dir.Release();
}

// Like OpenBeneath for a directory, as a real (not O_PATH) fd: mknodat and
// symlinkat need one.
Result<int> OpenDirBeneath(int root_fd, const std::string& path) {
  ASSIGN_OR_RETURN(int path_fd, OpenBeneath(root_fd, path, false));
  UniqueFd closer(path_fd);
  int fd = ::open(FdPath(path_fd).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  return fd;
}

Status MountBeneath(int root_fd, const std::string& target, const char* source, const char* fstype,
                    unsigned long flags, const std::string& data, bool leaf_is_file = false) {
  ASSIGN_OR_RETURN(int fd, OpenBeneath(root_fd, target, leaf_is_file));
  UniqueFd closer(fd);
  if (::mount(source, FdPath(fd).c_str(), fstype, flags, data.empty() ? nullptr : data.c_str())) {
    return Errno(std::string("mount ") + (fstype ? fstype : source) + " on " + target);
  }
  return Status::Ok();
}

// A bind mount made read-only needs a second, remounting call.
Status BindBeneath(int root_fd, const std::string& source, const std::string& target,
                   bool read_only, bool leaf_is_file) {
  ASSIGN_OR_RETURN(int fd, OpenBeneath(root_fd, target, leaf_is_file));
  UniqueFd closer(fd);
  std::string where = FdPath(fd);
  if (::mount(source.c_str(), where.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Errno("bind " + source + " on " + target);
  }
  if (read_only) {
    // The old fd names the covered directory: reopen to reach the new mount.
    ASSIGN_OR_RETURN(int top, OpenBeneath(root_fd, target, leaf_is_file));
    UniqueFd top_closer(top);
    if (::mount(nullptr, FdPath(top).c_str(), nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
      return Errno("remount " + target + " read-only");
    }
  }
  return Status::Ok();
}

Status MakeNode(int dev_fd, const std::string& name, mode_t type, mode_t mode, uint32_t major,
                uint32_t minor) {
  if (::mknodat(dev_fd, name.c_str(), type | mode, makedev(major, minor)) != 0 && errno != EEXIST) {
    return Errno("mknod /dev/" + name);
  }
  if (::fchmodat(dev_fd, name.c_str(), mode, 0) != 0) return Errno("chmod /dev/" + name);
  return Status::Ok();
}

Status BuildDev(int root_fd, const LaunchPlan& plan) {
  RETURN_IF_ERROR(MountBeneath(root_fd, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                               "mode=755,size=65536k"));
  ASSIGN_OR_RETURN(int dev, OpenDirBeneath(root_fd, "/dev"));
  UniqueFd dev_dir(dev);
  struct Node {
    const char* name;
    uint32_t major, minor;
  };
  for (const Node& n : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7},
                        Node{"random", 1, 8}, Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
    RETURN_IF_ERROR(MakeNode(dev_dir.get(), n.name, S_IFCHR, 0666, n.major, n.minor));
  }
  for (const auto& d : plan.devices) {
    std::string rel = d.path.substr(5);  // below "/dev/"
    size_t slash = rel.rfind('/');
    int parent = dev_dir.get();
    UniqueFd sub;
    if (slash != std::string::npos) {
      ASSIGN_OR_RETURN(int fd, OpenDirBeneath(dev_dir.get(), "/" + rel.substr(0, slash)));
      sub.Reset(fd);
      parent = fd;
      rel = rel.substr(slash + 1);
    }
    RETURN_IF_ERROR(
        MakeNode(parent, rel, d.type == 'b' ? S_IFBLK : S_IFCHR, d.mode & 07777, d.major, d.minor));
  }
  struct Link {
    const char* name;
    const char* target;
  };
  for (const Link& l : {Link{"fd", "/proc/self/fd"}, Link{"stdin", "/proc/self/fd/0"},
                        Link{"stdout", "/proc/self/fd/1"}, Link{"stderr", "/proc/self/fd/2"},
                        Link{"ptmx", "pts/ptmx"}, Link{"core", "/proc/kcore"}}) {
    if (::symlinkat(l.target, dev_dir.get(), l.name) != 0)
      return Errno(std::string("symlink ") + l.name);
  }
  RETURN_IF_ERROR(MountBeneath(root_fd, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                               "newinstance,ptmxmode=0666,mode=0620"));
  RETURN_IF_ERROR(MountBeneath(root_fd, "/dev/shm", "shm", "tmpfs",
                               MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"));
  return MountBeneath(root_fd, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "");
}

std::string OverlayOptions(const LaunchPlan& plan) {
  std::string lower;
  for (const auto& l : plan.lowers) lower += (lower.empty() ? "" : ":") + l;
  return "lowerdir=" + lower + ",upperdir=" + plan.dir + "/upper,workdir=" + plan.dir + "/work";
}

Status PivotInto(const std::string& rootfs) {
  if (::chdir(rootfs.c_str()) != 0) return Errno("chdir " + rootfs);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return Errno("pivot_root");
  // The old root is now stacked under "."; detach it so nothing of the host
  // stays reachable.
  if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    return Errno("make old root a slave");
  }
  if (::umount2(".", MNT_DETACH) != 0) return Errno("detach old root");
  if (::chdir("/") != 0) return Errno("chdir /");
  return Status::Ok();
}

// The OCI defaults (runc's `spec`): hidden and read-only kernel interfaces.
Status MaskAndProtect() {
  for (const char* path :
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap"}) {
    struct stat st;
    if (::lstat(path, &st) != 0) continue;  // absent on this kernel
    int rc = S_ISDIR(st.st_mode) ? ::mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k")
                                 : ::mount("/dev/null", path, nullptr, MS_BIND, nullptr);
    if (rc != 0 && errno != ENOENT) return Errno(std::string("mask ") + path);
  }
  for (const char* path :
       {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
    if (::access(path, F_OK) != 0) continue;
    if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        ::mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, nullptr)) {
      return Errno(std::string("make read-only ") + path);
    }
  }
  return Status::Ok();
}

}  // namespace

Status BuildRootfs(const LaunchPlan& plan) {
  // Nothing done below may propagate to the host.
  if (::mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    if (errno == EINVAL) return FailedPrecondition(kRootNotAMount);
    return Errno("make / a recursive slave");
  }
  const std::string rootfs = plan.dir + "/rootfs";
  if (::mount("overlay", rootfs.c_str(), "overlay", 0, OverlayOptions(plan).c_str()) != 0) {
    return Errno("mount overlay rootfs");
  }
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return Errno("open rootfs");
  RETURN_IF_ERROR(
      MountBeneath(root.get(), "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  RETURN_IF_ERROR(MountBeneath(root.get(), "/sys", "sysfs", "sysfs",
                               MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, ""));
  RETURN_IF_ERROR(BuildDev(root.get(), plan));
  for (const auto& m : plan.mounts) {
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) return Errno("stat mount source " + m.source);
    RETURN_IF_ERROR(
        BindBeneath(root.get(), m.source, m.destination, m.read_only, !S_ISDIR(st.st_mode)));
  }
  RETURN_IF_ERROR(PivotInto(rootfs));
  RETURN_IF_ERROR(MaskAndProtect());
  if (plan.spec.read_only_rootfs &&
      ::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    return Errno("remount / read-only");
  }
  const std::string& name = plan.spec.hostname;
  if (::sethostname(name.data(), name.size()) != 0) return Errno("sethostname");
  return Status::Ok();
}

Status BringUpLoopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return Errno("socket");
  struct ifreq req;
  std::memset(&req, 0, sizeof req);
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) return Errno("get lo flags");
  req.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) return Errno("bring lo up");
  return Status::Ok();
}

}  // namespace flotilla::runtime
