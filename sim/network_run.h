// A claimed run with its network up: the one object a test or the harness
// holds. It owns the run's lock (sim/run_state.h) for its whole life, so a
// concurrent `flotilla-sim clean` never mistakes it for a leftover, and its
// destructor takes everything down again.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "sim/run_state.h"
#include "sim/topology.h"

namespace flotilla::sim {

class NetworkRun {
 public:
  // Claims a fresh run id and builds `spec`; on failure nothing is left.
  static Result<std::unique_ptr<NetworkRun>> Start(const TopologySpec& spec,
                                                   const std::string& description);
  ~NetworkRun();

  Topology& topology() { return *topology_; }
  const std::string& run_id() const { return claim_.run_id(); }
  // Directory of the run (/run/flotilla-sim/<run>): put per-run files and
  // mounts under it, and `clean` removes them with the run.
  std::string dir() const { return claim_.dir(); }

  // Tears the network down and removes the run directory. Idempotent.
  Status Stop();

 private:
  NetworkRun(RunClaim claim, std::unique_ptr<Topology> topology)
      : claim_(std::move(claim)), topology_(std::move(topology)) {}
  RunClaim claim_;
  std::unique_ptr<Topology> topology_;
  bool stopped_ = false;
};

}  // namespace flotilla::sim
