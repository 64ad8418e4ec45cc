#include "tracker/fleet/config.h"

#include <algorithm>
#include <set>

#include "core/enum_names.h"
#include "metadata/release.h"

namespace flotilla::tracker {
namespace {

constexpr EnumName<ConfigLevel> kLevelNames[] = {{ConfigLevel::kFleet, "fleet"},
                                                 {ConfigLevel::kApp, "app"},
                                                 {ConfigLevel::kSite, "site"},
                                                 {ConfigLevel::kGroup, "group"},
                                                 {ConfigLevel::kDevice, "device"}};

// Whether `entry` applies to `app` on `device` (whose groups are `groups`).
bool Applies(const ConfigEntry& entry, const FleetDevice& device, const std::string& app,
             const std::set<std::string>& groups) {
  if (entry.level == ConfigLevel::kFleet) return true;
  if (entry.app != app) return false;
  switch (entry.level) {
    case ConfigLevel::kApp:
      return true;
    case ConfigLevel::kSite:
      return !device.site.empty() && entry.scope == device.site;
    case ConfigLevel::kGroup:
      return groups.count(entry.scope) != 0;
    case ConfigLevel::kDevice:
      return entry.scope == device.device_id;
    case ConfigLevel::kFleet:
      break;
  }
  return false;
}

}  // namespace

std::string_view ConfigLevelName(ConfigLevel level) { return NameOf(kLevelNames, level); }

std::optional<ConfigLevel> ParseConfigLevel(std::string_view name) {
  for (const auto& [level, text] : kLevelNames) {
    if (text == name) return level;
  }
  return std::nullopt;
}

namespace {

// The precedence of docs/config.md over `entries` (values or boxes).
std::vector<EffectiveConfigValue> Effective(
    const std::vector<ConfigEntry>& entries, const FleetState& state, const FleetDevice& device,
    const std::string& app, const std::function<bool(const std::string&)>& fleet_accepts) {
  std::set<std::string> groups;
  for (const auto& [name, group] : state.groups) {
    if (group.selector.Matches(device)) groups.insert(name);
  }
  std::map<std::string, EffectiveConfigValue> chosen;
  for (const ConfigEntry& entry : entries) {
    if (!Applies(entry, device, app, groups)) continue;
    if (entry.level == ConfigLevel::kFleet && fleet_accepts && !fleet_accepts(entry.name)) {
      continue;
    }
    auto [it, added] = chosen.try_emplace(
        entry.name, EffectiveConfigValue{entry.name, entry.value, entry.level, entry.scope});
    if (added) continue;
    EffectiveConfigValue& value = it->second;
    if (entry.level == ConfigLevel::kGroup && value.level == ConfigLevel::kGroup) {
      // Two groups: the name that sorts first wins, the other is named.
      if (entry.scope < value.scope) {
        value.shadowed.push_back(value.scope);
        value.value = entry.value;
        value.scope = entry.scope;
      } else {
        value.shadowed.push_back(entry.scope);
      }
      std::sort(value.shadowed.begin(), value.shadowed.end());
    } else if (entry.level > value.level) {
      value = EffectiveConfigValue{entry.name, entry.value, entry.level, entry.scope};
    }
  }
  std::vector<EffectiveConfigValue> out;
  for (auto& [name, value] : chosen) out.push_back(std::move(value));
  return out;
}

}  // namespace

bool LevelApplies(const FleetState& state, const FleetDevice& device, const std::string& app,
                  ConfigLevel level, const std::string& scope) {
  std::set<std::string> groups;
  for (const auto& [name, group] : state.groups) {
    if (group.selector.Matches(device)) groups.insert(name);
  }
  return Applies(ConfigEntry{level == ConfigLevel::kFleet ? "" : app, level, scope, "", ""}, device,
                 app, groups);
}

std::vector<EffectiveConfigValue> EffectiveConfig(
    const FleetState& state, const FleetDevice& device, const std::string& app,
    const std::function<bool(const std::string&)>& fleet_accepts) {
  return Effective(state.config, state, device, app, fleet_accepts);
}

std::vector<EffectiveConfigValue> EffectiveSecrets(
    const FleetState& state, const FleetDevice& device, const std::string& app,
    const std::function<bool(const std::string&)>& fleet_accepts) {
  std::vector<ConfigEntry> boxes;
  for (const SecretBox& s : state.secrets) {
    if (s.device_id == device.device_id) boxes.push_back({s.app, s.level, s.scope, s.name, s.box});
  }
  return Effective(boxes, state, device, app, fleet_accepts);
}

appspec::ConfigValues ValuesOf(const std::vector<EffectiveConfigValue>& effective) {
  appspec::ConfigValues values;
  for (const auto& v : effective) values[v.name] = v.value;
  return values;
}

Result<const appspec::AppSpec*> ReleaseSpecs::Of(const std::string& app, uint64_t release) {
  const std::string name = metadata::ReleaseTargetName(app, release);
  auto it = parsed_.find(name);
  if (it == parsed_.end()) {
    Result<appspec::AppSpec> spec = [&]() -> Result<appspec::AppSpec> {
      auto target = targets_.targets.find(name);
      if (target == targets_.targets.end()) {
        return FailedPrecondition("release " + std::to_string(release) + " of " + app +
                                  " is not a target of the image repository");
      }
      ASSIGN_OR_RETURN(metadata::Release parsed, metadata::ParseRelease(target->second.custom));
      return appspec::ParseAppSpec(parsed.app_spec);
    }();
    it = parsed_.emplace(name, std::move(spec)).first;
  }
  if (!it->second.ok()) return it->second.status();
  return &*it->second;
}

Result<std::map<std::string, appspec::ConfigValues>> DeviceConfig(
    const FleetState& state, const FleetDevice& device, const std::vector<DesiredApp>& desired,
    ReleaseSpecs& specs) {
  std::map<std::string, appspec::ConfigValues> out;
  if (state.config.empty()) return out;
  for (const DesiredApp& app : desired) {
    if (!app.release) continue;
    ASSIGN_OR_RETURN(const appspec::AppSpec* spec, specs.Of(app.app, *app.release));
    auto declares = [spec](const std::string& name) {
      for (const auto& v : spec->config) {
        if (v.name == name) return true;
      }
      return false;
    };
    appspec::ConfigValues values = ValuesOf(EffectiveConfig(state, device, app.app, declares));
    if (values.empty()) continue;
    Status accepted = appspec::CheckConfigValues(*spec, values);
    if (!accepted.ok()) {
      return FailedPrecondition("device " + device.name + ": " + app.app + " release " +
                                std::to_string(*app.release) + ": " + accepted.message());
    }
    out.emplace(app.app, std::move(values));
  }
  return out;
}

Result<std::map<std::string, appspec::ConfigValues>> DeviceSecrets(
    const FleetState& state, const FleetDevice& device, const std::vector<DesiredApp>& desired,
    ReleaseSpecs& specs) {
  std::map<std::string, appspec::ConfigValues> out;
  if (state.secrets.empty()) return out;
  for (const DesiredApp& app : desired) {
    if (!app.release) continue;
    ASSIGN_OR_RETURN(const appspec::AppSpec* spec, specs.Of(app.app, *app.release));
    auto declares = [spec](const std::string& name) {
      return appspec::DeclaresSecret(*spec, name);
    };
    appspec::ConfigValues boxes = ValuesOf(EffectiveSecrets(state, device, app.app, declares));
    for (const auto& [name, box] : boxes) {
      if (!declares(name)) {
        return FailedPrecondition("device " + device.name + ": " + app.app + " release " +
                                  std::to_string(*app.release) + ": does not declare the secret " +
                                  name);
      }
    }
    if (!boxes.empty()) out.emplace(app.app, std::move(boxes));
  }
  return out;
}

}  // namespace flotilla::tracker
