// The containers a run's nodes deployed, and getting rid of them.
//
// A node runs its app under a `flotilla-monitor` process that outlives the
// node by design (docs/node.md, "The apps outlive the node"), in cgroups
// named from the node's runtime state dir (docs/runtime.md, "cgroups":
// `flotilla-<12 hex of SHA-256 of the state dir's real path>`). Every node
// of a run keeps its runtime state dir under the run directory
// (`<run>/nodes/<device>/data/runtime`), so everything a run started can be
// found from the run directory alone, even after the harness was SIGKILLed.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::sim {

// The runtime state dirs of a run's nodes that exist now
// (`<run_dir>/nodes/*/data/runtime`).
std::vector<std::string> NodeRuntimeDirs(const std::string& run_dir);

// The cgroup parent names ("flotilla-<hash>") of those state dirs.
Result<std::vector<std::string>> RunCgroupParents(const std::string& run_dir);

// Existing cgroup directories named `parent` under every hierarchy of
// `cgroup_root` (v2: the root itself; v1/hybrid: each controller mount),
// with their child cgroups, deepest first.
std::vector<std::string> CgroupDirsOf(const std::string& parent,
                                      const std::string& cgroup_root = "/sys/fs/cgroup");

// Processes of the run outside its namespaces' bookkeeping: those in a
// cgroup of `parents`, and those whose command line or working directory
// names `run_dir` (monitors are started as `flotilla-monitor run
// <run_dir>/.../releases/<r> 3`). Never the calling process.
std::vector<pid_t> RunProcessesOutside(const std::string& run_dir,
                                       const std::vector<std::string>& parents);

struct SweepResult {
  size_t processes_killed = 0;
  size_t cgroups_removed = 0;
};

// SIGKILLs every process RunProcessesOutside(dir, parents) finds (`dir`: a
// run's or one node's directory), waits up to 5 s for them and the cgroups
// to empty, then removes the cgroup directories of `parents`.
Result<SweepResult> SweepContainers(const std::string& dir,
                                    const std::vector<std::string>& parents);

// SweepContainers over the whole run: every node's cgroup parent. It
// SIGKILLs every process RunProcessesOutside finds (a monitor's death takes
// its container's PID 1 with it: PR_SET_PDEATHSIG), waits up to 5 s for
// them and the cgroups to empty, then removes the cgroup directories.
// Idempotent; an error names what could not be removed.
Result<SweepResult> SweepRunContainers(const std::string& run_dir);

}  // namespace flotilla::sim
