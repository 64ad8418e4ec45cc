#include "tracker/fleet/fleet_store.h"

#include <algorithm>
#include <charconv>

#include "appspec/app_spec.h"
#include "tracker/api/labels.h"
#include "tracker/fleet/config.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

Status RequireLabel(std::string_view what, const std::string& value) {
  if (IsValidLabel(value)) return Status::Ok();
  return InvalidArgument(std::string(what) + " '" + value + "' is not 1-64 of [A-Za-z0-9._-]");
}

// Release versions are decimal integers >= 1; publish writes them so.
std::optional<uint64_t> ParseVersion(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value == 0) return std::nullopt;
  return value;
}

std::string ReleaseName(const std::string& app, uint64_t release) {
  return "release " + std::to_string(release) + " of " + app;
}

}  // namespace

Result<std::unique_ptr<FleetStore>> FleetStore::Open(const std::string& url, const Clock& clock) {
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  return std::unique_ptr<FleetStore>(new FleetStore(std::move(engine), clock));
}

int64_t FleetStore::NowSeconds() const { return UnixSeconds(clock_); }

Result<std::string> FleetStore::DeviceId(const std::string& name) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT device_id FROM devices WHERE name = ?", {name}));
  if (rows.empty()) return NotFound("no device named '" + name + "'");
  return rows.Text(0, 0);
}

Status FleetStore::RequireGroup(const std::string& name) {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT 1 FROM fleet_groups WHERE name = ?", {name}));
  if (rows.empty()) return NotFound("no group named '" + name + "' (group list shows them)");
  return Status::Ok();
}

Status FleetStore::RequirePublished(const std::string& app, uint64_t release) {
  const std::string version = std::to_string(release);
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT 1 FROM releases WHERE app = ? AND release = ?",
                                            {app, version}));
  if (rows.empty()) return NotFound(ReleaseName(app, release) + " is not published");
  return Status::Ok();
}

Status FleetStore::SetTags(const std::string& device, const std::vector<std::string>& add,
                           const std::vector<std::string>& remove) {
  for (const std::string& tag : add) RETURN_IF_ERROR(RequireLabel("tag", tag));
  for (const std::string& tag : remove) {
    RETURN_IF_ERROR(RequireLabel("tag", tag));
    if (std::find(add.begin(), add.end(), tag) != add.end()) {
      return InvalidArgument("tag '" + tag + "' is both added and removed");
    }
  }
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(const std::string id, DeviceId(device));
  for (const std::string& tag : remove) {
    RETURN_IF_ERROR(
        db_->Query("DELETE FROM device_tags WHERE device_id = ? AND tag = ?", {id, tag}).status());
  }
  for (const std::string& tag : add) {
    RETURN_IF_ERROR(db_->Query("INSERT INTO device_tags(device_id, tag) VALUES(?, ?) "
                               "ON CONFLICT DO NOTHING",
                               {id, tag})
                        .status());
  }
  RETURN_IF_ERROR(Audited("device.tag", device, Json{{"add", add}, {"remove", remove}}));
  return transaction.Commit();
}

Status FleetStore::MoveDevice(const std::string& device, const std::string& site) {
  RETURN_IF_ERROR(RequireLabel("site", site));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("UPDATE devices SET site = ? WHERE name = ? "
                                            "RETURNING device_id",
                                            {site, device}));
  if (rows.empty()) return NotFound("no device named '" + device + "'");
  RETURN_IF_ERROR(Audited("device.move", device, Json{{"site", site}}));
  return transaction.Commit();
}

Status FleetStore::CreateGroup(const std::string& name, const Selector& selector) {
  RETURN_IF_ERROR(RequireLabel("group name", name));
  const std::string text = selector.ToString();
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("INSERT INTO fleet_groups(name, selector, created_at) "
                                            "VALUES(?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
                                            {name, text, NowSeconds()}));
  if (rows.empty()) return AlreadyExists("group '" + name + "' exists");
  RETURN_IF_ERROR(Audited("group.create", name, Json{{"selector", text}}));
  return transaction.Commit();
}

