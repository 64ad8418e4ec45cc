// `flotilla-tracker floor` (docs/signing.md, "The release floor"): raises the
// lowest release of an app the fleet may send a device, signed by the keys
// that sign the app's releases: staged for the app key (or the offline
// targets key) like publish stages a release, or signed at once when the
// top-level targets key is online; `floor --show` prints the floors.
#include <fmt/core.h>

#include <filesystem>
#include <limits>

#include "core/clock.h"
#include "core/file_io.h"
#include "metadata/release_floor.h"
#include "metadata/repository.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/publish/offline.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {
namespace {

struct FloorFlags {
  DatabaseFlags where;
  std::string app;
  uint64_t release = 0;
  bool show = false;
  bool json = false;
  uint32_t role_expiry_days = 365;
};

struct FloorOutcome {
  std::string role;
  std::string pending;           // staged: the file to sign and accept
  uint64_t targets_version = 0;  // signed at once: the top-level targets version
};

Result<FloorOutcome> RaiseFloor(const std::string& repository, const metadata::ReleaseFloor& floor,
                                Duration expiry, const Clock& clock) {
  const RepositoryLayout repo{repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, notes));
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repo.root, clock));
  FloorOutcome outcome;
  outcome.role = metadata::FloorRoleOf(*meta, floor.app);
  const bool top = outcome.role == metadata::RoleName(metadata::RoleType::kTargets);
  std::error_code ec;
  if (!top || !std::filesystem::exists(RoleKeyPath(repo, metadata::RoleType::kTargets), ec)) {
    ASSIGN_OR_RETURN(metadata::SignedDocument staged, metadata::StageFloor(*meta, floor, expiry));
    ASSIGN_OR_RETURN(outcome.pending, WritePending(repo, outcome.role, staged));
    return outcome;
  }
  ASSIGN_OR_RETURN(metadata::KeyRing keys,
                   LoadRoleKeys(repo, meta->root(),
                                {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                                 metadata::RoleType::kTimestamp}));
  RETURN_IF_ERROR(WriteRecorded(repo, clock, {}, [&](metadata::Repository& recorded) -> Status {
    RETURN_IF_ERROR(metadata::PublishFloor(recorded, floor, keys));
    outcome.targets_version = recorded.targets().common.version;
    return Status::Ok();
  }));
  return outcome;
}

int RunShow(const FloorFlags& flags, const std::string& repository) {
  auto floors = RepositoryFloors(repository);
  if (!floors.ok()) return FailCommand("floor", floors.status());
  if (!flags.app.empty()) {
    const uint64_t floor = floors->contains(flags.app) ? floors->at(flags.app) : 0;
    if (flags.json) {
      fmt::print("{}\n", Json{{"app", flags.app}, {"floor", floor}}.dump());
    } else if (floor == 0) {
      fmt::print("{}: no floor (any release the image repository signs may be sent)\n", flags.app);
    } else {
      fmt::print("{}: floor {} (no device is sent a release below it)\n", flags.app, floor);
    }
    return 0;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"floors", *floors}}.dump());
    return 0;
  }
  if (floors->empty()) fmt::print("no app has a floor\n");
  for (const auto& [app, floor] : *floors) fmt::print("{:<24} floor {}\n", app, floor);
  return 0;
}

int RunFloor(const FloorFlags& flags) {
  auto repository = FleetRepositoryDir(flags.where);
  if (!repository.ok()) return FailCommand("floor", repository.status());
  if (flags.show) return RunShow(flags, *repository);
  if (flags.app.empty() || flags.release == 0) {
    return FailCommand("floor", InvalidArgument("give --app APP --release N, or --show"));
  }
  const Duration expiry = std::chrono::hours(24) * flags.role_expiry_days;
  auto outcome =
      RaiseFloor(*repository, {flags.app, flags.release}, expiry, SystemClock::Instance());
  if (!outcome.ok()) return FailCommand("floor", outcome.status());
  if (flags.json) {
    Json out = {{"app", flags.app}, {"floor", flags.release}, {"role", outcome->role}};
    if (outcome->pending.empty()) {
      out["targets_version"] = outcome->targets_version;
    } else {
      out["pending"] = outcome->pending;
    }
    fmt::print("{}\n", out.dump());
  } else if (outcome->pending.empty()) {
    fmt::print(
        "floor of {} raised to {} (targets version {}); run fleet publish so devices below it "
        "move up\n",
        flags.app, flags.release, outcome->targets_version);
  } else {
    fmt::print(
        "floor of {} {} staged for the {} key as {}\n"
        "sign it where that key lives:  flotilla-tracker sign '{}' --key KEY\n"
        "then accept it here:           flotilla-tracker accept --repository {} '{}'\n"
        "and run fleet publish so devices below it move up\n",
        flags.app, flags.release, outcome->role, outcome->pending, outcome->pending, *repository,
        outcome->pending);
  }
  return 0;
}

}  // namespace

Result<ReleaseFloors> RepositoryFloors(const std::string& repository) {
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repository, SystemClock::Instance()));
  return metadata::SignedFloors(*meta);
}

CommandAction RegisterFloorCommands(CLI::App& app) {
  auto flags = std::make_shared<FloorFlags>();
  auto* floor = app.add_subcommand(
      "floor", "Raise the lowest release of an app devices may be sent (offline-signed)");
  floor->footer(
      "\nThe floor is signed by the keys that sign the app's releases: its app key (the\n"
      "apps/APP role) or, for an app without one, the top-level targets key. When that\n"
      "key is offline the next version of its role is staged in pending/, to sign and\n"
      "accept as for publish; when the targets key is in keys/ it is signed at once. A\n"
      "floor only goes up, and must be a published release. Devices refuse a fleet\n"
      "document naming a release below it; fleet publish then sends pinned devices below\n"
      "it the lowest release at or above it (docs/fleet.md).\n"
      "  flotilla-tracker floor --app kiosk --release 7 --repository R\n"
      "  flotilla-tracker floor --show --repository R --json\n"
      "Repository: --repository DIR or --config FILE.");
  floor->add_option("--app", flags->app, "App name");
  auto* release =
      floor->add_option("--release", flags->release, "The new floor (a release)")
          ->check(CLI::Range(uint64_t{1}, uint64_t{std::numeric_limits<int64_t>::max()}));
  floor->add_flag("--show", flags->show, "Print the floors (of --app, or of every app)")
      ->excludes(release);
  floor
      ->add_option("--role-expiry-days", flags->role_expiry_days,
                   "Expiry of a staged role version, in days")
      ->check(CLI::Range(1, 3650));
  floor->add_option("--repository", flags->where.repository, "Tracker repository directory");
  floor->add_option("--config", flags->where.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  floor->add_flag("--json", flags->json, "Print one JSON document instead of text");
  return [flags, floor] { return *floor ? RunFloor(*flags) : -1; };
}

}  // namespace flotilla::tracker
