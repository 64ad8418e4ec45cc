#include "sim/network_run.h"

#include "sim/names.h"

namespace flotilla::sim {

Result<std::unique_ptr<NetworkRun>> NetworkRun::Start(const TopologySpec& spec,
                                                      const std::string& description) {
  ASSIGN_OR_RETURN(RunClaim claim, RunClaim::Create(NewRunId(), description));
  auto topology = Topology::Up(claim.run_id(), spec);
  if (!topology.ok()) {
    claim.Finish().IgnoreError();
    return topology.status();
  }
  return std::unique_ptr<NetworkRun>(new NetworkRun(std::move(claim), std::move(topology).value()));
}

NetworkRun::~NetworkRun() { Stop().IgnoreError(); }

Status NetworkRun::Stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  Status down = topology_->Down();
  Status finish = claim_.Finish();
  return down.ok() ? finish : down;
}

}  // namespace flotilla::sim
