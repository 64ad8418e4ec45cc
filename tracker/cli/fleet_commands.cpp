// The fleet commands (docs/fleet.md, "Commands"): `device tag|move`,
// `group create|list|show`, `app assign`, `pin`, `unpin`, `recall`,
// `fleet desired` on the tracker's database, and `fleet init|publish|rotate-root`, which
// sign what it asks of each device (docs/fleet.md, "Signed fleet metadata").
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/fleet_actions.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/publish/repo_init.h"
#include "tracker/service/config.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {
namespace {

// One set of values: only one subcommand runs per invocation.
struct FleetFlags {
  std::string config_file;
  std::string repository;
  std::string database_url;
  bool json = false;
  std::string device;
  std::string group;
  std::string app;
  std::string site;
  std::string selector;
  std::vector<std::string> add;
  std::vector<std::string> remove;
  uint64_t release = 0;
  std::string root_key;
  std::string offline_keys;
  std::string new_root_key;         // fleet rotate-root
  std::vector<std::string> rotate;  // fleet rotate-root: online roles
  std::string days;                 // group window
  std::string from;
  std::string to;
  std::string zone;
  bool clear = false;
};

// Bad input exits 2, anything else 1; the message goes to stderr.
int Fail(std::string_view command, const Status& status) {
  fmt::print(stderr, "{}: {}\n", command, status.message());
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

// The database the other commands use: --database-url, else the
// configuration's database_url or database, else the repository's tracker.db.
// A SQLite file must exist already (a typo must not create an empty one).
Result<std::string> DatabaseUrl(const FleetFlags& flags) {
  TrackerConfig config;
  if (!flags.config_file.empty()) {
    ASSIGN_OR_RETURN(config, LoadTrackerConfig(flags.config_file));
  }
  if (!flags.repository.empty()) config.repository = flags.repository;
  if (!flags.database_url.empty()) config.database_url = flags.database_url;
  if (flags.config_file.empty() && flags.database_url.empty() && !flags.repository.empty()) {
    // The repository's own tracker.json says where its database is.
    ASSIGN_OR_RETURN(config.database_url,
                     RepositoryDatabaseUrl(RepositoryLayout{flags.repository}));
  }
  if (config.repository.empty() && config.database.empty() && config.database_url.empty()) {
    return InvalidArgument("no database: give --repository DIR, --database-url URL or --config");
  }
  const std::string url =
      TrackerDatabaseUrl(config, RepositoryLayout{config.repository}.default_db_path());
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) return url;
  const std::string path = url.starts_with("sqlite:") ? url.substr(7) : url;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound("no tracker database at " + path + " (init or serve creates it)");
  }
  return url;
}

Result<std::unique_ptr<FleetStore>> OpenStore(const FleetFlags& flags) {
  ASSIGN_OR_RETURN(const std::string url, DatabaseUrl(flags));
  return FleetStore::Open(url, SystemClock::Instance());
}

// The rollouts' limit over `state` (the desired-release rule's rollout seam).
Result<std::unique_ptr<RolloutLimits>> LoadRolloutLimits(const FleetFlags& flags,
                                                         const FleetState& state) {
  ASSIGN_OR_RETURN(const std::string url, DatabaseUrl(flags));
  ASSIGN_OR_RETURN(auto rollouts, RolloutStore::Open(url, SystemClock::Instance()));
  return rollouts->Limits(state);
}

Result<FleetDevice> FindDevice(const FleetState& state, const std::string& name) {
  auto it = state.devices.find(name);
  if (it == state.devices.end()) return NotFound("no device named '" + name + "'");
  return it->second;
}

Result<FleetGroup> FindGroup(const FleetState& state, const std::string& name) {
  auto it = state.groups.find(name);
  if (it == state.groups.end()) {
    return NotFound("no group named '" + name + "' (group list shows them)");
  }
  return it->second;
}

std::string Joined(const auto& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
  return out.empty() ? "-" : out;
}

std::vector<std::string> MembersOf(const FleetState& state, const FleetGroup& group) {
  std::vector<std::string> names;
  for (const auto& [name, device] : state.devices) {
    if (group.selector.Matches(device)) names.push_back(name);
  }
  return names;
}

