#include "tracker/fleet/desired.h"

#include <limits>

namespace flotilla::tracker {

std::vector<std::string> DesiredReleases::GroupsOf(const FleetDevice& device) const {
  std::vector<std::string> names;
  for (const auto& [name, group] : state_.groups) {
    if (group.selector.Matches(device)) names.push_back(name);
  }
  return names;
}

std::vector<std::string> DesiredReleases::AppsOf(const FleetDevice& device) const {
  std::set<std::string> apps;
  for (const std::string& name : GroupsOf(device)) {
    const auto& assigned = state_.groups.at(name).apps;
    apps.insert(assigned.begin(), assigned.end());
  }
  return {apps.begin(), apps.end()};
}

DesiredApp DesiredReleases::For(const FleetDevice& device, const std::string& app) const {
  DesiredApp desired{app, std::nullopt, "", {}};
  std::vector<const FleetGroup*> pinning;  // groups of the device pinning the app, by name
  for (const std::string& name : GroupsOf(device)) {
    const FleetGroup& group = state_.groups.at(name);
    if (group.apps.contains(app)) desired.groups.push_back(name);
    if (group.pins.contains(app)) pinning.push_back(&group);
  }
  if (desired.groups.empty()) {
    desired.reason = "not assigned to any group of the device";
    return desired;
  }
  const auto recalled = state_.recalls.find(app);
  auto is_recalled = [&](uint64_t release) {
    return recalled != state_.recalls.end() && recalled->second.contains(release);
  };
  auto note_recalled = [&](uint64_t release) {
    return is_recalled(release) ? " (release recalled; the pin holds it)" : "";
  };
  const uint64_t floor = FloorOf(app);
  const auto device_pins = state_.device_pins.find(device.name);
  if (device_pins != state_.device_pins.end() && device_pins->second.contains(app)) {
    const uint64_t pinned = device_pins->second.at(app);
    if (pinned < floor)
      return RaisedToFloor(std::move(desired), "pinned on the device to " + std::to_string(pinned),
                           floor);
    desired.release = pinned;
    desired.reason = "pinned on the device" + std::string(note_recalled(*desired.release));
    return desired;
  }
  if (!pinning.empty()) {
    const uint64_t pinned = pinning.front()->pins.at(app);
    if (pinned < floor) {
      return RaisedToFloor(
          std::move(desired),
          "pinned by group " + pinning.front()->name + " to " + std::to_string(pinned), floor);
    }
    desired.release = pinned;
    desired.reason = "pinned by group " + pinning.front()->name;
    for (size_t i = 1; i < pinning.size(); ++i) {
      if (pinning[i]->pins.at(app) == *desired.release) continue;
      desired.reason += "; group " + pinning[i]->name + " pins " +
                        std::to_string(pinning[i]->pins.at(app)) + " (first group by name wins)";
    }
    desired.reason += note_recalled(*desired.release);
    return desired;
  }
  return Newest(device, std::move(desired), floor);
}

uint64_t DesiredReleases::FloorOf(const std::string& app) const {
  if (floors_ == nullptr) return 0;
  auto it = floors_->find(app);
  return it == floors_->end() ? 0 : it->second;
}

DesiredApp DesiredReleases::RaisedToFloor(DesiredApp desired, const std::string& held,
                                          uint64_t floor) const {
  const std::string why = held + ", below the floor " + std::to_string(floor);
  const auto published = state_.releases.find(desired.app);
  const auto recalled = state_.recalls.find(desired.app);
  if (published != state_.releases.end()) {
    for (auto it = published->second.lower_bound(floor); it != published->second.end(); ++it) {
      if (recalled != state_.recalls.end() && recalled->second.contains(*it)) continue;
      desired.release = *it;
      desired.reason = why + ": the lowest release at or above it";
      return desired;
    }
  }
  desired.reason = why + ": no release at or above it that is not recalled";
  return desired;
}

DesiredApp DesiredReleases::Newest(const FleetDevice& device, DesiredApp desired,
                                   uint64_t floor) const {
  const std::optional<uint64_t> ceiling =
      rollouts_ != nullptr ? rollouts_->Ceiling(device, desired.app) : std::nullopt;
  const uint64_t highest = ceiling.value_or(std::numeric_limits<uint64_t>::max());
  const auto published = state_.releases.find(desired.app);
  if (published == state_.releases.end() || published->second.empty()) {
    desired.reason = "no release published";
    return desired;
  }
  const auto recalled = state_.recalls.find(desired.app);
  bool skipped_recalled = false;
  for (auto it = published->second.rbegin(); it != published->second.rend() && *it >= floor; ++it) {
    if (*it > highest) continue;
    if (recalled != state_.recalls.end() && recalled->second.contains(*it)) {
      skipped_recalled = true;
      continue;
    }
    desired.release = *it;
    desired.reason = skipped_recalled ? "newest release not recalled" : "newest release";
    if (ceiling) desired.reason += " the rollout has reached";
    return desired;
  }
  if (floor > 0 && ceiling && highest < floor) {
    // The rollout holds the device below the floor: the floor wins.
    return RaisedToFloor(std::move(desired), "the rollout holds it at " + std::to_string(highest),
                         floor);
  }
  desired.reason = ceiling ? "no release at or below the rollout's, not recalled"
                   : floor ? "every published release at or above the floor " +
                                 std::to_string(floor) + " is recalled"
                           : "every published release is recalled";
  return desired;
}

std::vector<MaintenanceWindow> DesiredReleases::WindowsOf(const FleetDevice& device) const {
  std::vector<MaintenanceWindow> windows;
  for (const std::string& name : GroupsOf(device)) {
    const auto& group = state_.groups.at(name).windows;
    windows.insert(windows.end(), group.begin(), group.end());
  }
  return windows;
}

std::vector<DesiredApp> DesiredReleases::All(const FleetDevice& device) const {
  std::vector<DesiredApp> all;
  for (const std::string& app : AppsOf(device)) all.push_back(For(device, app));
  return all;
}

Status CheckAboveFloors(const std::vector<DesiredApp>& desired, const ReleaseFloors& floors) {
  for (const DesiredApp& app : desired) {
    auto floor = floors.find(app.app);
    if (app.release && floor != floors.end() && *app.release < floor->second) {
      return FailedPrecondition("app " + app.app + " release " + std::to_string(*app.release) +
                                " is below its floor " + std::to_string(floor->second) +
                                ": nothing below the floor is signed");
    }
  }
  return Status::Ok();
}

}  // namespace flotilla::tracker
