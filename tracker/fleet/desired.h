// What each device should run: the apps assigned to its groups and, per app,
// the desired release (docs/fleet.md, "The desired release"): a device pin,
// else a group pin, else the newest published release that is not recalled
// and that the rollout limit allows; never a release below the app's floor
// (the image repository's signed floor, metadata/release_floor.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tracker/api/maintenance_window.h"
#include "tracker/fleet/selector.h"

namespace flotilla::tracker {

struct FleetGroup {
  std::string name;
  Selector selector;
  std::set<std::string> apps;            // assigned to the group
  std::map<std::string, uint64_t> pins;  // app -> release
  // When its devices may switch (docs/fleet.md, "Maintenance windows"); each
  // carries the group's name. Empty: the group does not restrict switches.
  std::vector<MaintenanceWindow> windows;
};

// One configuration value as stored (docs/config.md, "Levels and
// precedence"): `app` "" at the fleet level; `scope` "" (fleet, app), the
// site, the group's name or the device's id.
enum class ConfigLevel { kFleet, kApp, kSite, kGroup, kDevice };
struct ConfigEntry {
  std::string app;
  ConfigLevel level = ConfigLevel::kApp;
  std::string scope;
  std::string name;
  std::string value;
};

// One secret's sealed box for one device (docs/config.md, "Secrets"): the
// level and scope as ConfigEntry's; `box` base64, sealed to the device's
// bound key (FleetStore::Load keeps no box sealed to another key).
struct SecretBox {
  std::string app;
  ConfigLevel level = ConfigLevel::kApp;
  std::string scope;
  std::string name;
  std::string device_id;
  std::string box;
  int64_t sealed_at = 0;  // Unix seconds
};

// The fleet model as stored (FleetStore::Load), keyed by name.
struct FleetState {
  std::map<std::string, FleetDevice> devices;
  std::map<std::string, FleetGroup> groups;
  std::map<std::string, std::map<std::string, uint64_t>> device_pins;  // device -> app -> release
  std::map<std::string, std::set<uint64_t>> releases;                  // app -> published
  std::map<std::string, std::set<uint64_t>> recalls;                   // app -> recalled
  std::vector<ConfigEntry> config;                                     // every level's values
  std::vector<SecretBox> secrets;                  // every level's boxes, each device's
  std::map<std::string, std::string> device_keys;  // device id -> bound key (hex), if any
};

// The rollout seam: the highest release of `app` the rollouts have let
// `device` reach, or nullopt when no rollout limits it. Without one
// (DesiredReleases' default) nothing is limited.
class RolloutLimit {
 public:
  virtual ~RolloutLimit() = default;
  virtual std::optional<uint64_t> Ceiling(const FleetDevice& device,
                                          std::string_view app) const = 0;
};

struct DesiredApp {
  std::string app;
  std::optional<uint64_t> release;  // nullopt: the device is sent nothing for it
  std::string reason;               // why, for operators ("pinned by group g")
  std::vector<std::string> groups;  // the device's groups that assign the app
};

// app -> the lowest release a device may be sent (metadata::SignedFloors of
// the image repository); an app absent has no floor.
using ReleaseFloors = std::map<std::string, uint64_t>;

class DesiredReleases {
 public:
  // `state`, `rollouts` and `floors` (both may be null: no limit, no floor)
  // must outlive this object.
  explicit DesiredReleases(const FleetState& state, const RolloutLimit* rollouts = nullptr,
                           const ReleaseFloors* floors = nullptr)
      : state_(state), rollouts_(rollouts), floors_(floors) {}

  // The groups whose selector matches `device`, by name.
  std::vector<std::string> GroupsOf(const FleetDevice& device) const;
  // The apps `device` runs (assigned to any of its groups), by name.
  std::vector<std::string> AppsOf(const FleetDevice& device) const;
  // The release of `app` desired for `device`; release nullopt when the app
  // is not assigned to it or no release qualifies.
  DesiredApp For(const FleetDevice& device, const std::string& app) const;
  // The windows of every group selecting `device` that has any, by group
  // name then as added; empty when none does (the device may switch any time).
  std::vector<MaintenanceWindow> WindowsOf(const FleetDevice& device) const;
  // For() of every app the device runs.
  std::vector<DesiredApp> All(const FleetDevice& device) const;

 private:
  DesiredApp Newest(const FleetDevice& device, DesiredApp desired, uint64_t floor) const;
  // A pin (or a rollout) holding the device below `floor` (`held` says
  // which): the lowest release at or above the floor that is published and
  // not recalled.
  DesiredApp RaisedToFloor(DesiredApp desired, const std::string& held, uint64_t floor) const;
  uint64_t FloorOf(const std::string& app) const;

  const FleetState& state_;
  const RolloutLimit* rollouts_;
  const ReleaseFloors* floors_;
};

// FailedPrecondition when a release in `desired` is below its app's floor:
// what signs fleet documents checks this last, whatever chose the releases.
Status CheckAboveFloors(const std::vector<DesiredApp>& desired, const ReleaseFloors& floors);

}  // namespace flotilla::tracker
