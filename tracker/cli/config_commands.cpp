// `flotilla-tracker config set|unset|show` (docs/config.md): per-device
// configuration values at the fleet, app, site, group and device levels.
// A change is checked against the spec of the release each device it
// affects is to run, committed (FleetStore::CommitConfigChange, the one
// place a change is committed) and signed into those devices' fleet
// documents at once (ResignDevices, the path rollouts take).
#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "metadata/repository.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/config_cli.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/config.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_duty.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

Result<ConfigChange> ChangeOf(const ConfigFlags& f) {
  const int scopes = (f.fleet ? 1 : 0) + (f.group.empty() ? 0 : 1) + (f.site.empty() ? 0 : 1) +
                     (f.device.empty() ? 0 : 1);
  if (scopes > 1) return InvalidArgument("give one of --fleet, --group, --site, --device");
  ConfigChange change;
  if (f.fleet) {
    if (!f.app.empty()) return InvalidArgument("--fleet sets a value for every app: no --app");
    change.level = ConfigLevel::kFleet;
    return change;
  }
  if (f.app.empty()) return InvalidArgument("--app APP is required (or --fleet)");
  change.app = f.app;
  change.level = !f.group.empty()    ? ConfigLevel::kGroup
                 : !f.site.empty()   ? ConfigLevel::kSite
                 : !f.device.empty() ? ConfigLevel::kDevice
                                     : ConfigLevel::kApp;
  change.scope = f.group + f.site + f.device;
  return change;
}

Result<OpenedFleet> OpenFleet(const ConfigFlags& f) {
  OpenedFleet o;
  ASSIGN_OR_RETURN(o.repository, FleetRepositoryDir(f.where));
  ASSIGN_OR_RETURN(const std::string url, FleetDatabaseUrl(f.where));
  ASSIGN_OR_RETURN(o.store, FleetStore::Open(url, SystemClock::Instance()));
  ASSIGN_OR_RETURN(o.rollouts, RolloutStore::Open(url, SystemClock::Instance()));
  ASSIGN_OR_RETURN(o.state, o.store->Load());
  ASSIGN_OR_RETURN(o.limits, o.rollouts->Limits(o.state));
  ASSIGN_OR_RETURN(o.floors, RepositoryFloors(o.repository));
  ASSIGN_OR_RETURN(auto image, metadata::Repository::Open(o.repository, SystemClock::Instance()));
  o.image_targets = image->AllTargets();
  return o;
}