Json WindowsJson(const std::vector<MaintenanceWindow>& windows) {
  Json list = Json::array();
  for (const MaintenanceWindow& w : windows) list.push_back(WindowToJson(w));
  return list;
}

Json DeviceJson(const FleetDevice& device) {
  return Json{{"device", device.name}, {"site", device.site}, {"tags", device.tags}};
}

void PrintDevice(const FleetDevice& d, bool json) {
  if (json) {
    fmt::print("{}\n", DeviceJson(d).dump());
  } else {
    fmt::print("{}: site {}, tags {}\n", d.name, d.site.empty() ? "-" : d.site, Joined(d.tags));
  }
}

// Runs `change` on the store, then prints the device named `name` as stored.
int ChangeDevice(const FleetFlags& flags, std::string_view command,
                 const std::function<Status(FleetStore&)>& change) {
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail(command, store.status());
  if (Status st = change(**store); !st.ok()) return Fail(command, st);
  auto state = (*store)->Load();
  if (!state.ok()) return Fail(command, state.status());
  auto device = FindDevice(*state, flags.device);
  if (!device.ok()) return Fail(command, device.status());
  PrintDevice(*device, flags.json);
  return 0;
}

int RunDeviceTag(const FleetFlags& flags) {
  if (flags.add.empty() && flags.remove.empty()) {
    return Fail("device tag", InvalidArgument("give --add TAG and/or --remove TAG"));
  }
  return ChangeDevice(flags, "device tag", [&](FleetStore& store) {
    return store.SetTags(flags.device, flags.add, flags.remove);
  });
}

int RunDeviceMove(const FleetFlags& flags) {
  return ChangeDevice(flags, "device move", [&](FleetStore& store) {
    return store.MoveDevice(flags.device, flags.site);
  });
}

Json GroupJson(const FleetState& state, const FleetGroup& group) {
  return Json{{"group", group.name},
              {"selector", group.selector.ToString()},
              {"apps", group.apps},
              {"pins", group.pins},
              {"windows", WindowsJson(group.windows)},
              {"devices", MembersOf(state, group).size()}};
}

// The group's windows, one line each ("any time" when it has none).
std::string WindowsText(const std::vector<MaintenanceWindow>& windows) {
  if (windows.empty()) return "any time (no maintenance window)";
  std::string text;
  for (const MaintenanceWindow& w : windows) text += (text.empty() ? "" : "; ") + WindowText(w);
  return text;
}

int RunGroupWindow(const FleetFlags& flags) {
  const bool adding =
      !flags.days.empty() || !flags.from.empty() || !flags.to.empty() || !flags.zone.empty();
  if (flags.clear == adding) {
    return Fail("group window",
                InvalidArgument("give --days, --from, --to and --tz to add a window, or --clear"));
  }
  std::optional<MaintenanceWindow> window;
  if (adding) {
    if (flags.days.empty() || flags.from.empty() || flags.to.empty() || flags.zone.empty()) {
      return Fail("group window", InvalidArgument("a window needs all of --days, --from, --to "
                                                  "and --tz"));
    }
    auto made = MakeWindow(flags.days, flags.from, flags.to, flags.zone);
    if (!made.ok()) return Fail("group window", made.status());
    window = *made;
  }
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("group window", store.status());
  Status changed = window ? (*store)->AddWindow(flags.group, *window).status()
                          : (*store)->ClearWindows(flags.group);
  if (!changed.ok()) return Fail("group window", changed);
  auto state = (*store)->Load();
  if (!state.ok()) return Fail("group window", state.status());
  const FleetGroup& group = state->groups.at(flags.group);
  if (flags.json) {
    fmt::print("{}\n", Json{{"group", group.name}, {"windows", WindowsJson(group.windows)}}.dump());
  } else {
    fmt::print("group {}: switches {}\n", group.name, WindowsText(group.windows));
  }
  return 0;
}

int RunGroupCreate(const FleetFlags& flags) {
  auto selector = Selector::Parse(flags.selector);
  if (!selector.ok()) return Fail("group create", selector.status());
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("group create", store.status());
  if (Status st = (*store)->CreateGroup(flags.group, *selector); !st.ok()) {
    return Fail("group create", st);
  }
  auto state = (*store)->Load();
  if (!state.ok()) return Fail("group create", state.status());
  const FleetGroup& group = state->groups.at(flags.group);
  if (flags.json) {
    fmt::print("{}\n", GroupJson(*state, group).dump());
  } else {
    fmt::print("group {}: {} ({} devices)\n", group.name, group.selector.ToString(),
               MembersOf(*state, group).size());
  }
  return 0;
}

