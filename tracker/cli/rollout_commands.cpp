// `flotilla-tracker rollout start|status|pause|resume|abort` (docs/fleet.md,
// "Rollouts"): staged releases on the tracker's database; `serve` advances
// and halts them (tracker/fleet/rollout_duty.h).
#include <fmt/core.h>

#include <ctime>
#include <memory>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/fleet_actions.h"
#include "tracker/fleet/fleet_view.h"
#include "tracker/fleet/rollout_duty.h"

namespace flotilla::tracker {
namespace {

struct RolloutFlags {
  DatabaseFlags database;
  bool json = false;
  std::string app;
  uint64_t release = 0;
  std::string waves;
  std::string group;
  std::string soak = "30m";
  std::string max_failures = "5%";
  std::string wave_timeout = "1h";
  int64_t id = 0;
  bool evaluate = false;
  bool members = false;
};

struct Stores {
  std::unique_ptr<FleetStore> fleet;
  std::unique_ptr<RolloutStore> rollouts;
  std::string repository;  // "" when the flags name none: nothing is signed
};

Result<Stores> OpenStores(const RolloutFlags& flags) {
  ASSIGN_OR_RETURN(const std::string url, FleetDatabaseUrl(flags.database));
  Stores stores;
  ASSIGN_OR_RETURN(stores.fleet, FleetStore::Open(url, SystemClock::Instance()));
  ASSIGN_OR_RETURN(stores.rollouts, RolloutStore::Open(url, SystemClock::Instance()));
  auto repository = FleetRepositoryDir(flags.database);
  if (repository.ok()) stores.repository = *repository;
  return stores;
}

// The form /api/v1/fleet gives each rollout too (tracker/api/fleet.h).
Json ViewJson(const RolloutView& view) { return RolloutViewJson(view); }

void PrintView(const RolloutView& view) {
  const Rollout& r = view.rollout;
  fmt::print("rollout {}: {} release {} over {}: {}, wave {} of {} (started {})\n", r.id, r.app,
             r.release, r.group.empty() ? "the fleet" : "group " + r.group,
             RolloutStateName(r.state), r.current_wave + 1, r.waves.size(),
             UtcText(r.wave_started_at));
  fmt::print("  soak {} s, max failures {} of a wave, wave timeout {} s\n", r.soak_s,
             ShareText(r.max_failures), r.wave_timeout_s);
  if (!r.reason.empty()) fmt::print("  {}: {}\n", RolloutStateName(r.state), r.reason);
  fmt::print("  {:<5} {:>6} {:>6} {:>8} {:>8} {:>7} {:>8} {:>7}  {}\n", "wave", "share", "size",
             "healthy", "soaking", "failed", "pending", "silent", "");
  for (size_t w = 0; w < view.waves.size(); ++w) {
    const WaveCounts& c = view.waves[w];
    fmt::print("  {:<5} {:>6} {:>6} {:>8} {:>8} {:>7} {:>8} {:>7}  {}\n", w + 1,
               ShareText(r.waves[w]), c.size, c.healthy, c.soaking, c.failed, c.pending, c.silent,
               c.started ? "started" : "waiting");
  }
  for (const RolloutMember& m : view.members) {
    if (!m.failure.empty())
      fmt::print("  failed: {} (wave {}): {}\n", m.name, m.wave + 1, m.failure);
  }
}

// Re-signs the fleet documents of the rollout's devices (their limit
// changed); says so unless --json.
Status Resign(Stores& stores, const RolloutView& view, bool json) {
  std::set<std::string> ids;
  for (const RolloutMember& m : view.members) ids.insert(m.device_id);
  ASSIGN_OR_RETURN(auto outcome, ResignDevices(stores.repository, *stores.fleet, *stores.rollouts,
                                               ids, SystemClock::Instance()));
  if (json) return Status::Ok();
  if (outcome) {
    fmt::print("fleet documents: {} device(s), {} re-signed\n", outcome->devices,
               outcome->resigned);
  } else {
    fmt::print("fleet documents not signed: {} (then run fleet publish)\n",
               stores.repository.empty() ? "no --repository given"
                                         : "the fleet repository is not initialized (fleet init)");
  }
  return Status::Ok();
}

// Each member: its wave, when its wave started, since when it ran the
// release healthy, what failed, its latest report (times UTC; null: never).
Json MembersJson(const RolloutView& view) {
  auto time = [](int64_t t) { return t == 0 ? Json(nullptr) : Json(UtcText(t)); };
  Json members = Json::array();
  for (const RolloutMember& m : view.members) {
    members.push_back({{"device", m.name},
                       {"wave", m.wave + 1},
                       {"sent_at", time(m.sent_at)},
                       {"healthy_since", time(m.healthy_since)},
                       {"failure", m.failure},
                       {"last_report_at", time(m.last_report_at)}});
  }
  return members;
}

void PrintMembers(const RolloutView& view) {
  fmt::print("  {:<24} {:>4}  {:<20} {:<20} {}\n", "device", "wave", "sent", "healthy since",
             "failure");
  auto time = [](int64_t t) { return t == 0 ? std::string("-") : UtcText(t); };
  for (const RolloutMember& m : view.members) {
    fmt::print("  {:<24} {:>4}  {:<20} {:<20} {}\n", m.name, m.wave + 1, time(m.sent_at),
               time(m.healthy_since), m.failure.empty() ? "-" : m.failure);
  }
}

int ShowWithMembers(const RolloutView& view, bool json) {
  if (json) {
    Json out = ViewJson(view);
    out["members"] = MembersJson(view);
    fmt::print("{}\n", out.dump());
  } else {
    PrintView(view);
    PrintMembers(view);
  }
  return 0;
}

int Show(const RolloutView& view, bool json) {
  if (json) {
    fmt::print("{}\n", ViewJson(view).dump());
  } else {
    PrintView(view);
  }
  return 0;
}

int RunStart(const RolloutFlags& flags) {
  const char* cmd = "rollout start";
  auto spec = MakeRolloutSpec({.app = flags.app,
                               .release = flags.release,
                               .group = flags.group,
                               .waves = flags.waves,
                               .soak = flags.soak,
                               .max_failures = flags.max_failures,
                               .wave_timeout = flags.wave_timeout},
                              "--");
  if (!spec.ok()) return FailCommand(cmd, spec.status());
  auto stores = OpenStores(flags);
  if (!stores.ok()) return FailCommand(cmd, stores.status());
  auto state = stores->fleet->Load();
  if (!state.ok()) return FailCommand(cmd, state.status());
  auto view = stores->rollouts->Start(*spec, *state);
  if (!view.ok()) return FailCommand(cmd, view.status());
  Show(*view, flags.json);
  if (Status st = Resign(*stores, *view, flags.json); !st.ok()) return FailCommand(cmd, st);
  return 0;
}

int RunStatus(const RolloutFlags& flags) {
  const char* cmd = "rollout status";
  auto stores = OpenStores(flags);
  if (!stores.ok()) return FailCommand(cmd, stores.status());
  if (flags.evaluate) {
    auto round = RunRolloutRound(stores->repository, *stores->fleet, *stores->rollouts,
                                 SystemClock::Instance());
    if (!round.ok()) return FailCommand(cmd, round.status());
  }
  std::optional<int64_t> id;
  if (flags.id != 0) id = flags.id;
  auto views = stores->rollouts->List(id);
  if (!views.ok()) return FailCommand(cmd, views.status());
  if (id)
    return flags.members ? ShowWithMembers(views->front(), flags.json)
                         : Show(views->front(), flags.json);
  if (flags.members) {
    return FailCommand(cmd, InvalidArgument("--members needs a rollout id"));
  }
  if (flags.json) {
    Json all = Json::array();
    for (const RolloutView& v : *views) all.push_back(ViewJson(v));
    fmt::print("{}\n", Json{{"rollouts", all}}.dump());
    return 0;
  }
  if (views->empty()) fmt::print("no rollouts\n");
  for (const RolloutView& v : *views) PrintView(v);
  return 0;
}

int RunChange(const RolloutFlags& flags, const std::string& verb) {
  const std::string cmd = "rollout " + verb;
  auto stores = OpenStores(flags);
  if (!stores.ok()) return FailCommand(cmd, stores.status());
  Result<RolloutView> view = verb == "pause"    ? stores->rollouts->Pause(flags.id)
                             : verb == "resume" ? stores->rollouts->Resume(flags.id)
                                                : stores->rollouts->Abort(flags.id);
  if (!view.ok()) return FailCommand(cmd, view.status());
  Show(*view, flags.json);
  if (verb == "abort") {
    if (Status st = Resign(*stores, *view, flags.json); !st.ok()) return FailCommand(cmd, st);
  }
  return 0;
}

void AddCommonFlags(CLI::App* cmd, RolloutFlags& f) {
  cmd->add_option(
      "--repository", f.database.repository,
      "Tracker repository directory (its tracker.db; its fleet documents are re-signed)");
  cmd->add_option("--database-url", f.database.database_url,
                  "sqlite:PATH or postgresql://... (as serve's database_url)");
  cmd->add_option("--config", f.database.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", f.json, "Print one JSON document instead of text");
}

}  // namespace

CommandAction RegisterRolloutCommands(CLI::App& app) {
  auto f = std::make_shared<RolloutFlags>();
  auto* rollout = app.add_subcommand(
      "rollout", "Stage a release across the fleet in waves that halt themselves (docs/fleet.md)");
  rollout->require_subcommand(1);
  auto* start = AddDatabaseCommand(
      rollout, "start", "Start a rollout of one release of an app",
      "The devices that run the app (in --group, else the whole fleet) are split into waves:\n"
      "--waves gives each wave's cumulative share (the last 100%); wave sizes are exact\n"
      "(ceil of the share) and every site gives each wave its share of its devices. The\n"
      "first wave gets the release at once; later waves keep the previous release. `serve`\n"
      "starts the next wave when at least (100% - max failures) of the current wave's\n"
      "devices ran the release healthy for --soak, and halts the rollout when more than\n"
      "--max-failures of a wave failed (verification, rollback, health). Devices silent\n"
      "past --wave-timeout are pending, left out of the count. One rollout per app at a time.\n"
      "  flotilla-tracker rollout start --app kiosk --release 8 --waves 10%,50%,100% \\\n"
      "      --group shop-screens --soak 30m --max-failures 5% --wave-timeout 1h --repository R");
  start->add_option("--app", f->app, "App name")->required();
  start->add_option("--release", f->release, "Release (published, not recalled)")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{INT64_MAX}));
  start->add_option("--waves", f->waves, "Cumulative shares, e.g. 10%,50%,100%")->required();
  start->add_option("--group", f->group, "Only the devices of this group (default: the fleet)");
  start->add_option("--soak", f->soak, "How long a device runs healthy to count (30m, 90s, 0)")
      ->capture_default_str();
  start->add_option("--max-failures", f->max_failures, "Share of a wave that may fail (5%)")
      ->capture_default_str();
  start
      ->add_option("--wave-timeout", f->wave_timeout,
                   "After it, devices silent since their wave started are left out (1h)")
      ->capture_default_str();
  auto* status = AddDatabaseCommand(
      rollout, "status", "Show rollouts: waves, sizes, healthy/failed/pending, why halted",
      "Without ID every rollout, newest first. Counts are what serve last evaluated;\n"
      "--evaluate runs one evaluation first (advance, halt, re-sign), as serve's signing\n"
      "replica does every --rollout-interval seconds.\n"
      "  flotilla-tracker rollout status 3 --repository R --json");
  status->add_option("id", f->id, "Rollout id")->check(CLI::Range(int64_t{1}, INT64_MAX));
  status->add_flag("--evaluate", f->evaluate, "Evaluate the rollouts first");
  status->add_flag("--members", f->members,
                   "With an id: list each device of the rollout (wave, sent, healthy since, "
                   "failure); in JSON, a `members` array");
  std::vector<std::pair<CLI::App*, std::string>> changes;
  for (const auto& [verb, summary, details] : std::vector<std::array<std::string, 3>>{
           {"pause", "Pause a running rollout: no new wave starts",
            "Devices of started waves keep the release; resume continues."},
           {"resume", "Resume a paused or halted rollout",
            "A halted rollout resumes only to halt again while its failures remain past\n"
            "the threshold (counted from the devices' latest reports)."},
           {"abort", "Abort a rollout: its devices go back to the previous release",
            "The previous release is the newest below the rollout's that is not recalled.\n"
            "They stay there until the next rollout of the app."}}) {
    auto* cmd =
        AddDatabaseCommand(rollout, verb, summary,
                           details + "\n  flotilla-tracker rollout " + verb + " 3 --repository R");
    cmd->add_option("id", f->id, "Rollout id")
        ->required()
        ->check(CLI::Range(int64_t{1}, INT64_MAX));
    changes.emplace_back(cmd, verb);
  }
  for (auto* cmd : {start, status}) AddCommonFlags(cmd, *f);
  for (auto& [cmd, verb] : changes) AddCommonFlags(cmd, *f);
  return [f, start, status, changes] {
    if (*start) return RunStart(*f);
    if (*status) return RunStatus(*f);
    for (const auto& [cmd, verb] : changes) {
      if (*cmd) return RunChange(*f, verb);
    }
    return -1;
  };
}

}  // namespace flotilla::tracker
