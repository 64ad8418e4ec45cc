#include "tracker/fleet/rollout_duty.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>

#include "metadata/release_floor.h"
#include "metadata/repository.h"

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
  const int64_t started = UnixSeconds(clock_);
  ASSIGN_OR_RETURN(const bool floors_moved, FloorsMoved());
  ASSIGN_OR_RETURN(RolloutRound round, RunRolloutRound(repository_, *fleet_, *rollouts_, clock_,
                                                       /*resign_all=*/floors_moved, last_round_));
  if (floors_moved && round.published) {
    spdlog::info("release floors changed: {} fleet document(s) re-signed",
                 round.published->resigned);
  }
  last_round_ = started;
  if (round.published && !round.published->failed.empty()) {
    const auto& failed = round.published->failed;
    spdlog::warn("fleet documents of {} device(s) not re-signed (the others were); first: {}: {}",
                 failed.size(), failed.front().device, failed.front().status.ToString());
  }
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

Result<bool> RolloutDuty::FloorsMoved() {
  if (repository_.empty()) return false;
  const std::string timestamp = RepositoryLayout{repository_}.metadata_dir() + "/timestamp.json";
  struct stat st;
  if (::stat(timestamp.c_str(), &st) != 0) return false;
  const auto seen = std::make_tuple(
      static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), int64_t{st.st_size},
      int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
  if (floors_ && seen_timestamp_ == seen) return false;
  ASSIGN_OR_RETURN(auto image, metadata::Repository::Open(repository_, clock_));
  ASSIGN_OR_RETURN(auto floors, metadata::SignedFloors(*image));
  const bool moved = floors_ ? floors != *floors_ : !floors.empty();
  seen_timestamp_ = seen;
  floors_ = std::move(floors);
  return moved;
}

Result<Duration> RolloutDuty::Refresh(WallTime /*now*/) {
  if (Status st = Round(); !st.ok()) {
    spdlog::error("rollouts: evaluation failed (tried again in {} s): {}",
                  std::chrono::duration_cast<std::chrono::seconds>(interval_).count(),
                  st.ToString());
    fleet_.reset();  // a lost connection is opened again next time
    rollouts_.reset();
    floors_.reset();  // looked at again, and every document with them
  }
  return interval_;
}

}  // namespace flotilla::tracker