int RunGroupList(const FleetFlags& flags) {
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("group list", store.status());
  auto state = (*store)->Load();
  if (!state.ok()) return Fail("group list", state.status());
  Json list = Json::array();
  for (const auto& [name, group] : state->groups) list.push_back(GroupJson(*state, group));
  if (flags.json) {
    fmt::print("{}\n", list.dump());
    return 0;
  }
  if (list.empty()) fmt::print("no groups: group create NAME --select SELECTOR makes one\n");
  fmt::print("{:<24} {:>7}  {:<32} {}\n", "GROUP", "DEVICES", "SELECTOR", "APPS");
  for (const auto& [name, group] : state->groups) {
    fmt::print("{:<24} {:>7}  {:<32} {}\n", name, MembersOf(*state, group).size(),
               group.selector.ToString(), Joined(group.apps));
  }
  return 0;
}

int RunGroupShow(const FleetFlags& flags) {
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("group show", store.status());
  auto state = (*store)->Load();
  if (!state.ok()) return Fail("group show", state.status());
  auto group = FindGroup(*state, flags.group);
  if (!group.ok()) return Fail("group show", group.status());
  const std::vector<std::string> members = MembersOf(*state, *group);
  if (flags.json) {
    Json out = GroupJson(*state, *group);
    out["devices"] = Json::array();
    for (const std::string& name : members) {
      out["devices"].push_back(DeviceJson(state->devices.at(name)));
    }
    fmt::print("{}\n", out.dump());
    return 0;
  }
  fmt::print("group {}: {}\napps: {}\n", group->name, group->selector.ToString(),
             Joined(group->apps));
  for (const auto& [app, release] : group->pins) fmt::print("pin: {} release {}\n", app, release);
  fmt::print("switches: {}\n", WindowsText(group->windows));
  fmt::print("devices ({}):\n", members.size());
  for (const std::string& name : members) {
    const FleetDevice& d = state->devices.at(name);
    fmt::print("  {:<24} {:<16} {}\n", d.name, d.site.empty() ? "-" : d.site, Joined(d.tags));
  }
  return 0;
}

int RunAppAssign(const FleetFlags& flags) {
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("app assign", store.status());
  if (Status st = (*store)->AssignApp(flags.app, flags.group); !st.ok()) {
    return Fail("app assign", st);
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"app", flags.app}, {"group", flags.group}}.dump());
  } else {
    fmt::print("{} assigned to group {}\n", flags.app, flags.group);
  }
  return 0;
}

Result<PinTarget> PinTargetOf(const FleetFlags& flags) {
  if (flags.device.empty() == flags.group.empty()) {
    return InvalidArgument("give one of --device NAME or --group NAME");
  }
  if (!flags.device.empty()) return PinTarget{PinTarget::Kind::kDevice, flags.device};
  return PinTarget{PinTarget::Kind::kGroup, flags.group};
}

Json PinJson(const PinTarget& target, const std::string& app) {
  return Json{{target.kind == PinTarget::Kind::kDevice ? "device" : "group", target.name},
              {"app", app}};
}

Result<std::string> RepositoryDir(const FleetFlags& flags);

// The image repository's signed floors, when the command knows the
// repository (none when it was given only a database).
Result<ReleaseFloors> FloorsIfKnown(const FleetFlags& flags) {
  auto repository = RepositoryDir(flags);
  if (!repository.ok()) return ReleaseFloors{};
  return RepositoryFloors(*repository);
}

int RunPin(const FleetFlags& flags, bool pin) {
  const char* command = pin ? "pin" : "unpin";
  auto target = PinTargetOf(flags);
  if (!target.ok()) return Fail(command, target.status());
  ReleaseFloors floors;
  if (pin) {
    auto known = FloorsIfKnown(flags);
    if (!known.ok()) return Fail(command, known.status());
    floors = std::move(*known);
  }
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail(command, store.status());
  Status st = pin ? PinAboveFloor(**store, floors, *target, flags.app, flags.release)
                  : (*store)->Unpin(*target, flags.app);
  if (!st.ok()) return Fail(command, st);
  Json out = PinJson(*target, flags.app);
  if (pin) out["release"] = flags.release;
  if (flags.json) {
    fmt::print("{}\n", out.dump());
  } else if (pin) {
    fmt::print("pinned {} to {} release {}\n", target->name, flags.app, flags.release);
  } else {
    fmt::print("unpinned {} from {}\n", target->name, flags.app);
  }
  return 0;
}