Status FleetStore::AssignApp(const std::string& app, const std::string& group) {
  RETURN_IF_ERROR(RequireLabel("app", app));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(RequireGroup(group));
  RETURN_IF_ERROR(db_->Query("INSERT INTO app_assignments(group_name, app) VALUES(?, ?) "
                             "ON CONFLICT DO NOTHING",
                             {group, app})
                      .status());
  RETURN_IF_ERROR(Audited("app.assign", app, Json{{"group", group}}));
  return transaction.Commit();
}

Status FleetStore::Pin(const PinTarget& target, const std::string& app, uint64_t release) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(RequirePublished(app, release));
  ASSIGN_OR_RETURN(SqlRows recalled,
                   db_->Query("SELECT 1 FROM recalls WHERE app = ? AND release = ?",
                              {app, static_cast<int64_t>(release)}));
  if (!recalled.empty()) return FailedPrecondition(ReleaseName(app, release) + " is recalled");
  std::string key = target.name;
  const char* sql =
      "INSERT INTO group_pins(group_name, app, release) VALUES(?, ?, ?) "
      "ON CONFLICT(group_name, app) DO UPDATE SET release = excluded.release";
  if (target.kind == PinTarget::Kind::kDevice) {
    ASSIGN_OR_RETURN(key, DeviceId(target.name));
    sql =
        "INSERT INTO device_pins(device_id, app, release) VALUES(?, ?, ?) "
        "ON CONFLICT(device_id, app) DO UPDATE SET release = excluded.release";
  } else {
    RETURN_IF_ERROR(RequireGroup(target.name));
  }
  RETURN_IF_ERROR(db_->Query(sql, {key, app, static_cast<int64_t>(release)}).status());
  RETURN_IF_ERROR(Audited("pin", PinTargetText(target), Json{{"app", app}, {"release", release}}));
  return transaction.Commit();
}

Status FleetStore::Unpin(const PinTarget& target, const std::string& app) {
  const bool device = target.kind == PinTarget::Kind::kDevice;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  std::string key = target.name;
  if (device) {
    ASSIGN_OR_RETURN(key, DeviceId(target.name));
  } else {
    RETURN_IF_ERROR(RequireGroup(target.name));
  }
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query(device ? "DELETE FROM device_pins WHERE device_id = ? AND app = ? "
                                       "RETURNING app"
                                     : "DELETE FROM group_pins WHERE group_name = ? AND app = ? "
                                       "RETURNING app",
                              {key, app}));
  if (rows.empty()) {
    return NotFound(std::string(device ? "device '" : "group '") + target.name +
                    "' has no pin for " + app);
  }
  RETURN_IF_ERROR(Audited("unpin", PinTargetText(target), Json{{"app", app}}));
  return transaction.Commit();
}

Result<std::vector<MaintenanceWindow>> FleetStore::AddWindow(const std::string& group,
                                                             const MaintenanceWindow& window) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(RequireGroup(group));
  ASSIGN_OR_RETURN(SqlRows last, db_->Query("SELECT COALESCE(MAX(position), 0) FROM group_windows "
                                            "WHERE group_name = ?",
                                            {group}));
  const int64_t position = last.Int(0, 0) + 1;
  RETURN_IF_ERROR(db_->Query("INSERT INTO group_windows(group_name, position, days, from_minute, "
                             "to_minute, zone) VALUES(?, ?, ?, ?, ?, ?)",
                             {group, position, int64_t{window.days}, int64_t{window.from_minute},
                              int64_t{window.to_minute}, window.zone})
                      .status());
  RETURN_IF_ERROR(Audited("group.window", group, Json{{"add", WindowText(window)}}));
  RETURN_IF_ERROR(transaction.Commit());
  ASSIGN_OR_RETURN(FleetState state, Load());
  return state.groups.at(group).windows;
}

Status FleetStore::ClearWindows(const std::string& group) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(RequireGroup(group));
  RETURN_IF_ERROR(db_->Query("DELETE FROM group_windows WHERE group_name = ?", {group}).status());
  RETURN_IF_ERROR(Audited("group.window", group, Json{{"clear", true}}));
  return transaction.Commit();
}

