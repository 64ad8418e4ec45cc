// Which runs exist, which are alive, and cleaning up after dead ones.
//
// Every run has a directory /run/flotilla-sim/<run>/ (tmpfs: it vanishes at
// reboot with the namespaces it describes) holding `state.json` (written
// atomically before any namespace is made, see docs/sim.md) and `lock`. The
// process that owns a run holds an flock on `lock` for as long as it lives,
// so a run is alive exactly while that lock is held; after a SIGKILL the
// kernel releases it and `flotilla-sim clean` sees the run as dead. A
// detached run (`flotilla-sim topo up`) has no owner and is removed only by
// `topo down RUN` or `clean --all`. A namespace named fsim-<run>-... whose
// run has no directory is an orphan and is always cleaned.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/fd.h"
#include "core/status.h"

namespace flotilla::sim {

inline constexpr char kStateRoot[] = "/run/flotilla-sim";

// The owner's claim on a run: holds the lock until destroyed or Release()d.
class RunClaim {
 public:
  // Creates the run directory and state.json, and takes the lock.
  static Result<RunClaim> Create(const std::string& run_id, const std::string& description);
  RunClaim(RunClaim&& other) noexcept = default;
  RunClaim& operator=(RunClaim&&) = delete;

  const std::string& run_id() const { return run_id_; }
  std::string dir() const;
  // Removes the run directory (after the topology is down) and drops the lock.
  Status Finish();
  // Records that the run outlives this process (`topo up`): called once it
  // is fully built, so a harness killed while building leaves a dead run.
  Status MarkDetached();

 private:
  RunClaim(std::string run_id, UniqueFd lock, std::string description)
      : run_id_(std::move(run_id)), description_(std::move(description)), lock_(std::move(lock)) {}
  std::string run_id_;
  std::string description_;
  UniqueFd lock_;
};

enum class RunLiveness { kAlive, kDetached, kDead, kOrphan };
std::string_view RunLivenessName(RunLiveness l);

struct RunInfo {
  std::string run_id;
  RunLiveness liveness = RunLiveness::kOrphan;
  std::string description;         // from state.json
  std::vector<std::string> netns;  // namespaces of this run that exist now
};

// Every run that has a directory or a namespace.
Result<std::vector<RunInfo>> ListRuns();

// Removes everything of one run: kills the processes in its namespaces,
// deletes the namespaces, unmounts whatever is mounted under its directory,
// removes the directory. Refuses a run that is alive.
Status RemoveRun(const std::string& run_id);

// Removes every dead and orphaned run, and detached ones if `include_detached`.
// Returns the ids removed.
Result<std::vector<std::string>> CleanRuns(bool include_detached);

}  // namespace flotilla::sim