int RunRecall(const FleetFlags& flags) {
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("recall", store.status());
  if (Status st = (*store)->Recall(flags.app, flags.release); !st.ok()) return Fail("recall", st);
  if (flags.json) {
    fmt::print("{}\n", Json{{"app", flags.app}, {"release", flags.release}}.dump());
  } else {
    fmt::print("recalled {} release {}\n", flags.app, flags.release);
  }
  return 0;
}

int RunFleetDesired(const FleetFlags& flags) {
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("fleet desired", store.status());
  auto state = (*store)->Load();
  if (!state.ok()) return Fail("fleet desired", state.status());
  auto device = FindDevice(*state, flags.device);
  if (!device.ok()) return Fail("fleet desired", device.status());
  auto limits = LoadRolloutLimits(flags, *state);
  if (!limits.ok()) return Fail("fleet desired", limits.status());
  auto floors = FloorsIfKnown(flags);
  if (!floors.ok()) return Fail("fleet desired", floors.status());
  const DesiredReleases desired(*state, limits->get(), &*floors);
  Json out = DeviceJson(*device);
  out["groups"] = desired.GroupsOf(*device);
  const std::vector<MaintenanceWindow> windows = desired.WindowsOf(*device);
  out["windows"] = WindowsJson(windows);
  out["apps"] = Json::array();
  for (const DesiredApp& app : desired.All(*device)) {
    out["apps"].push_back(Json{{"app", app.app},
                               {"release", app.release ? Json(*app.release) : Json(nullptr)},
                               {"reason", app.reason},
                               {"groups", app.groups}});
  }
  if (flags.json) {
    fmt::print("{}\n", out.dump());
    return 0;
  }
  fmt::print("device {} (site {}, tags {}), groups: {}\n", device->name,
             device->site.empty() ? "-" : device->site, Joined(device->tags),
             Joined(desired.GroupsOf(*device)));
  fmt::print("switches: {}\n", WindowsText(windows));
  if (out["apps"].empty())
    fmt::print("no app assigned to its groups: it runs nothing from the fleet\n");
  for (const Json& app : out["apps"]) {
    const std::string release =
        app["release"].is_null() ? "none" : "release " + app["release"].dump();
    fmt::print("{:<16} {:<12} {}\n", app["app"].get<std::string>(), release,
               app["reason"].get<std::string>());
  }
  return 0;
}

// The tracker repository: --repository, else the configuration's.
Result<std::string> RepositoryDir(const FleetFlags& flags) {
  if (!flags.repository.empty()) return flags.repository;
  if (!flags.config_file.empty()) {
    ASSIGN_OR_RETURN(TrackerConfig config, LoadTrackerConfig(flags.config_file));
    if (!config.repository.empty()) return config.repository;
  }
  return InvalidArgument("no repository: give --repository DIR or --config FILE");
}

int RunFleetInit(const FleetFlags& flags) {
  if (flags.root_key.empty() == flags.offline_keys.empty()) {
    return Fail("fleet init", InvalidArgument("give one of --root-key FILE, --offline-keys DIR"));
  }
  auto repository = RepositoryDir(flags);
  if (!repository.ok()) return Fail("fleet init", repository.status());
  auto outcome =
      InitFleet({*repository, flags.root_key, flags.offline_keys}, SystemClock::Instance());
  if (!outcome.ok()) return Fail("fleet init", outcome.status());
  if (flags.json) {
    fmt::print("{}\n", Json{{"root_version", outcome->root_version},
                            {"pending", outcome->pending_file},
                            {"targets_version", outcome->targets_version}}
                           .dump());
  } else if (!outcome->pending_file.empty()) {
    fmt::print(
        "fleet root version {} made; the image repository's targets key is offline:\n"
        "sign {} with it, then accept it to offer the fleet root to devices\n",
        outcome->root_version, outcome->pending_file);
  } else {
    fmt::print("fleet root version {} made and offered as {} (targets version {})\n",
               outcome->root_version, kFleetRootTarget, outcome->targets_version);
  }
  return 0;
}

