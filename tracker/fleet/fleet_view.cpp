#include "tracker/fleet/fleet_view.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "metadata/release_floor.h"
#include "metadata/repository.h"
#include "tracker/api/maintenance_window.h"

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
                                      const RolloutLimits& limits, const ReleaseFloors* floors) {
  std::vector<DesiredRow> rows;
  for (DesiredApp& app : DesiredReleases(state, &limits, floors).All(device)) {
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

std::vector<GroupRow> GroupRowsOf(const FleetState& state) {
  std::vector<GroupRow> rows;
  for (const auto& [name, group] : state.groups) {
    GroupRow row{
        name, group.selector.ToString(), {group.apps.begin(), group.apps.end()}, group.pins, {}, 0};
    for (const MaintenanceWindow& window : group.windows) row.windows.push_back(WindowText(window));
    for (const auto& [device_name, device] : state.devices) {
      row.devices += group.selector.Matches(device) ? 1 : 0;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::unique_ptr<FleetView>> FleetView::Open(const std::string& url, const Clock& clock,
                                                   std::string repository) {
  ASSIGN_OR_RETURN(auto fleet, FleetStore::Open(url, clock));
  ASSIGN_OR_RETURN(auto rollouts, RolloutStore::Open(url, clock));
  return std::unique_ptr<FleetView>(
      new FleetView(std::move(fleet), std::move(rollouts), clock, std::move(repository)));
}

Result<std::shared_ptr<const FleetViewModel>> FleetView::Compute(size_t max_rollouts,
                                                                 size_t max_failed) {
  auto model = std::make_shared<FleetViewModel>();
  model->computed_at = UnixSeconds(clock_);
  ASSIGN_OR_RETURN(auto views, rollouts_->List(std::nullopt, max_rollouts));
  for (const RolloutView& view : views) model->rollouts.push_back(ToRolloutRow(view, max_failed));
  ASSIGN_OR_RETURN(model->rollouts_total, rollouts_->Count());
  ASSIGN_OR_RETURN(model->state, fleet_->Load());
  model->groups = GroupRowsOf(model->state);
  // The limits refer to the model's own state, which does not move.
  ASSIGN_OR_RETURN(model->limits, rollouts_->Limits(model->state));
  if (!repository_.empty()) {
    ASSIGN_OR_RETURN(auto image, metadata::Repository::Open(repository_, clock_));
    ASSIGN_OR_RETURN(model->floors, metadata::SignedFloors(*image));
  }
  return std::shared_ptr<const FleetViewModel>(std::move(model));
}

Status FleetView::Fill(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed) {
  ASSIGN_OR_RETURN(auto model, Compute(max_rollouts, max_failed));
  FillFromModel(*model, snapshot, max_rollouts, max_failed);
  return Status::Ok();
}

void FillFromModel(const FleetViewModel& model, FleetSnapshot& snapshot, size_t max_rollouts,
                   size_t max_failed) {
  snapshot.rollouts.assign(model.rollouts.begin(),
                           model.rollouts.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                        max_rollouts, model.rollouts.size())));
  for (RolloutRow& row : snapshot.rollouts) {
    if (row.failed_devices.size() > max_failed) row.failed_devices.resize(max_failed);
  }
  snapshot.rollouts_total = model.rollouts_total;
  snapshot.groups = model.groups;
  snapshot.fleet_model_at = model.computed_at;
  for (DeviceRow& device : snapshot.devices) {
    const auto it = model.state.devices.find(device.identity.name);
    if (it == model.state.devices.end()) continue;  // enrolled since the model was read
    device.desired = DesiredRowsOf(it->second, model.state, *model.limits, &model.floors);
  }
}

Result<Duration> FleetViewRefresher::Refresh(WallTime) {
  {
    std::lock_guard lock(mu_);
    if (!asked_ && latest_ != nullptr) return kIdlePoll;
    asked_ = false;
  }
  const MonoTime start = clock_.MonotonicNow();
  Result<std::shared_ptr<const FleetViewModel>> model = Unavailable("not read");
  if (view_ == nullptr) {
    auto opened = FleetView::Open(url_, clock_, repository_);
    if (opened.ok()) view_ = std::move(*opened);
    model = opened.status();
  }
  if (view_ != nullptr) model = view_->Compute(max_rollouts_, max_failed_);
  if (!model.ok()) {
    // The page keeps the model it has (or says it is being read).
    spdlog::warn("dashboard: reading rollouts and desired releases failed, retrying in {} s: {}",
                 std::chrono::duration_cast<std::chrono::seconds>(kRetry).count(),
                 model.status().ToString());
    std::lock_guard lock(mu_);
    asked_ = true;
    return kRetry;
  }
  const Duration took = clock_.MonotonicNow() - start;
  {
    std::lock_guard lock(mu_);
    latest_ = std::move(*model);
  }
  return std::max<Duration>(kMinInterval, 2 * took);
}

Status FleetViewRefresher::Fill(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed) {
  std::shared_ptr<const FleetViewModel> model;
  {
    std::lock_guard lock(mu_);
    asked_ = true;
    model = latest_;
  }
  if (model != nullptr) FillFromModel(*model, snapshot, max_rollouts, max_failed);
  return Status::Ok();
}

}  // namespace flotilla::tracker