void AddWhere(CLI::App* cmd, ConfigFlags& f) {
  cmd->add_option("--repository", f.where.repository,
                  "Tracker repository directory (its tracker.db is the database)");
  cmd->add_option("--database-url", f.where.database_url,
                  "sqlite:PATH or postgresql://... (as serve's database_url)");
  cmd->add_option("--config", f.where.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", f.json, "Print one JSON document instead of text");
}

void AddLevel(CLI::App* cmd, ConfigFlags& f) {
  cmd->add_option("--app", f.app, "The app (every level but --fleet)");
  cmd->add_flag("--fleet", f.fleet, "Every app that declares the name, on every device");
  cmd->add_option("--group", f.group, "The devices a group selects");
  cmd->add_option("--site", f.site, "The devices of a site");
  cmd->add_option("--device", f.device, "One device (by name)");
  cmd->add_flag("--no-publish", f.no_publish, "Leave the signing to the next fleet publish");
}

namespace {

// `state` with `change` (its stored scope `scope`) applied.
FleetState Applied(FleetState state, const ConfigChange& change, const std::string& scope) {
  auto touched = [&](const ConfigEntry& e) {
    if (e.app != change.app || e.level != change.level || e.scope != scope) return false;
    return change.set.count(e.name) != 0 ||
           std::find(change.unset.begin(), change.unset.end(), e.name) != change.unset.end();
  };
  std::erase_if(state.config, touched);
  for (const auto& [name, value] : change.set) {
    state.config.push_back(ConfigEntry{change.app, change.level, scope, name, value});
  }
  return state;
}

// Each device's checked configuration of every app it runs under `state`;
// the devices whose configuration differs between `before` and `after` are
// the change's. The first of them whose release does not accept its values
// refuses the change.
Result<std::set<std::string>> AffectedDevices(const OpenedFleet& o, const FleetState& after) {
  DesiredReleases desired_before(o.state, o.limits.get(), &o.floors);
  ASSIGN_OR_RETURN(auto limits_after, o.rollouts->Limits(after));
  DesiredReleases desired_after(after, limits_after.get(), &o.floors);
  ReleaseSpecs specs(o.image_targets);
  std::set<std::string> affected;
  for (const auto& [name, device] : after.devices) {
    std::vector<DesiredApp> apps = desired_after.All(device);
    bool differs = false;
    for (const DesiredApp& app : apps) {
      differs = differs || ValuesOf(EffectiveConfig(o.state, device, app.app)) !=
                               ValuesOf(EffectiveConfig(after, device, app.app));
    }
    if (!differs) continue;
    RETURN_IF_ERROR(DeviceConfig(after, device, apps, specs).status());
    affected.insert(device.device_id);
  }
  return affected;
}

int RunChange(const ConfigFlags& f, bool set) {
  const std::string command = set ? "config set" : "config unset";
  auto change = ChangeOf(f);
  if (!change.ok()) return FailCommand(command, change.status());
  for (const std::string& item : f.items) {
    if (!set) {
      change->unset.push_back(item);
      continue;
    }
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return FailCommand(command, InvalidArgument("'" + item + "' is not NAME=VALUE"));
    }
    if (!change->set.emplace(item.substr(0, eq), item.substr(eq + 1)).second) {
      return FailCommand(command, InvalidArgument(item.substr(0, eq) + " is given twice"));
    }
  }
  auto opened = OpenFleet(f);
  if (!opened.ok()) return FailCommand(command, opened.status());
  auto scope = opened->store->ConfigScope(*change);
  if (!scope.ok()) return FailCommand(command, scope.status());
  const FleetState after = Applied(opened->state, *change, *scope);
  auto affected = AffectedDevices(*opened, after);
  if (!affected.ok()) {
    Status refused = affected.status().code() == StatusCode::kFailedPrecondition
                         ? InvalidArgument(affected.status().message())
                         : affected.status();
    return FailCommand(command, refused);
  }
  if (Status committed = opened->store->CommitConfigChange(*change); !committed.ok()) {
    return FailCommand(command, committed);
  }
  std::optional<FleetPublishOutcome> published;
  if (!f.no_publish) {
    auto resigned = ResignDevices(opened->repository, *opened->store, *opened->rollouts, *affected,
                                  SystemClock::Instance());
    if (!resigned.ok()) return FailCommand(command, resigned.status().WithContext("committed"));
    published = *resigned;
  }
  if (f.json) {
    Json out = {{"devices", affected->size()}};
    out["resigned"] = published ? Json(published->resigned) : Json(nullptr);
    Json failed = Json::array();
    if (published) {
      for (const auto& d : published->failed) {
        failed.push_back({{"device", d.device}, {"error", d.status.ToString()}});
      }
    }
    out["failed"] = failed;
    fmt::print("{}\n", out.dump());
  } else if (!published) {
    fmt::print("{} device(s) affected; signed at the next fleet publish\n", affected->size());
  } else {
    fmt::print("{} device(s) affected, {} re-signed\n", affected->size(), published->resigned);
  }
  if (published) {
    for (const auto& d : published->failed) {
      fmt::print(stderr, "{}: device {}: {}\n", command, d.device, d.status.ToString());
    }
    if (!published->failed.empty()) return 1;
  }
  return 0;
}

int RunShow(const ConfigFlags& f) {
  auto opened = OpenFleet(f);
  if (!opened.ok()) return FailCommand("config show", opened.status());
  auto device = opened->state.devices.find(f.device);
  if (device == opened->state.devices.end()) {
    return FailCommand("config show", NotFound("no device named '" + f.device + "'"));
  }
  DesiredReleases desired(opened->state, opened->limits.get(), &opened->floors);
  ReleaseSpecs specs(opened->image_targets);
  Json apps = Json::array();
  std::string text;
  for (const DesiredApp& app : desired.All(device->second)) {
    if (!f.app.empty() && app.app != f.app) continue;
    const appspec::AppSpec* spec = nullptr;
    if (app.release) {
      if (auto found = specs.Of(app.app, *app.release); found.ok()) spec = *found;
    }
    auto declares = [spec](const std::string& name) {
      if (spec == nullptr) return false;
      return std::any_of(spec->config.begin(), spec->config.end(),
                         [&](const auto& v) { return v.name == name; });
    };
    Json values = Json::array();
    text += app.app + (app.release ? " (release " + std::to_string(*app.release) + ")" : "") + "\n";
    for (const auto& v : EffectiveConfig(opened->state, device->second, app.app, declares)) {
      const std::string scope = v.level == ConfigLevel::kDevice ? f.device : v.scope;
      values.push_back({{"name", v.name},
                        {"value", v.value},
                        {"level", std::string(ConfigLevelName(v.level))},
                        {"scope", scope},
                        {"shadowed", v.shadowed}});
      text += fmt::format("  {:<14} {:<30} {}{}{}\n", v.name, v.value, ConfigLevelName(v.level),
                          scope.empty() ? "" : " " + scope,
                          v.shadowed.empty() ? "" : " (over group " + v.shadowed.front() + ")");
    }
    apps.push_back({{"app", app.app},
                    {"release", app.release ? Json(*app.release) : Json(nullptr)},
                    {"config", values}});
  }
  if (f.json) {
    fmt::print("{}\n", Json{{"device", f.device}, {"apps", apps}}.dump());
  } else {
    fmt::print("{}", text.empty() ? "no app runs on " + f.device + "\n" : text);
  }
  return 0;
}

}  // namespace