int RunFleetRotateRoot(const FleetFlags& flags) {
  constexpr std::string_view kName = "fleet rotate-root";
  auto repository = RepositoryDir(flags);
  if (!repository.ok()) return Fail(kName, repository.status());
  FleetRotateOptions options{*repository, flags.root_key, flags.new_root_key, {}};
  for (const std::string& name : flags.rotate) {
    bool known = false;
    for (metadata::RoleType role : {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                                    metadata::RoleType::kTimestamp}) {
      if (name != metadata::RoleName(role)) continue;
      known = true;
      if (std::find(options.rotate.begin(), options.rotate.end(), role) == options.rotate.end()) {
        options.rotate.push_back(role);
      }
    }
    if (!known) {
      return Fail(kName, InvalidArgument("--rotate " + name +
                                         ": expected targets, snapshot or timestamp "
                                         "(the root key: --new-root-key)"));
    }
  }
  auto outcome = RotateFleetRoot(options, SystemClock::Instance());
  if (!outcome.ok()) return Fail(kName, outcome.status());
  if (flags.json) {
    fmt::print("{}\n", Json{{"root_version", outcome->root_version},
                            {"pending", outcome->pending_file},
                            {"targets_version", outcome->targets_version},
                            {"devices", outcome->devices}}
                           .dump());
    return 0;
  }
  fmt::print("fleet root version {} made; {} device repositories moved to it\n",
             outcome->root_version, outcome->devices);
  if (!outcome->pending_file.empty()) {
    fmt::print(
        "the image repository's targets key is offline: sign {} with it, then accept it\n"
        "to offer the new root to devices that trust no fleet root yet\n",
        outcome->pending_file);
  } else if (outcome->targets_version != 0) {
    fmt::print("offered as {} (targets version {})\n", kFleetRootTarget, outcome->targets_version);
  }
  return 0;
}

int RunFleetPublish(const FleetFlags& flags) {
  auto repository = RepositoryDir(flags);
  if (!repository.ok()) return Fail("fleet publish", repository.status());
  auto store = OpenStore(flags);
  if (!store.ok()) return Fail("fleet publish", store.status());
  auto state = (*store)->Load();
  if (!state.ok()) return Fail("fleet publish", state.status());
  std::optional<std::string> device;
  if (!flags.device.empty()) device = flags.device;
  auto limits = LoadRolloutLimits(flags, *state);
  if (!limits.ok()) return Fail("fleet publish", limits.status());
  auto outcome = PublishFleet(*repository, *state, device, SystemClock::Instance(), limits->get());
  if (!outcome.ok()) return Fail("fleet publish", outcome.status());
  if (flags.json) {
    Json failed = Json::array();
    for (const auto& f : outcome->failed) {
      failed.push_back({{"device", f.device}, {"error", f.status.ToString()}});
    }
    fmt::print("{}\n", Json{{"devices", outcome->devices},
                            {"resigned", outcome->resigned},
                            {"failed", std::move(failed)}}
                           .dump());
  } else {
    fmt::print("{} device(s), {} re-signed, {} unchanged\n", outcome->devices, outcome->resigned,
               outcome->devices - outcome->resigned);
  }
  if (outcome->failed.empty()) return 0;
  constexpr size_t kNamed = 20;
  for (size_t i = 0; i < outcome->failed.size() && i < kNamed; ++i) {
    fmt::print(stderr, "fleet publish: device {}: {}\n", outcome->failed[i].device,
               outcome->failed[i].status.ToString());
  }
  if (outcome->failed.size() > kNamed) {
    fmt::print(stderr, "fleet publish: ... and {} more\n", outcome->failed.size() - kNamed);
  }
  fmt::print(stderr,
             "fleet publish: {} device(s) not published (the others were); their devices keep "
             "their last signed document\n",
             outcome->failed.size());
  return 1;
}

}  // namespace

Result<std::string> FleetDatabaseUrl(const DatabaseFlags& flags) {
  FleetFlags f;
  f.config_file = flags.config_file;
  f.repository = flags.repository;
  f.database_url = flags.database_url;
  return DatabaseUrl(f);
}

