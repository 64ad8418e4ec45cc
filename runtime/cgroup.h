// Resource limits and the device allow list through cgroups, v2 (Raspberry
// Pi OS) or v1/hybrid (v1 controllers under <root>/<controller>/).
//
// Every cgroup a runtime makes lives under "flotilla-<12 hex of the state
// dir's hash>", so several runtimes on one host never share a cgroup.
// A controller that is absent is reported in `warnings`, and is an error
// only when the app asks for a limit it would enforce (the device
// controller is always required: without it a granted-only /dev is not
// enforced).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "appspec/app_spec.h"
#include "core/status.h"
#include "runtime/device_filter.h"

namespace flotilla::runtime {

struct CgroupPlacement {
  std::vector<std::string> procs_files;  // the container's PID 1 is written to each
  std::vector<std::string> dirs;         // removed, deepest last in the list order reversed
  std::string oom_events_file;           // holds "oom_kill N"
  std::vector<std::string> warnings;     // missing controllers
};

class CgroupDriver {
 public:
  virtual ~CgroupDriver() = default;
  // Makes (or reuses, when empty) the cgroup `name` and applies limits and rules.
  virtual Result<CgroupPlacement> Create(const std::string& name,
                                         const appspec::ResourceSpec& resources,
                                         const std::vector<DeviceRule>& devices) = 0;
  // The cgroup `name`'s directories, whether or not they exist.
  virtual CgroupPlacement Locate(const std::string& name) const = 0;
  // Kills every process left in `name` (SIGKILL) and removes its directories.
  virtual Status Destroy(const std::string& name) = 0;
};

enum class CgroupVersion { kAuto, kV1, kV2 };

struct CgroupOptions {
  std::string root = "/sys/fs/cgroup";
  CgroupVersion version = CgroupVersion::kAuto;
  std::string parent;  // "flotilla-<hash>", from the state dir
  // v2 only: attach the eBPF device filter. Off only for a directory that
  // merely looks like cgroupfs (tests), where no program can be attached.
  bool attach_device_filter = true;
};

// Picks v2 when <root>/cgroup.controllers exists, else v1.
Result<std::unique_ptr<CgroupDriver>> MakeCgroupDriver(const CgroupOptions& options);

std::unique_ptr<CgroupDriver> MakeCgroupV1Driver(const CgroupOptions& options);
std::unique_ptr<CgroupDriver> MakeCgroupV2Driver(const CgroupOptions& options);

// Writes `value` to an existing cgroup control file (no create, no truncate games).
Status WriteControlFile(const std::string& path, const std::string& value);

}  // namespace flotilla::runtime