CommandAction RegisterConfigCommands(CLI::App& app) {
  auto f = std::make_shared<ConfigFlags>();
  auto* config = app.add_subcommand(
      "config", "Per-device configuration: values at fleet, app, site, group, device level");
  config->require_subcommand(1);
  config->footer(
      "\nPrecedence: device, then group, then site, then app, then fleet (docs/config.md).\n"
      "A value reaches an app only when the spec of its release declares the name.");
  auto* set = config->add_subcommand("set", "Set values (NAME=VALUE...) at one level");
  set->footer(
      "\nChecked against the spec of the release each affected device is to run, then\n"
      "signed into those devices' fleet documents at once.\n"
      "  flotilla-tracker config set --app kiosk --site shop-12 STORE_ID=12 --repository R\n"
      "  flotilla-tracker config set --app kiosk --device screen-7 ORIENTATION=portrait "
      "--repository R\n"
      "  flotilla-tracker config set --fleet TZ=Europe/Paris --repository R");
  set->add_option("values", f->items, "NAME=VALUE")->required();
  auto* unset = config->add_subcommand("unset", "Remove values (NAME...) at one level");
  unset->footer(
      "\n  flotilla-tracker config unset --app kiosk --device screen-7 ORIENTATION "
      "--repository R");
  unset->add_option("names", f->items, "NAME")->required();
  auto* show =
      config->add_subcommand("show", "A device's effective values and where each comes from");
  show->footer("\n  flotilla-tracker config show --device screen-7 [--app kiosk] --repository R");
  show->add_option("--device", f->device, "Device name")->required();
  show->add_option("--app", f->app, "Only this app");
  for (auto* cmd : {set, unset}) AddLevel(cmd, *f);
  for (auto* cmd : {set, unset, show}) AddWhere(cmd, *f);
  return [f, set, unset, show] {
    if (*set) return RunChange(*f, true);
    if (*unset) return RunChange(*f, false);
    if (*show) return RunShow(*f);
    return -1;
  };
}

}  // namespace flotilla::tracker