Result<std::string> FleetRepositoryDir(const DatabaseFlags& flags) {
  FleetFlags f;
  f.config_file = flags.config_file;
  f.repository = flags.repository;
  return RepositoryDir(f);
}

int FailCommand(std::string_view command, const Status& status) { return Fail(command, status); }

namespace {

// --repository, --database-url, --config and --json on `cmd`.
void AddCommonFlags(CLI::App* cmd, FleetFlags& flags) {
  cmd->add_option("--repository", flags.repository,
                  "Tracker repository directory (its tracker.db is the database)");
  cmd->add_option("--database-url", flags.database_url,
                  "sqlite:PATH or postgresql://... (as serve's database_url)");
  cmd->add_option("--config", flags.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", flags.json, "Print one JSON document instead of text");
}

void AddReleaseOption(CLI::App* cmd, FleetFlags& flags, const std::string& help) {
  cmd->add_option("--release", flags.release, help)
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{std::numeric_limits<int64_t>::max()}));
}

using Runs = std::vector<std::pair<CLI::App*, std::function<int()>>>;

// A subcommand whose one-line `summary` shows in its parent's list and whose
// `details` (what it does, an example) end its own --help.
void RegisterDeviceCommands(CLI::App& app, FleetFlags& f, Runs& runs) {
  auto* device =
      app.add_subcommand("device", "Change an enrolled device's fleet attributes (docs/fleet.md)");
  device->require_subcommand(1);
  auto* tag =
      AddDatabaseCommand(device, "tag", "Add or remove a device's tags",
                         "Tags are labels (1-64 of [A-Za-z0-9._-]); groups select devices by tag.\n"
                         "  flotilla-tracker device tag screen-7 --add window --remove lobby "
                         "--repository R");
  tag->add_option("name", f.device, "Device name")->required();
  tag->add_option("--add", f.add, "Tag to add (repeat for several)");
  tag->add_option("--remove", f.remove, "Tag to remove (repeat for several)");
  auto* move =
      AddDatabaseCommand(device, "move", "Move a device to another site",
                         "Groups select devices by site: the device leaves and joins groups.\n"
                         "  flotilla-tracker device move screen-7 --site shop-12 --repository R");
  move->add_option("name", f.device, "Device name")->required();
  move->add_option("--site", f.site, "New site (a label)")->required();
  for (auto* cmd : {tag, move}) AddCommonFlags(cmd, f);
  runs.emplace_back(tag, [&f] { return RunDeviceTag(f); });
  runs.emplace_back(move, [&f] { return RunDeviceMove(f); });
}

void RegisterGroupCommands(CLI::App& app, FleetFlags& f, Runs& runs) {
  auto* group = app.add_subcommand(
      "group", "Groups of devices: a name and a selector (docs/fleet.md, \"Selectors\")");
  group->require_subcommand(1);
  auto* create = AddDatabaseCommand(
      group, "create", "Create a group of the devices a selector matches",
      "SELECTOR is terms joined by ',' that must all hold: site=LABEL, tag=LABEL\n"
      "(repeatable), name=LABEL, or all alone. The group's devices are those the\n"
      "selector matches at any time: a device moved or tagged joins or leaves it.\n"
      "  flotilla-tracker group create shop12-windows --select 'site=shop-12,tag=window' "
      "--repository R");
  create->add_option("name", f.group, "Group name (a label)")->required();
  create->add_option("--select", f.selector, "Selector, e.g. site=shop-12,tag=window")->required();
  auto* list = AddDatabaseCommand(group, "list", "List groups: selector, device count, apps",
                                  "  flotilla-tracker group list --repository R --json");
  auto* show =
      AddDatabaseCommand(group, "show", "Show a group: selector, apps, pins and its devices",
                         "  flotilla-tracker group show shop12-windows --repository R");
  show->add_option("name", f.group, "Group name")->required();
  auto* window = AddDatabaseCommand(
      group, "window", "Add a maintenance window to a group, or clear its windows",
      "A device in at least one group with windows switches an app to a new release\n"
      "only inside a window of one of those groups (fetching goes on at any time);\n"
      "groups without windows do not widen that. Times are the zone's wall clock; a\n"
      "window whose --to is not after --from ends the next day. Run it again to add\n"
      "another window. Devices see the change at the next fleet publish.\n"
      "  flotilla-tracker group window shops --days mon-fri --from 22:00 --to 06:00 \\\n"
      "      --tz Europe/Berlin --repository R\n"
      "  flotilla-tracker group window shops --clear --repository R");
  window->add_option("name", f.group, "Group name")->required();
  auto* days = window->add_option(
      "--days", f.days, "Days the window starts on: mon-fri, sat,sun, mon-wed,fri, daily");
  window->add_option("--from", f.from, "Local start time, HH:MM (24-hour)");
  window->add_option("--to", f.to,
                     "Local end time, HH:MM, up to 24:00 (at or before --from: "
                     "the next day)");
  window->add_option("--tz", f.zone, "IANA time zone, e.g. Europe/Berlin (/usr/share/zoneinfo)");
  window
      ->add_flag("--clear", f.clear,
                 "Remove every window: the group no longer restricts "
                 "switches")
      ->excludes(days);
  for (auto* cmd : {create, list, show, window}) AddCommonFlags(cmd, f);
  runs.emplace_back(create, [&f] { return RunGroupCreate(f); });
  runs.emplace_back(list, [&f] { return RunGroupList(f); });
  runs.emplace_back(show, [&f] { return RunGroupShow(f); });
  runs.emplace_back(window, [&f] { return RunGroupWindow(f); });
}