Status FleetStore::Recall(const std::string& app, uint64_t release) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(RequirePublished(app, release));
  RETURN_IF_ERROR(db_->Query("INSERT INTO recalls(app, release, recalled_at) VALUES(?, ?, ?) "
                             "ON CONFLICT DO NOTHING",
                             {app, static_cast<int64_t>(release), NowSeconds()})
                      .status());
  RETURN_IF_ERROR(Audited("recall", app, Json{{"release", release}}));
  return transaction.Commit();
}

Status FleetStore::Audited(std::string_view action, const std::string& target, Json detail) {
  return AppendAudit(*db_, NowSeconds(),
                     {.actor = actor_,
                      .action = std::string(action),
                      .target = target,
                      .detail = std::move(detail)});
}

std::string PinTargetText(const PinTarget& target) {
  return (target.kind == PinTarget::Kind::kDevice ? "device:" : "group:") + target.name;
}

Result<FleetState> FleetStore::Load() {
  FleetState state;
  RETURN_IF_ERROR(LoadDevices(state));
  RETURN_IF_ERROR(LoadGroups(state));
  RETURN_IF_ERROR(LoadReleases(state));
  RETURN_IF_ERROR(LoadConfig(state));
  RETURN_IF_ERROR(LoadSecrets(state));
  return state;
}

Status FleetStore::LoadDevices(FleetState& state) {
  ASSIGN_OR_RETURN(SqlRows devices,
                   db_->Query("SELECT device_id, name, site, public_key FROM devices"));
  std::map<std::string, std::string> name_of;  // device_id -> name
  for (size_t i = 0; i < devices.size(); ++i) {
    FleetDevice d{devices.Text(i, 0), devices.Text(i, 1), devices.Text(i, 2), {}};
    if (!devices.Text(i, 3).empty()) state.device_keys[d.device_id] = devices.Text(i, 3);
    name_of[d.device_id] = d.name;
    state.devices[d.name] = std::move(d);
  }
  ASSIGN_OR_RETURN(SqlRows tags, db_->Query("SELECT device_id, tag FROM device_tags"));
  for (size_t i = 0; i < tags.size(); ++i) {
    state.devices[name_of[tags.Text(i, 0)]].tags.insert(tags.Text(i, 1));
  }
  ASSIGN_OR_RETURN(SqlRows pins, db_->Query("SELECT device_id, app, release FROM device_pins"));
  for (size_t i = 0; i < pins.size(); ++i) {
    state.device_pins[name_of[pins.Text(i, 0)]][pins.Text(i, 1)] =
        static_cast<uint64_t>(pins.Int(i, 2));
  }
  return Status::Ok();
}

Status FleetStore::LoadGroups(FleetState& state) {
  ASSIGN_OR_RETURN(SqlRows groups, db_->Query("SELECT name, selector FROM fleet_groups"));
  for (size_t i = 0; i < groups.size(); ++i) {
    auto selector = Selector::Parse(groups.Text(i, 1));
    if (!selector.ok()) {
      return Corruption("group '" + groups.Text(i, 0) + "': stored " + selector.status().message());
    }
    state.groups[groups.Text(i, 0)] = FleetGroup{groups.Text(i, 0), *selector, {}, {}};
  }
  ASSIGN_OR_RETURN(SqlRows apps, db_->Query("SELECT group_name, app FROM app_assignments"));
  for (size_t i = 0; i < apps.size(); ++i) {
    state.groups[apps.Text(i, 0)].apps.insert(apps.Text(i, 1));
  }
  ASSIGN_OR_RETURN(SqlRows pins, db_->Query("SELECT group_name, app, release FROM group_pins"));
  for (size_t i = 0; i < pins.size(); ++i) {
    state.groups[pins.Text(i, 0)].pins[pins.Text(i, 1)] = static_cast<uint64_t>(pins.Int(i, 2));
  }
  ASSIGN_OR_RETURN(SqlRows windows,
                   db_->Query("SELECT group_name, days, from_minute, to_minute, zone "
                              "FROM group_windows ORDER BY group_name, position"));
  for (size_t i = 0; i < windows.size(); ++i) {
    MaintenanceWindow w{
        static_cast<uint8_t>(windows.Int(i, 1)), static_cast<uint16_t>(windows.Int(i, 2)),
        static_cast<uint16_t>(windows.Int(i, 3)), windows.Text(i, 4), windows.Text(i, 0)};
    state.groups[w.group].windows.push_back(std::move(w));
  }
  return Status::Ok();
}

