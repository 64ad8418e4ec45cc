#include "tracker/fleet/desired.h"

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
  const auto device_pins = state_.device_pins.find(device.name);
  if (device_pins != state_.device_pins.end() && device_pins->second.contains(app)) {
    desired.release = device_pins->second.at(app);
    desired.reason = "pinned on the device" + std::string(note_recalled(*desired.release));
    return desired;
  }
  if (!pinning.empty()) {
    desired.release = pinning.front()->pins.at(app);
    desired.reason = "pinned by group " + pinning.front()->name;
    for (size_t i = 1; i < pinning.size(); ++i) {
      if (pinning[i]->pins.at(app) == *desired.release) continue;
      desired.reason += "; group " + pinning[i]->name + " pins " +
                        std::to_string(pinning[i]->pins.at(app)) + " (first group by name wins)";
    }
    desired.reason += note_recalled(*desired.release);
    return desired;
  }
  return Newest(device, std::move(desired));
}

DesiredApp DesiredReleases::Newest(const FleetDevice& device, DesiredApp desired) const {
  const std::optional<uint64_t> ceiling =
      rollouts_ != nullptr ? rollouts_->Ceiling(device, desired.app) : std::nullopt;
  const auto published = state_.releases.find(desired.app);
  if (published == state_.releases.end() || published->second.empty()) {
    desired.reason = "no release published";
    return desired;
  }
  const auto recalled = state_.recalls.find(desired.app);
  bool skipped_recalled = false;
  for (auto it = published->second.rbegin(); it != published->second.rend(); ++it) {
    if (ceiling && *it > *ceiling) continue;
    if (recalled != state_.recalls.end() && recalled->second.contains(*it)) {
      skipped_recalled = true;
      continue;
    }
    desired.release = *it;
    desired.reason = skipped_recalled ? "newest release not recalled" : "newest release";
    if (ceiling) desired.reason += " the rollout has reached";
    return desired;
  }
  desired.reason = ceiling ? "no release at or below the rollout's, not recalled"
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

}  // namespace flotilla::tracker
