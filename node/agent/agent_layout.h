// Where installed agents live (docs/agent-update.md, "Files on the device"),
// and the small system facts the launcher and the check read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace flotilla::node::agent {

// The three binaries of an agent release, at the top of its one layer.
inline constexpr const char* kAgentBinaries[] = {"flotilla-node", "flotilla-node-full",
                                                 "flotilla-monitor"};

struct AgentLayout {
  explicit AgentLayout(std::string data_dir) : root(std::move(data_dir) + "/agent") {}
  std::string root;
  std::string slots() const { return root + "/agent.json"; }
  std::string lock() const { return root + "/agent.lock"; }
  // Present while an agent may be on probation: the check's unit runs only
  // then (ConditionPathExists=).
  std::string probation_marker() const { return root + "/on-probation"; }
  std::string releases() const { return root + "/releases"; }
  std::string release_dir(uint64_t release) const {
    return releases() + "/" + std::to_string(release);
  }
  std::string full_binary(uint64_t release) const {
    return release_dir(release) + "/flotilla-node-full";
  }
};

// Whether releases/<N> holds an executable, regular flotilla-node-full.
bool IsInstalled(const AgentLayout& layout, uint64_t release);

// The release whose flotilla-node-full `exe` is (a path under releases/,
// compared once both are made canonical), if it is one.
std::optional<uint64_t> InstalledReleaseOf(const AgentLayout& layout, const std::string& exe);

// /proc/self/exe, or /proc/<pid>/exe ("" when it cannot be read).
std::string ExecutableOf(int64_t pid);

// Whether process `pid` runs the file at `binary` (the same inode, however
// either path is spelt; a binary replaced since does not match).
bool ProcessRuns(int64_t pid, const std::string& binary);

// The kernel's id of this boot (/proc/sys/kernel/random/boot_id).
Result<std::string> BootId();

}  // namespace flotilla::node::agent