Status FleetStore::LoadReleases(FleetState& state) {
  ASSIGN_OR_RETURN(SqlRows releases, db_->Query("SELECT app, release FROM releases"));
  for (size_t i = 0; i < releases.size(); ++i) {
    if (auto version = ParseVersion(releases.Text(i, 1))) {
      state.releases[releases.Text(i, 0)].insert(*version);
    }
  }
  ASSIGN_OR_RETURN(SqlRows recalls, db_->Query("SELECT app, release FROM recalls"));
  for (size_t i = 0; i < recalls.size(); ++i) {
    state.recalls[recalls.Text(i, 0)].insert(static_cast<uint64_t>(recalls.Int(i, 1)));
  }
  return Status::Ok();
}

Status FleetStore::LoadConfig(FleetState& state) {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT app, level, scope, name, value FROM "
                                            "config_values ORDER BY app, level, scope, name"));
  for (size_t i = 0; i < rows.size(); ++i) {
    auto level = ParseConfigLevel(rows.Text(i, 1));
    if (!level) return Corruption("config_values: unknown level '" + rows.Text(i, 1) + "'");
    state.config.push_back(ConfigEntry{.app = rows.Text(i, 0),
                                       .level = *level,
                                       .scope = rows.Text(i, 2),
                                       .name = rows.Text(i, 3),
                                       .value = rows.Text(i, 4)});
  }
  return Status::Ok();
}

Status FleetStore::LoadSecrets(FleetState& state) {
  // Only boxes sealed to the key the device holds now count.
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT s.app, s.level, s.scope, s.name, s.device_id, s.box, "
                              "s.sealed_at FROM secret_boxes s JOIN devices d ON d.device_id = "
                              "s.device_id AND d.public_key = s.public_key ORDER BY s.app, "
                              "s.level, s.scope, s.name, s.device_id"));
  for (size_t i = 0; i < rows.size(); ++i) {
    auto level = ParseConfigLevel(rows.Text(i, 1));
    if (!level) return Corruption("secret_boxes: unknown level '" + rows.Text(i, 1) + "'");
    state.secrets.push_back(SecretBox{.app = rows.Text(i, 0),
                                      .level = *level,
                                      .scope = rows.Text(i, 2),
                                      .name = rows.Text(i, 3),
                                      .device_id = rows.Text(i, 4),
                                      .box = rows.Text(i, 5),
                                      .sealed_at = rows.Int(i, 6)});
  }
  return Status::Ok();
}

Result<std::string> FleetStore::ConfigScope(const ConfigChange& change) {
  const bool app_level = change.level != ConfigLevel::kFleet;
  if (app_level) RETURN_IF_ERROR(RequireLabel("app", change.app));
  if (!app_level && !change.app.empty()) {
    return InvalidArgument("a fleet-level value names no app");
  }
  switch (change.level) {
    case ConfigLevel::kFleet:
    case ConfigLevel::kApp:
      return std::string();
    case ConfigLevel::kSite:
      RETURN_IF_ERROR(RequireLabel("site", change.scope));
      return change.scope;
    case ConfigLevel::kGroup:
      RETURN_IF_ERROR(RequireGroup(change.scope));
      return change.scope;
    case ConfigLevel::kDevice:
      return DeviceId(change.scope);
  }
  return InvalidArgument("unknown level");
}

