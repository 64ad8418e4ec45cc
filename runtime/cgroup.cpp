#include "runtime/cgroup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "core/file_io.h"
#include "runtime/cgroup_entry.h"

namespace flotilla::runtime {

Status WriteControlFile(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return IOErrorFromErrno("write '" + value + "' to " + path, errno);
  }
  return Status::Ok();
}

namespace {

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// SIGKILLs every process listed in `procs_file` and waits (bounded) until
// each has exited, by polling its pidfd.
void KillListed(const std::string& procs_file) {
  auto procs = ReadTextFileBounded(procs_file, 1 << 20);
  if (!procs.ok()) return;
  size_t pos = 0;
  while (pos < procs->size()) {
    size_t end = procs->find('\n', pos);
    if (end == std::string::npos) end = procs->size();
    int pid = std::atoi(procs->substr(pos, end - pos).c_str());
    pos = end + 1;
    if (pid <= 0) continue;
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    ::kill(pid, SIGKILL);
    if (!pidfd.valid()) continue;
    pollfd p{pidfd.get(), POLLIN, 0};
    ::poll(&p, 1, 2000);
  }
}

// The flotilla-<hash> parent goes with the last container's cgroup (rmdir
// fails, harmlessly, while another container's cgroup is in it).
void RemoveParentIfUnused(const std::string& dir) { ::rmdir(CgroupDirOf(dir).c_str()); }

// Kills what is left in a cgroup, then removes it (rmdir needs it empty),
// and its flotilla-<hash> parent once no other container's cgroup is in it.
Status KillAndRemove(const std::string& dir) {
  if (!Exists(dir)) return Status::Ok();
  for (int attempt = 0; attempt < 3; ++attempt) {
    KillListed(dir + "/cgroup.procs");
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
      RemoveParentIfUnused(dir);
      return Status::Ok();
    }
    if (errno != EBUSY) break;
  }
  return IOErrorFromErrno("remove cgroup " + dir, errno);
}

// Creates the cgroup directory `dir` and its parent. A monitor may remove
// the parent (RemoveParentIfUnused) between the two mkdirs: then again.
Status CreateCgroupDir(const std::string& dir) {
  Status st;
  for (int attempt = 0; attempt < 3 && !(st = CreateDirectories(dir, 0755)).ok(); ++attempt) {
  }
  return st;
}

class CgroupV1Driver final : public CgroupDriver {
 public:
  explicit CgroupV1Driver(CgroupOptions options) : options_(std::move(options)) {}

  CgroupPlacement Locate(const std::string& name) const override {
    CgroupPlacement p;
    for (const char* ctrl : kControllers) {
      std::string dir = Dir(ctrl, name);
      p.procs_files.push_back(dir + "/cgroup.procs");
      p.dirs.push_back(dir);
    }
    p.oom_events_file = Dir("memory", name) + "/memory.oom_control";
    return p;
  }

  Result<CgroupPlacement> Create(const std::string& name, const appspec::ResourceSpec& r,
                                 const std::vector<DeviceRule>& devices) override {
    CgroupPlacement p;
    for (const char* ctrl : kControllers) {
      std::string mount = options_.root + "/" + ctrl;
      if (!Exists(mount + "/cgroup.procs")) {
        bool needed = (std::string(ctrl) == "memory" && r.memory_bytes) ||
                      (std::string(ctrl) == "pids" && r.pids) ||
                      (std::string(ctrl) == "cpu" && r.cpu_millis) ||
                      std::string(ctrl) == "devices";
        if (needed)
          return FailedPrecondition(std::string("cgroup v1 controller ") + ctrl +
                                    " is not mounted at " + mount);
        p.warnings.push_back(std::string("cgroup controller ") + ctrl + " is not available");
        continue;
      }
      std::string dir = Dir(ctrl, name);
      RETURN_IF_ERROR(CreateCgroupDir(dir));
      p.procs_files.push_back(dir + "/cgroup.procs");
      p.dirs.push_back(dir);
      RETURN_IF_ERROR(Apply(ctrl, dir, r, devices));
    }
    p.oom_events_file = Dir("memory", name) + "/memory.oom_control";
    return p;
  }

  Status Destroy(const std::string& name) override {
    Status result;
    for (const char* ctrl : kControllers) {
      Status st = KillAndRemove(Dir(ctrl, name));
      if (!st.ok() && result.ok()) result = st;
    }
    return result;
  }

 private:
  static constexpr const char* kControllers[] = {"memory", "pids", "cpu", "devices"};

  std::string Dir(const char* ctrl, const std::string& name) const {
    return options_.root + "/" + ctrl + "/" + options_.parent + "/" + name;
  }

