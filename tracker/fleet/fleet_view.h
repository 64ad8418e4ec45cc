// What the dashboard and GET /api/v1/fleet show of the fleet model
// (docs/tracker.md): each rollout as `rollout status` counts it
// (RolloutStore::List) and each device's desired release per app as
// `fleet desired` computes it (DesiredReleases over the rollouts' limits),
// with the rollout wave the device is in. Nothing here decides anything: it
// reads the same code the commands and the signing do.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/api/fleet.h"
#include "tracker/fleet/desired.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/publish/metadata_refresher.h"

namespace flotilla::tracker {

// A rollout in its API form, with at most `max_failed` of its failed
// devices (the first by wave then name).
RolloutRow ToRolloutRow(const RolloutView& view,
                        size_t max_failed = std::numeric_limits<size_t>::max());

// The desired release of each app `device` runs (DesiredReleases::All);
// when a rollout limits the device for an app, the reason names it and the
// device's wave: "newest release the rollout has reached; rollout 3
// (running): wave 2 of 3, waiting".
std::vector<DesiredRow> DesiredRowsOf(const FleetDevice& device, const FleetState& state,
                                      const RolloutLimits& limits,
                                      const ReleaseFloors* floors = nullptr);

// Each group with its selector, assignments, pins and windows, and the
// number of `state`'s devices its selector matches.
std::vector<GroupRow> GroupRowsOf(const FleetState& state);

// The fleet model as the dashboard shows it at one moment: the newest
// rollouts counted, and what the desired releases are computed from.
struct FleetViewModel {
  std::vector<RolloutRow> rollouts;
  uint64_t rollouts_total = 0;
  std::vector<GroupRow> groups;
  FleetState state;
  std::unique_ptr<RolloutLimits> limits;  // over `state`
  ReleaseFloors floors;                   // the image repository's signed floors
  int64_t computed_at = 0;                // unix seconds
};

class FleetView {
 public:
  // `repository` (may be empty: no floors) is the image repository whose
  // signed release floors the desired releases respect.
  static Result<std::unique_ptr<FleetView>> Open(const std::string& url, const Clock& clock,
                                                 std::string repository = "");

  // Reads the model: the `max_rollouts` newest rollouts with at most
  // `max_failed` failed devices each, the number of rollouts, the fleet
  // state and the rollouts' limits. Its cost grows with the fleet and the
  // rollouts' members (RolloutStore::List counts every member).
  Result<std::shared_ptr<const FleetViewModel>> Compute(size_t max_rollouts, size_t max_failed);
  // Compute(), then Fill(model, snapshot).
  Status Fill(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed);

 private:
  FleetView(std::unique_ptr<FleetStore> fleet, std::unique_ptr<RolloutStore> rollouts,
            const Clock& clock, std::string repository)
      : fleet_(std::move(fleet)),
        rollouts_(std::move(rollouts)),
        clock_(clock),
        repository_(std::move(repository)) {}

  std::unique_ptr<FleetStore> fleet_;
  std::unique_ptr<RolloutStore> rollouts_;
  const Clock& clock_;
  const std::string repository_;
};

// Adds to `snapshot` (from DeviceDb::Snapshot) the model's rollouts (at most
// `max_rollouts`, `max_failed` failed devices each), the number of
// rollouts, when the model was read, and the desired releases of each of
// the snapshot's devices (those enrolled since the model was read get none).
void FillFromModel(const FleetViewModel& model, FleetSnapshot& snapshot, size_t max_rollouts,
                   size_t max_failed);

// What `serve` gives the dashboard: the model read on a thread of its own
// (Refresh, from a RefreshSchedule), so that a page request costs the
// network thread only its page, whatever the fleet's size. It reads only
// while someone looks: a Refresh reads again when a page asked since the
// last read, and then waits at least twice as long as the read took.
// Fill and Refresh may run on different threads.
class FleetViewRefresher final : public MetadataRefresher {
 public:
  FleetViewRefresher(std::string url, const Clock& clock, size_t max_rollouts, size_t max_failed,
                     std::string repository = "")
      : url_(std::move(url)),
        repository_(std::move(repository)),
        clock_(clock),
        max_rollouts_(max_rollouts),
        max_failed_(max_failed) {}

  Result<Duration> Refresh(WallTime now) override;
  // FillFromModel with the latest model; before the first, only marks the
  // model asked for (snapshot.fleet_model_at stays 0).
  Status Fill(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed);

  static constexpr Duration kIdlePoll = std::chrono::milliseconds(250);
  static constexpr Duration kMinInterval = std::chrono::seconds(1);
  // After a failed read (logged); the page keeps the model it has.
  static constexpr Duration kRetry = std::chrono::seconds(5);

 private:
  const std::string url_;
  const std::string repository_;
  const Clock& clock_;
  const size_t max_rollouts_;
  const size_t max_failed_;
  std::unique_ptr<FleetView> view_;  // the refresher's thread only
  std::mutex mu_;
  std::shared_ptr<const FleetViewModel> latest_;  // guarded by mu_
  bool asked_ = false;  // guarded by mu_: a page asked since the last read
};

}  // namespace flotilla::tracker