void RegisterPinCommands(CLI::App& app, FleetFlags& f, Runs& runs) {
  auto* pin = AddDatabaseCommand(
      &app, "pin", "Hold a device or a group's devices on a release of an app",
      "A pinned device neither upgrades nor downgrades the app until unpinned; a\n"
      "device pin beats a group pin. The release must be published and not recalled.\n"
      "  flotilla-tracker pin --group shop12-windows --app kiosk --release 7 --repository R");
  auto* unpin = AddDatabaseCommand(
      &app, "unpin", "Remove a pin (docs/fleet.md)",
      "The device or group's devices follow the newest release not recalled again.\n"
      "  flotilla-tracker unpin --device screen-7 --app kiosk --repository R");
  for (auto* cmd : {pin, unpin}) {
    auto* device = cmd->add_option("--device", f.device, "Device name");
    cmd->add_option("--group", f.group, "Group name")->excludes(device);
    cmd->add_option("--app", f.app, "App name")->required();
    AddCommonFlags(cmd, f);
  }
  AddReleaseOption(pin, f, "Release version (published, not recalled)");
  auto* recall =
      AddDatabaseCommand(&app, "recall", "Recall a published release of an app",
                         "No device is sent a recalled release; devices on it are sent the newest\n"
                         "release that is not recalled. A pin set before the recall holds.\n"
                         "  flotilla-tracker recall --app kiosk --release 8 --repository R");
  recall->add_option("--app", f.app, "App name")->required();
  AddReleaseOption(recall, f, "Release version");
  AddCommonFlags(recall, f);
  runs.emplace_back(pin, [&f] { return RunPin(f, true); });
  runs.emplace_back(unpin, [&f] { return RunPin(f, false); });
  runs.emplace_back(recall, [&f] { return RunRecall(f); });
}

