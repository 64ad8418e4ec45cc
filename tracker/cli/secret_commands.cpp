// `flotilla-tracker secret set|unset|show` (docs/config.md, "Secrets"):
// a value read from stdin or a file, checked against the spec of the
// release each device in scope is to run, sealed for each of those devices
// whose key is bound, and only the sealed boxes committed
// (FleetStore::CommitSecretChange) and signed into their fleet documents.
// The clear value lives in this process's memory only, wiped after sealing.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "core/sealed_box.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/config_cli.h"
#include "tracker/fleet/config.h"
#include "tracker/fleet/rollout_duty.h"

namespace flotilla::tracker {
namespace {

struct SecretFlags {
  ConfigFlags level;
  std::string from_file;
};

const char kNoKeyReason[] = "no device key: a 0.1.0 node binds one when it updates";

// The value: one trailing newline dropped (what `echo` and editors add).
// Bounded; never from the command line.
Result<std::string> ReadValue(const std::string& from_file) {
  const size_t max = appspec::kMaxConfigValueBytes + 1;
  std::string value;
  if (!from_file.empty()) {
    ASSIGN_OR_RETURN(Bytes bytes, ReadFileBounded(from_file, max));
    value.assign(bytes.begin(), bytes.end());
    std::fill(bytes.begin(), bytes.end(), 0);
  } else {
    if (::isatty(STDIN_FILENO)) {
      fmt::print(stderr, "reading the value from standard input (end it with Ctrl-D)\n");
    }
    value.resize(max + 1);
    const size_t got = std::fread(value.data(), 1, value.size(), stdin);
    value.resize(got);
    if (got > max) {
      WipeString(value);
      return InvalidArgument("a secret is at most " +
                             std::to_string(appspec::kMaxConfigValueBytes) + " bytes");
    }
  }
  if (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

// A device the change seals for, and the key it seals to.
struct SealTarget {
  std::string name;
  std::string device_id;
  std::string public_key;
};

struct SealPlan {
  std::vector<SealTarget> sealed_for;
  std::vector<std::string> no_key;  // device names in scope without a bound key
};

// The devices in scope of `change`'s level that run a release declaring
// `name` a secret, each release's pattern checked against `value`. The
// first release that refuses it refuses the whole change (its message never
// holds the value).
Result<SealPlan> PlanSeal(const OpenedFleet& o, const ConfigChange& change,
                          const std::string& scope, const std::string& name,
                          const std::string& value) {
  DesiredReleases desired(o.state, o.limits.get(), &o.floors);
  ReleaseSpecs specs(o.image_targets);
  SealPlan plan;
  for (const auto& [device_name, device] : o.state.devices) {
    bool in_scope = false;
    for (const DesiredApp& app : desired.All(device)) {
      if (!app.release) continue;
      if (change.level != ConfigLevel::kFleet && app.app != change.app) continue;
      if (!LevelApplies(o.state, device, app.app, change.level, scope)) continue;
      ASSIGN_OR_RETURN(const appspec::AppSpec* spec, specs.Of(app.app, *app.release));
      if (change.level == ConfigLevel::kFleet && !appspec::DeclaresSecret(*spec, name)) continue;
      if (Status accepted = appspec::CheckSecretValue(*spec, name, value); !accepted.ok()) {
        return InvalidArgument("device " + device_name + ": " + app.app + " release " +
                               std::to_string(*app.release) + ": " + accepted.message());
      }
      in_scope = true;
    }
    if (!in_scope) continue;
    auto key = o.state.device_keys.find(device.device_id);
    if (key == o.state.device_keys.end()) {
      plan.no_key.push_back(device_name);
    } else {
      plan.sealed_for.push_back({device_name, device.device_id, key->second});
    }
  }
  if (plan.sealed_for.empty() && plan.no_key.empty()) {
    return InvalidArgument("no device in scope runs a release that declares the secret " + name +
                           ": nothing to seal for (the value is not kept)");
  }
  return plan;
}

// The ids of the devices holding a box of `name` at the change's level now.
std::set<std::string> HoldersOf(const FleetState& state, const ConfigChange& change,
                                const std::string& scope, const std::string& name) {
  std::set<std::string> ids;
  for (const SecretBox& box : state.secrets) {
    if (box.app == change.app && box.level == change.level && box.scope == scope &&
        box.name == name) {
      ids.insert(box.device_id);
    }
  }
  return ids;
}

// Signs the affected devices' documents (unless --no-publish) and prints
// the outcome; the process's exit code.
int Publish(const std::string& command, const ConfigFlags& f, OpenedFleet& o,
            const std::set<std::string>& affected, Json out, const std::string& text) {
  std::optional<FleetPublishOutcome> published;
  if (!f.no_publish) {
    auto resigned =
        ResignDevices(o.repository, *o.store, *o.rollouts, affected, SystemClock::Instance());
    if (!resigned.ok()) return FailCommand(command, resigned.status().WithContext("committed"));
    published = *resigned;
  }
  if (f.json) {
    out["resigned"] = published ? Json(published->resigned) : Json(nullptr);
    Json failed = Json::array();
    if (published) {
      for (const auto& d : published->failed) {
        failed.push_back({{"device", d.device}, {"error", d.status.ToString()}});
      }
    }
    out["failed"] = failed;
    fmt::print("{}\n", out.dump());
  } else {
    fmt::print("{}", text);
    if (!published) {
      fmt::print("signed at the next fleet publish\n");
    } else {
      fmt::print("{} device document(s) re-signed\n", published->resigned);
    }
  }
  if (published) {
    for (const auto& d : published->failed) {
      fmt::print(stderr, "{}: device {}: {}\n", command, d.device, d.status.ToString());
    }
    if (!published->failed.empty()) return 1;
  }
  return 0;
}

int RunSet(const SecretFlags& flags) {
  const std::string command = "secret set";
  const ConfigFlags& f = flags.level;
  auto change = ChangeOf(f);
  if (!change.ok()) return FailCommand(command, change.status());
  const std::string name = f.items.front();
  if (Status valid = appspec::CheckConfigName(name); !valid.ok()) {
    return FailCommand(command, valid);
  }
  auto opened = OpenFleet(f);
  if (!opened.ok()) return FailCommand(command, opened.status());
  auto scope = opened->store->ConfigScope(*change);
  if (!scope.ok()) return FailCommand(command, scope.status());
  auto value = ReadValue(flags.from_file);
  if (!value.ok()) return FailCommand(command, value.status());
  auto plan = PlanSeal(*opened, *change, *scope, name, *value);
  SecretChange secret{change->app, change->level, change->scope, name, false, {}};
  Status sealed = plan.status();
  if (sealed.ok()) {
    for (const SealTarget& target : plan->sealed_for) {
      auto key = Ed25519PublicKey::FromHex(target.public_key);
      auto box = key.ok() ? SealToKey(*key, *value) : Result<std::string>(key.status());
      if (!box.ok()) {
        sealed = box.status().WithContext("device " + target.name);
        break;
      }
      secret.boxes.push_back({target.device_id, target.public_key, *box});
    }
  }
  WipeString(*value);  // from here on, only boxes
  if (!sealed.ok()) return FailCommand(command, sealed);
  std::set<std::string> affected = HoldersOf(opened->state, *change, *scope, name);
  if (Status committed = opened->store->CommitSecretChange(secret); !committed.ok()) {
    return FailCommand(command, committed);
  }
  Json sealed_for = Json::array();
  for (const SealTarget& target : plan->sealed_for) {
    sealed_for.push_back(target.name);
    affected.insert(target.device_id);
  }
  std::string text = fmt::format("sealed {} for {} device(s)\n", name, plan->sealed_for.size());
  if (!plan->no_key.empty()) {
    std::string list;
    for (const auto& device : plan->no_key) list += (list.empty() ? "" : ", ") + device;
    text += fmt::format("not sealed for: {} ({})\n", list, kNoKeyReason);
  }
  Json out{{"name", name}, {"sealed_for", sealed_for}, {"not_sealed_for", plan->no_key}};
  return Publish(command, f, *opened, affected, std::move(out), text);
}

int RunUnset(const SecretFlags& flags) {
  const std::string command = "secret unset";
  const ConfigFlags& f = flags.level;
  auto change = ChangeOf(f);
  if (!change.ok()) return FailCommand(command, change.status());
  const std::string name = f.items.front();
  auto opened = OpenFleet(f);
  if (!opened.ok()) return FailCommand(command, opened.status());
  auto scope = opened->store->ConfigScope(*change);
  if (!scope.ok()) return FailCommand(command, scope.status());
  const std::set<std::string> affected = HoldersOf(opened->state, *change, *scope, name);
  SecretChange secret{change->app, change->level, change->scope, name, true, {}};
  if (Status committed = opened->store->CommitSecretChange(secret); !committed.ok()) {
    return FailCommand(command, committed);
  }
  return Publish(command, f, *opened, affected, Json{{"name", name}, {"devices", affected.size()}},
                 fmt::format("unset {} on {} device(s)\n", name, affected.size()));
}

int RunShow(const SecretFlags& flags) {
  const ConfigFlags& f = flags.level;
  auto opened = OpenFleet(f);
  if (!opened.ok()) return FailCommand("secret show", opened.status());
  auto device = opened->state.devices.find(f.device);
  if (device == opened->state.devices.end()) {
    return FailCommand("secret show", NotFound("no device named '" + f.device + "'"));
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
      return spec != nullptr && appspec::DeclaresSecret(*spec, name);
    };
    text += app.app + (app.release ? " (release " + std::to_string(*app.release) + ")" : "") + "\n";
    Json secrets = Json::array();
    std::set<std::string> present;
    for (const auto& v : EffectiveSecrets(opened->state, device->second, app.app, declares)) {
      int64_t sealed_at = 0;
      for (const SecretBox& box : opened->state.secrets) {
        if (box.device_id == device->second.device_id &&
            box.app == (v.level == ConfigLevel::kFleet ? "" : app.app) && box.level == v.level &&
            box.scope == v.scope && box.name == v.name) {
          sealed_at = box.sealed_at;
        }
      }
      const std::string scope = v.level == ConfigLevel::kDevice ? f.device : v.scope;
      present.insert(v.name);
      secrets.push_back({{"name", v.name},
                         {"level", std::string(ConfigLevelName(v.level))},
                         {"scope", scope},
                         {"sealed_at", UtcText(sealed_at)}});
      text += fmt::format("  {:<14} {}{}  sealed {}\n", v.name, ConfigLevelName(v.level),
                          scope.empty() ? "" : " " + scope, UtcText(sealed_at));
    }
    Json missing = Json::array();
    if (spec != nullptr) {
      for (const auto& declared : spec->config) {
        if (!declared.secret || present.count(declared.name) != 0) continue;
        missing.push_back(declared.name);
        text += fmt::format("  {:<14} missing: no box for this device (secret set again)\n",
                            declared.name);
      }
    }
    apps.push_back({{"app", app.app},
                    {"release", app.release ? Json(*app.release) : Json(nullptr)},
                    {"secrets", secrets},
                    {"missing", missing}});
  }
  if (f.json) {
    fmt::print("{}\n", Json{{"device", f.device}, {"apps", apps}}.dump());
  } else {
    fmt::print("{}", text.empty() ? "no app runs on " + f.device + "\n" : text);
  }
  return 0;
}

}  // namespace

CommandAction RegisterSecretCommands(CLI::App& app) {
  auto f = std::make_shared<SecretFlags>();
  auto* secret = app.add_subcommand(
      "secret",
      "Secrets: values sealed to each device's key (the tracker keeps none), read by the app "
      "from /run/flotilla/secrets/NAME");
  secret->require_subcommand(1);
  secret->footer(
      "\nLevels and precedence as `config` (docs/config.md, \"Secrets\"). The tracker keeps\n"
      "only the values sealed to each device's key: a device that enters the scope later\n"
      "(or gets a new key) has no box until `secret set` runs again with the value.\n"
      "The device key is on the SD card in clear: decommissioning a device means\n"
      "rotating every secret it held (`secret show --device NAME` lists them).");
  auto* set = secret->add_subcommand("set", "Seal a value (from stdin) for the devices in scope");
  set->footer(
      "\nThe value is read from standard input (one trailing newline dropped) or\n"
      "--from-file, never from the command line.\n"
      "  printf %s \"$TOKEN\" | flotilla-tracker secret set --app kiosk --device screen-7 "
      "API_TOKEN --repository R\n"
      "  flotilla-tracker secret set --app kiosk --site shop-12 API_TOKEN --from-file t.txt "
      "--repository R");
  set->add_option("--from-file", f->from_file, "Read the value from this file instead of stdin")
      ->check(CLI::ExistingFile);
  auto* unset = secret->add_subcommand("unset", "Remove a secret at one level");
  unset->footer(
      "\n  flotilla-tracker secret unset --app kiosk --site shop-12 API_TOKEN "
      "--repository R");
  for (auto* cmd : {set, unset}) {
    cmd->add_option("name", f->level.items, "The secret's NAME (declared `secret` by the spec)")
        ->required()
        ->expected(1);
    AddLevel(cmd, f->level);
  }
  auto* show = secret->add_subcommand(
      "show", "A device's secrets: names, levels, when sealed (never a value)");
  show->footer("\n  flotilla-tracker secret show --device screen-7 [--app kiosk] --repository R");
  show->add_option("--device", f->level.device, "Device name")->required();
  show->add_option("--app", f->level.app, "Only this app");
  for (auto* cmd : {set, unset, show}) AddWhere(cmd, f->level);
  return [f, set, unset, show] {
    if (*set) return RunSet(*f);
    if (*unset) return RunUnset(*f);
    if (*show) return RunShow(*f);
    return -1;
  };
}

}  // namespace flotilla::tracker
