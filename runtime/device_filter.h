// The device cgroup on cgroup v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
// attached to the container's cgroup that allows exactly the listed devices.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::runtime {

// One allowed device class; -1 is a wildcard major or minor.
struct DeviceRule {
  char type = 'c';  // 'c', 'b' or 'a' (both)
  int64_t major = -1;
  int64_t minor = -1;
  std::string access = "rwm";
};

// What every container may use: mknod of anything (opening needs a rule),
// and the standard /dev nodes and pseudo-terminals (as the OCI default).
std::vector<DeviceRule> DefaultDeviceRules();

// "c 1:3 rwm": the v1 devices.allow syntax.
std::string DeviceRuleToV1(const DeviceRule& rule);

// The program: allow (return 1) when a rule matches, else deny (return 0).
std::vector<bpf_insn> BuildDeviceFilter(const std::vector<DeviceRule>& rules);

// Loads the program (the kernel verifier checks it) and attaches it to the
// cgroup v2 directory `cgroup_dir` (BPF_F_ALLOW_MULTI).
Status AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<DeviceRule>& rules);

}  // namespace flotilla::runtime