void RegisterFleetRepositoryCommands(CLI::App* fleet, FleetFlags& f, Runs& runs) {
  auto* init = AddDatabaseCommand(
      fleet, "init", "Make the fleet root and online fleet keys; offer the root to devices",
      "The fleet root is signed by an offline key: --root-key FILE (an existing Ed25519\n"
      "key, e.g. from keygen) or --offline-keys DIR (fleet-root.key is made there, to be\n"
      "moved offline). The online keys go to the repository's keys/ (fleet-*.key). The\n"
      "root is offered to devices as the image repository's target fleet/root.json:\n"
      "added at once, or staged in pending/ when the targets key is offline (sign it,\n"
      "then accept it, as for stage-app).\n"
      "  flotilla-tracker fleet init --offline-keys /media/usb/keys --repository R");
  init->add_option("--root-key", f.root_key, "Existing fleet root key file")
      ->check(CLI::ExistingFile);
  init->add_option("--offline-keys", f.offline_keys, "Directory to make fleet-root.key in");
  auto* publish = AddDatabaseCommand(
      fleet, "publish", "Sign each device's fleet document (what it should run)",
      "Computes every device's apps and releases (as fleet desired shows them) and\n"
      "re-signs the fleet repository of each device whose document changed.\n"
      "  flotilla-tracker fleet publish --repository R\n"
      "  flotilla-tracker fleet publish --device screen-7 --repository R --json");
  publish->add_option("--device", f.device, "Only this device (name)");
  auto* rotate = AddDatabaseCommand(
      fleet, "rotate-root", "Make the next fleet root: a new root key and/or new online fleet keys",
      "The new root is signed by the current fleet root key (--root-key) and by the new\n"
      "one (--new-root-key, an Ed25519 key from keygen; without it the root key stays).\n"
      "--rotate makes new online keys in keys/ (the old ones sign nothing more). Every\n"
      "device repository gets the new root and new targets, snapshot and timestamp\n"
      "versions; nodes walk to it from the root they trust. The root is offered as the\n"
      "image repository's fleet/root.json (staged in pending/ when its targets key is\n"
      "offline: sign, then accept). Cut short, run fleet publish to finish.\n"
      "  flotilla-tracker fleet rotate-root --root-key /media/usb/keys/fleet-root.key \\\n"
      "      --new-root-key /media/usb/keys/fleet-root-2.key --rotate targets,snapshot,timestamp "
      "\\\n"
      "      --repository R");
  rotate->add_option("--root-key", f.root_key, "The current fleet root key file")
      ->check(CLI::ExistingFile)
      ->required();
  rotate->add_option("--new-root-key", f.new_root_key, "The new fleet root key file")
      ->check(CLI::ExistingFile);
  rotate
      ->add_option("--rotate", f.rotate,
                   "Online roles given new keys: targets, snapshot, timestamp (comma-separated)")
      ->delimiter(',');
  for (auto* cmd : {init, publish, rotate}) AddCommonFlags(cmd, f);
  runs.emplace_back(init, [&f] { return RunFleetInit(f); });
  runs.emplace_back(publish, [&f] { return RunFleetPublish(f); });
  runs.emplace_back(rotate, [&f] { return RunFleetRotateRoot(f); });
}

void RegisterAssignAndDesired(CLI::App& app, FleetFlags& f, Runs& runs) {
  auto* apps = app.add_subcommand("app", "Which apps groups run (docs/fleet.md)");
  apps->require_subcommand(1);
  auto* assign = AddDatabaseCommand(
      apps, "assign", "Assign an app to a group",
      "Every device the group selects runs the app; a device in no group runs\n"
      "nothing from the fleet.\n"
      "  flotilla-tracker app assign kiosk --group shop12-windows --repository R");
  assign->add_option("app", f.app, "App name")->required();
  assign->add_option("--group", f.group, "Group name")->required();
  auto* fleet = app.add_subcommand("fleet", "What the fleet model asks of devices (docs/fleet.md)");
  fleet->require_subcommand(1);
  auto* desired = AddDatabaseCommand(
      fleet, "desired", "What a device would run and why",
      "Its groups, their apps, and per app the release: a device pin, else a group\n"
      "pin, else the newest published release that is not recalled (and that the\n"
      "app's rollout has let the device reach).\n"
      "  flotilla-tracker fleet desired --device screen-7 --repository R --json");
  desired->add_option("--device", f.device, "Device name")->required();
  for (auto* cmd : {assign, desired}) AddCommonFlags(cmd, f);
  runs.emplace_back(assign, [&f] { return RunAppAssign(f); });
  runs.emplace_back(desired, [&f] { return RunFleetDesired(f); });
  RegisterFleetRepositoryCommands(fleet, f, runs);
}

}  // namespace

CommandAction RegisterFleetCommands(CLI::App& app) {
  auto flags = std::make_shared<FleetFlags>();
  auto runs = std::make_shared<Runs>();
  RegisterDeviceCommands(app, *flags, *runs);
  RegisterGroupCommands(app, *flags, *runs);
  RegisterAssignAndDesired(app, *flags, *runs);
  RegisterPinCommands(app, *flags, *runs);
  return [flags, runs] {
    for (const auto& [cmd, run] : *runs) {
      if (*cmd) return run();
    }
    return -1;
  };
}

}  // namespace flotilla::tracker