  Status Apply(const std::string& ctrl, const std::string& dir, const appspec::ResourceSpec& r,
               const std::vector<DeviceRule>& devices) {
    if (ctrl == "memory" && r.memory_bytes) {
      RETURN_IF_ERROR(
          WriteControlFile(dir + "/memory.limit_in_bytes", std::to_string(r.memory_bytes)));
      // No swap beyond the limit either, when the kernel accounts swap.
      if (Exists(dir + "/memory.memsw.limit_in_bytes")) {
        RETURN_IF_ERROR(
            WriteControlFile(dir + "/memory.memsw.limit_in_bytes", std::to_string(r.memory_bytes)));
      }
    }
    if (ctrl == "pids") {
      RETURN_IF_ERROR(WriteControlFile(dir + "/pids.max",
                                       r.pids ? std::to_string(r.pids) : std::string("max")));
    }
    if (ctrl == "cpu" && r.cpu_millis) {
      RETURN_IF_ERROR(WriteControlFile(dir + "/cpu.cfs_period_us", "100000"));
      RETURN_IF_ERROR(
          WriteControlFile(dir + "/cpu.cfs_quota_us", std::to_string(r.cpu_millis * 100)));
    }
    if (ctrl == "devices") {
      RETURN_IF_ERROR(WriteControlFile(dir + "/devices.deny", "a"));
      for (const auto& rule : devices) {
        RETURN_IF_ERROR(WriteControlFile(dir + "/devices.allow", DeviceRuleToV1(rule)));
      }
    }
    return Status::Ok();
  }

  CgroupOptions options_;
};

class CgroupV2Driver final : public CgroupDriver {
 public:
  explicit CgroupV2Driver(CgroupOptions options) : options_(std::move(options)) {}

  CgroupPlacement Locate(const std::string& name) const override {
    CgroupPlacement p;
    p.procs_files.push_back(Dir(name) + "/cgroup.procs");
    p.dirs.push_back(Dir(name));
    p.oom_events_file = Dir(name) + "/memory.events";
    return p;
  }

  Result<CgroupPlacement> Create(const std::string& name, const appspec::ResourceSpec& r,
                                 const std::vector<DeviceRule>& devices) override {
    CgroupPlacement p = Locate(name);
    auto available = ReadTextFileBounded(options_.root + "/cgroup.controllers", 4096);
    std::string controllers = available.ok() ? " " + *available + " " : " ";
    for (auto& c : controllers) c = (c == '\n') ? ' ' : c;
    std::string enable;
    for (const char* ctrl : {"memory", "pids", "cpu"}) {
      bool present = controllers.find(std::string(" ") + ctrl + " ") != std::string::npos;
      bool needed = (std::string(ctrl) == "memory" && r.memory_bytes) ||
                    (std::string(ctrl) == "pids" && r.pids) ||
                    (std::string(ctrl) == "cpu" && r.cpu_millis);
      if (!present && needed) {
        return FailedPrecondition(std::string("cgroup v2 controller ") + ctrl +
                                  " is not available at " + options_.root);
      }
      if (!present)
        p.warnings.push_back(std::string("cgroup controller ") + ctrl + " is not available");
      else
        enable += std::string(enable.empty() ? "+" : " +") + ctrl;
    }
    const std::string parent = options_.root + "/" + options_.parent;
    const std::string dir = Dir(name);
    // Again if a monitor removed the parent (RemoveParentIfUnused) meanwhile.
    for (int attempt = 0;; ++attempt) {
      RETURN_IF_ERROR(CreateDirectories(parent, 0755));
      if (!enable.empty()) {
        RETURN_IF_ERROR(WriteControlFile(options_.root + "/cgroup.subtree_control", enable));
        RETURN_IF_ERROR(WriteControlFile(parent + "/cgroup.subtree_control", enable));
      }
      if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) break;
      if (errno != ENOENT || attempt == 2) return IOErrorFromErrno("create cgroup " + dir, errno);
    }
    if (r.memory_bytes) {
      RETURN_IF_ERROR(WriteControlFile(dir + "/memory.max", std::to_string(r.memory_bytes)));
      if (Exists(dir + "/memory.swap.max")) {
        RETURN_IF_ERROR(WriteControlFile(dir + "/memory.swap.max", "0"));
      }
    }
    if (r.pids) RETURN_IF_ERROR(WriteControlFile(dir + "/pids.max", std::to_string(r.pids)));
    if (r.cpu_millis) {
      RETURN_IF_ERROR(
          WriteControlFile(dir + "/cpu.max", std::to_string(r.cpu_millis * 100) + " 100000"));
    }
    if (options_.attach_device_filter) RETURN_IF_ERROR(AttachDeviceFilter(dir, devices));
    return p;
  }

  Status Destroy(const std::string& name) override {
    const std::string dir = Dir(name);
    if (Exists(dir + "/cgroup.kill")) WriteControlFile(dir + "/cgroup.kill", "1").IgnoreError();
    return KillAndRemove(dir);
  }

 private:
  std::string Dir(const std::string& name) const {
    return options_.root + "/" + options_.parent + "/" + name;
  }

  CgroupOptions options_;
};

}  // namespace

std::unique_ptr<CgroupDriver> MakeCgroupV1Driver(const CgroupOptions& options) {
  return std::make_unique<CgroupV1Driver>(options);
}

std::unique_ptr<CgroupDriver> MakeCgroupV2Driver(const CgroupOptions& options) {
  return std::make_unique<CgroupV2Driver>(options);
}

Result<std::unique_ptr<CgroupDriver>> MakeCgroupDriver(const CgroupOptions& options) {
  if (options.parent.empty()) return InvalidArgument("cgroup parent name is empty");
  CgroupVersion version = options.version;
  if (version == CgroupVersion::kAuto) {
    version =
        Exists(options.root + "/cgroup.controllers") ? CgroupVersion::kV2 : CgroupVersion::kV1;
  }
  if (version == CgroupVersion::kV2) return MakeCgroupV2Driver(options);
  return MakeCgroupV1Driver(options);
}

}  // namespace flotilla::runtime
