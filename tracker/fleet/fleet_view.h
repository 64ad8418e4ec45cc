// What the dashboard and GET /api/v1/fleet show of the fleet model
// (docs/tracker.md): each rollout as `rollout status` counts it
// (RolloutStore::List) and each device's desired release per app as
// `fleet desired` computes it (DesiredReleases over the rollouts' limits),
// with the rollout wave the device is in. Nothing here decides anything: it
// reads the same code the commands and the signing do.
// Not thread-safe (its own database connections).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/api/fleet.h"
#include "tracker/fleet/desired.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"

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
                                      const RolloutLimits& limits);

class FleetView {
 public:
  static Result<std::unique_ptr<FleetView>> Open(const std::string& url, const Clock& clock);

  // Adds to `snapshot` (from DeviceDb::Snapshot) the `max_rollouts` newest
  // rollouts with at most `max_failed` failed devices each, the number of
  // rollouts, and the desired releases of each of its devices.
  Status Fill(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed);

 private:
  FleetView(std::unique_ptr<FleetStore> fleet, std::unique_ptr<RolloutStore> rollouts)
      : fleet_(std::move(fleet)), rollouts_(std::move(rollouts)) {}

  std::unique_ptr<FleetStore> fleet_;
  std::unique_ptr<RolloutStore> rollouts_;
};

}  // namespace flotilla::tracker
