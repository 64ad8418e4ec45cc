// The fleet model's tables (docs/fleet.md, "Tables") in the tracker's
// database, on either engine: device sites and tags, groups, app
// assignments, pins and recalls. Each change is one statement or one
// transaction; unknown names are NotFound, bad labels InvalidArgument, and a
// refused change leaves the database as it was.
// Not thread-safe (one SqlEngine).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/fleet/desired.h"
#include "tracker/storage/operator_store.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

// A change of configuration values at one level (docs/config.md): `app` ""
// at the fleet level; `scope` the site, the group's name or the device's
// name (at the fleet and app levels, "").
struct ConfigChange {
  std::string app;
  ConfigLevel level = ConfigLevel::kApp;
  std::string scope;
  std::map<std::string, std::string> set;  // name -> value
  std::vector<std::string> unset;
};

// A change of one secret at one level (docs/config.md, "Secrets"): `set`
// replaces every box of the name at that level with `boxes` (the devices in
// scope the caller sealed for, by id, each with the key it sealed to);
// unset removes them. The clear value never reaches the store.
struct SecretChange {
  std::string app;  // "" at the fleet level
  ConfigLevel level = ConfigLevel::kApp;
  std::string scope;  // as ConfigChange's
  std::string name;
  bool unset = false;
  struct Box {
    std::string device_id;
    std::string public_key;  // hex, the key `box` is sealed to
    std::string box;         // base64 (core/sealed_box.h)
  };
  std::vector<Box> boxes;
};

// What a pin holds: one device or one group, by name.
struct PinTarget {
  enum class Kind { kDevice, kGroup };
  Kind kind = Kind::kDevice;
  std::string name;
};

// "device:NAME" or "group:NAME", as the audit log names a pin's target.
std::string PinTargetText(const PinTarget& target);

class FleetStore {
 public:
  // Opens the database `url` names (SqlEngine::Open) and migrates its schema.
  static Result<std::unique_ptr<FleetStore>> Open(const std::string& url, const Clock& clock);

  // The whole model; each table is read once (a change committed between two
  // reads may show in one and not the other, as with concurrent commands).
  Result<FleetState> Load();

  // Adds and removes tags (labels) of the device named `device`.
  Status SetTags(const std::string& device, const std::vector<std::string>& add,
                 const std::vector<std::string>& remove);
  Status MoveDevice(const std::string& device, const std::string& site);
  // AlreadyExists for a name in use.
  Status CreateGroup(const std::string& name, const Selector& selector);
  Status AssignApp(const std::string& app, const std::string& group);
  // The release must be published and not recalled (FailedPrecondition).
  Status Pin(const PinTarget& target, const std::string& app, uint64_t release);
  // NotFound when there is no such pin.
  Status Unpin(const PinTarget& target, const std::string& app);
  // Adds a maintenance window to the group (after those it has); the window
  // is checked already (MakeWindow). Returns the group's windows.
  Result<std::vector<MaintenanceWindow>> AddWindow(const std::string& group,
                                                   const MaintenanceWindow& window);
  // Removes every window of the group (it then restricts no switch).
  Status ClearWindows(const std::string& group);
  // The release must be published; recalling it twice is not an error.
  Status Recall(const std::string& app, uint64_t release);

  // Who the audit log names for each change (written in the change's
  // transaction, docs/operators.md); LocalActor() until set.
  void set_actor(std::string actor) { actor_ = std::move(actor); }
  // The one place a configuration change is committed: one transaction, all
  // of it or nothing. Names are checked (appspec::CheckConfigName), values
  // bounded; the scope must exist (a device or group by name; a site is a
  // label). NotFound for a name to unset that the level does not set.
  // Whether the releases devices run accept the values is the caller's
  // check (DeviceConfig), made on the state after the change.
  Status CommitConfigChange(const ConfigChange& change);
  // The stored scope of `change` (a device's id for its name).
  Result<std::string> ConfigScope(const ConfigChange& change);
  // The one place a secret change is committed: one transaction, audited
  // (`secret.set`, `secret.unset`: names and devices, never a box or a
  // value). Each box's key must be its device's bound key at commit time
  // (FailedPrecondition otherwise: a key changed meanwhile; seal again).
  // NotFound for an unset of a name the level does not set.
  Status CommitSecretChange(const SecretChange& change);

 private:
  FleetStore(std::unique_ptr<SqlEngine> db, const Clock& clock)
      : db_(std::move(db)), clock_(clock), actor_(LocalActor()) {}
  // The change's audit row, in its transaction.
  Status Audited(std::string_view action, const std::string& target, Json detail);
  Result<std::string> DeviceId(const std::string& name);
  Status RequireGroup(const std::string& name);
  Status RequirePublished(const std::string& app, uint64_t release);
  Status LoadDevices(FleetState& state);
  Status LoadGroups(FleetState& state);
  Status LoadReleases(FleetState& state);
  Status LoadConfig(FleetState& state);
  Status LoadSecrets(FleetState& state);
  int64_t NowSeconds() const;

  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  std::string actor_;
};

}  // namespace flotilla::tracker
