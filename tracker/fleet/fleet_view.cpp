#include "tracker/fleet/fleet_view.h"

#include <fmt/format.h>

namespace flotilla::tracker {

RolloutRow ToRolloutRow(const RolloutView& view, size_t max_failed) {
  const Rollout& r = view.rollout;
  RolloutRow row;
  row.id = r.id;
  row.app = r.app;
  row.release = r.release;
  row.group = r.group;
  row.state = std::string(RolloutStateName(r.state));
  row.reason = r.reason;
  row.current_wave = r.current_wave + 1;
  row.soak_s = r.soak_s;
  row.max_failures = ShareText(r.max_failures);
  row.wave_timeout_s = r.wave_timeout_s;
  row.created_at = r.created_at;
  row.wave_started_at = r.wave_started_at;
  row.updated_at = r.updated_at;
  for (size_t w = 0; w < view.waves.size(); ++w) {
    const WaveCounts& c = view.waves[w];
    row.waves.push_back({ShareText(r.waves[w]), c.started, c.size, c.healthy, c.soaking, c.failed,
                         c.pending, c.silent});
  }
  for (const RolloutMember& m : view.members) {
    if (m.failure.empty()) continue;
    if (row.failed_devices.size() == max_failed) break;
    row.failed_devices.push_back({m.name, m.wave + 1, m.failure});
  }
  return row;
}

std::vector<DesiredRow> DesiredRowsOf(const FleetDevice& device, const FleetState& state,
                                      const RolloutLimits& limits) {
  std::vector<DesiredRow> rows;
  for (DesiredApp& app : DesiredReleases(state, &limits).All(device)) {
    DesiredRow row{app.app, app.release, std::move(app.reason)};
    if (auto placed = limits.PlacementOf(device, app.app)) {
      const Rollout& r = *placed->rollout;
      row.reason += fmt::format("; rollout {} ({}): wave {} of {}, {}", r.id,
                                RolloutStateName(r.state), placed->wave + 1, r.waves.size(),
                                placed->wave <= r.current_wave ? "started" : "waiting");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::unique_ptr<FleetView>> FleetView::Open(const std::string& url, const Clock& clock) {
  ASSIGN_OR_RETURN(auto fleet, FleetStore::Open(url, clock));
  ASSIGN_OR_RETURN(auto rollouts, RolloutStore::Open(url, clock));
  return std::unique_ptr<FleetView>(new FleetView(std::move(fleet), std::move(rollouts)));
}

Status FleetView::Fill(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed) {
  ASSIGN_OR_RETURN(auto views, rollouts_->List(std::nullopt, max_rollouts));
  snapshot.rollouts.clear();
  for (const RolloutView& view : views) snapshot.rollouts.push_back(ToRolloutRow(view, max_failed));
  ASSIGN_OR_RETURN(snapshot.rollouts_total, rollouts_->Count());
  if (snapshot.devices.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(const FleetState state, fleet_->Load());
  ASSIGN_OR_RETURN(auto limits, rollouts_->Limits(state));
  for (DeviceRow& device : snapshot.devices) {
    const auto it = state.devices.find(device.identity.name);
    if (it == state.devices.end()) continue;  // enrolled since the snapshot
    device.desired = DesiredRowsOf(it->second, state, *limits);
  }
  return Status::Ok();
}

}  // namespace flotilla::tracker
