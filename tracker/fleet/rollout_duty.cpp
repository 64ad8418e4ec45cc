#include "tracker/fleet/rollout_duty.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace flotilla::tracker {

Result<std::optional<FleetPublishOutcome>> ResignDevices(const std::string& repository,
                                                         FleetStore& fleet, RolloutStore& rollouts,
                                                         const std::set<std::string>& device_ids,
                                                         const Clock& clock) {
  std::error_code ec;
  if (repository.empty() ||
      !std::filesystem::exists(FleetRootPath(RepositoryLayout{repository}), ec)) {
    return std::optional<FleetPublishOutcome>();
  }
  if (device_ids.empty()) return std::optional<FleetPublishOutcome>(FleetPublishOutcome{});
  ASSIGN_OR_RETURN(FleetState state, fleet.Load());
  ASSIGN_OR_RETURN(auto limits, rollouts.Limits(state));
  ASSIGN_OR_RETURN(
      FleetPublishOutcome outcome,
      PublishFleetDevices(
          repository, state, [&](const FleetDevice& d) { return device_ids.contains(d.device_id); },
          clock, limits.get()));
  return std::optional<FleetPublishOutcome>(outcome);
}

Result<RolloutRound> RunRolloutRound(const std::string& repository, FleetStore& fleet,
                                     RolloutStore& rollouts, const Clock& clock, bool resign_all,
                                     std::optional<int64_t> changed_since) {
  RolloutRound round;
  std::vector<std::string> changed;
  if (changed_since) {  // read before the evaluation, which changes updated_at too
    ASSIGN_OR_RETURN(changed, rollouts.MembersChangedSince(*changed_since));
  }
  ASSIGN_OR_RETURN(FleetState state, fleet.Load());
  ASSIGN_OR_RETURN(round.pass, rollouts.Evaluate(state));
  std::set<std::string> released(round.pass.released.begin(), round.pass.released.end());
  released.insert(changed.begin(), changed.end());
  if (resign_all) {
    for (const auto& [name, device] : state.devices) released.insert(device.device_id);
  }
  ASSIGN_OR_RETURN(round.published, ResignDevices(repository, fleet, rollouts, released, clock));
  return round;
}

Status RolloutDuty::Round() {
  if (fleet_ == nullptr) {
    ASSIGN_OR_RETURN(fleet_, FleetStore::Open(database_url_, clock_));
    ASSIGN_OR_RETURN(rollouts_, RolloutStore::Open(database_url_, clock_));
  }
  const int64_t started =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
  ASSIGN_OR_RETURN(RolloutRound round, RunRolloutRound(repository_, *fleet_, *rollouts_, clock_,
                                                       /*resign_all=*/false, last_round_));
  last_round_ = started;
  if (!round.pass.released.empty()) {
    if (round.published) {
      spdlog::info("rollouts: {} device(s) released or held back, {} fleet document(s) re-signed",
                   round.pass.released.size(), round.published->resigned);
    } else {
      spdlog::warn(
          "rollouts: {} device(s) released or held back, but the fleet repository is "
          "not initialized (fleet init): nothing signed",
          round.pass.released.size());
    }
  }
  return Status::Ok();
}

Result<Duration> RolloutDuty::Refresh(WallTime /*now*/) {
  if (Status st = Round(); !st.ok()) {
    spdlog::error("rollouts: evaluation failed (tried again in {} s): {}",
                  std::chrono::duration_cast<std::chrono::seconds>(interval_).count(),
                  st.ToString());
    fleet_.reset();  // a lost connection is opened again next time
    rollouts_.reset();
  }
  return interval_;
}

}  // namespace flotilla::tracker