Status FleetStore::CommitConfigChange(const ConfigChange& change) {
  if (change.set.empty() && change.unset.empty()) {
    return InvalidArgument("no NAME=VALUE to set or NAME to unset");
  }
  for (const auto& [name, value] : change.set) {
    RETURN_IF_ERROR(appspec::CheckConfigName(name));
    if (value.size() > appspec::kMaxConfigValueBytes || value.find('\0') != std::string::npos) {
      return InvalidArgument(name + ": a value is at most " +
                             std::to_string(appspec::kMaxConfigValueBytes) + " bytes, without NUL");
    }
  }
  for (const auto& name : change.unset) RETURN_IF_ERROR(appspec::CheckConfigName(name));
  const std::string level(ConfigLevelName(change.level));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(const std::string scope, ConfigScope(change));
  for (const auto& name : change.unset) {
    ASSIGN_OR_RETURN(SqlRows rows, db_->Query("DELETE FROM config_values WHERE app = ? AND "
                                              "level = ? AND scope = ? AND name = ? RETURNING name",
                                              {change.app, level, scope, name}));
    if (rows.empty()) return NotFound(name + " is not set at this level");
  }
  for (const auto& [name, value] : change.set) {
    RETURN_IF_ERROR(db_->Query("INSERT INTO config_values(app, level, scope, name, value, "
                               "updated_at) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(app, level, "
                               "scope, name) DO UPDATE SET value = excluded.value, "
                               "updated_at = excluded.updated_at",
                               {change.app, level, scope, name, value, NowSeconds()})
                        .status());
  }
  // Configuration is not secret (secrets are not configuration): the audit
  // keeps the values set, so that "who changed what" has an answer.
  Json detail{{"app", change.app}, {"level", level}};
  if (!change.set.empty()) detail["set"] = change.set;
  if (!change.unset.empty()) detail["unset"] = change.unset;
  RETURN_IF_ERROR(Audited("config.set",
                          change.level == ConfigLevel::kFleet || change.level == ConfigLevel::kApp
                              ? level
                              : level + ":" + change.scope,
                          std::move(detail)));
  return transaction.Commit();
}

Status FleetStore::CommitSecretChange(const SecretChange& change) {
  RETURN_IF_ERROR(appspec::CheckConfigName(change.name));
  if (change.unset && !change.boxes.empty()) return InvalidArgument("an unset seals nothing");
  const std::string level(ConfigLevelName(change.level));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(const std::string scope,
                   ConfigScope(ConfigChange{change.app, change.level, change.scope, {}, {}}));
  ASSIGN_OR_RETURN(SqlRows removed,
                   db_->Query("DELETE FROM secret_boxes WHERE app = ? AND level = ? AND scope = ? "
                              "AND name = ? RETURNING device_id",
                              {change.app, level, scope, change.name}));
  if (change.unset && removed.empty()) return NotFound(change.name + " is not set at this level");
  Json devices = Json::array();
  const int64_t now = NowSeconds();
  for (const SecretChange::Box& box : change.boxes) {
    ASSIGN_OR_RETURN(SqlRows bound, db_->Query("SELECT public_key FROM devices WHERE device_id = ?",
                                               {box.device_id}));
    if (bound.empty() || bound.Text(0, 0).empty() || bound.Text(0, 0) != box.public_key) {
      return FailedPrecondition("device " + box.device_id +
                                ": its key changed while sealing; run secret set again");
    }
    RETURN_IF_ERROR(db_->Query("INSERT INTO secret_boxes(app, level, scope, name, device_id, "
                               "public_key, box, sealed_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                               {change.app, level, scope, change.name, box.device_id,
                                box.public_key, box.box, now})
                        .status());
    devices.push_back(box.device_id);
  }
  // Names and devices only: neither the value nor its boxes.
  Json detail{{"app", change.app}, {"level", level}, {"name", change.name}};
  if (!change.unset) detail["sealed_for"] = devices;
  RETURN_IF_ERROR(Audited(change.unset ? "secret.unset" : "secret.set",
                          change.level == ConfigLevel::kFleet || change.level == ConfigLevel::kApp
                              ? level
                              : level + ":" + change.scope,
                          std::move(detail)));
  return transaction.Commit();
}

}  // namespace flotilla::tracker
