#include "tracker/fleet/rollout_store.h"

#include <algorithm>
#include <ctime>
#include <set>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/webhook_outbox.h"

namespace flotilla::tracker {
namespace {

constexpr char kRolloutColumns[] =
    "id, app, release, group_name, waves, soak_s, max_failures, wave_timeout_s, state, reason, "
    "current_wave, created_at, wave_started_at, updated_at";

std::string WavesText(const std::vector<uint32_t>& waves) {
  std::string text;
  for (uint32_t w : waves) text += (text.empty() ? "" : ",") + std::to_string(w);
  return text;
}

Result<std::vector<uint32_t>> WavesFromText(const std::string& text) {
  std::vector<uint32_t> waves;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    try {
      waves.push_back(static_cast<uint32_t>(std::stoul(text.substr(start, comma - start))));
    } catch (const std::exception&) {
      return Corruption("stored waves '" + text + "' are not basis points");
    }
    start = comma + 1;
  }
  if (waves.empty() || waves.back() != kWholeShare) {
    return Corruption("stored waves '" + text + "' do not end at the whole");
  }
  return waves;
}

}  // namespace

std::string RolloutEventBody(std::string_view event, std::string_view event_id,
                             const Rollout& rollout, const WaveCounts& wave, int64_t at) {
  const Json body{{"id", event_id},
                  {"event", event},
                  {"at", UtcText(at)},
                  {"rollout",
                   {{"id", rollout.id},
                    {"app", rollout.app},
                    {"release", rollout.release},
                    {"group", rollout.group.empty() ? Json(nullptr) : Json(rollout.group)},
                    {"state", RolloutStateName(rollout.state)},
                    {"reason", rollout.reason},
                    {"current_wave", rollout.current_wave + 1},
                    {"waves", rollout.waves.size()},
                    {"wave_started_at", UtcText(rollout.wave_started_at)},
                    {"wave_timeout_s", rollout.wave_timeout_s}}},
                  {"wave",
                   {{"wave", rollout.current_wave + 1},
                    {"size", wave.size},
                    {"healthy", wave.healthy},
                    {"soaking", wave.soaking},
                    {"failed", wave.failed},
                    {"pending", wave.pending},
                    {"silent", wave.silent}}}};
  return body.dump();
}

Status RolloutStore::Notify(std::string_view event, const Rollout& r, const RolloutStep& step,
                            int64_t now) {
  ASSIGN_OR_RETURN(std::string event_id, RandomHex(16));
  const WaveCounts wave =
      r.current_wave < step.waves.size() ? step.waves[r.current_wave] : WaveCounts{};
  // A wave's stall is told once; a halt or completion happens once per
  // change of state, which the evaluation makes once.
  const std::string dedup_key =
      event == kRolloutWaveStalled
          ? std::string(event) + "/" + std::to_string(r.id) + "/" + std::to_string(r.current_wave)
          : std::string();
  return AppendWebhookEvent(*db_, event, event_id, dedup_key,
                            RolloutEventBody(event, event_id, r, wave, now), now)
      .status();
}

std::vector<FleetDevice> RolloutDevices(const FleetState& state, const std::string& app,
                                        const std::string& group) {
  const DesiredReleases desired(state);
  Rollout probe;
  probe.group = group;
  std::vector<FleetDevice> devices;
  for (const auto& [name, device] : state.devices) {
    if (!RolloutCovers(probe, state, device)) continue;
    const auto apps = desired.AppsOf(device);
    if (std::find(apps.begin(), apps.end(), app) != apps.end()) devices.push_back(device);
  }
  return devices;
}

Result<std::unique_ptr<RolloutStore>> RolloutStore::Open(const std::string& url,
                                                         const Clock& clock) {
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  return std::unique_ptr<RolloutStore>(new RolloutStore(std::move(engine), clock));
}

int64_t RolloutStore::NowSeconds() const { return UnixSeconds(clock_); }

Result<std::vector<Rollout>> RolloutStore::LoadRollouts(const std::string& where,
                                                        std::initializer_list<SqlValue> params,
                                                        size_t limit) {
  const std::string bound = limit == 0 ? "" : " LIMIT " + std::to_string(limit);
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query(std::string("SELECT ") + kRolloutColumns + " FROM rollouts " + where +
                                  " ORDER BY id DESC" + bound,
                              params));
  std::vector<Rollout> rollouts;
  for (size_t i = 0; i < rows.size(); ++i) {
    Rollout r;
    r.id = rows.Int(i, 0);
    r.app = rows.Text(i, 1);
    r.release = static_cast<uint64_t>(rows.Int(i, 2));
    r.group = rows.Text(i, 3);
    ASSIGN_OR_RETURN(r.waves, WavesFromText(rows.Text(i, 4)));
    r.soak_s = rows.Int(i, 5);
    r.max_failures = static_cast<uint32_t>(rows.Int(i, 6));
    r.wave_timeout_s = rows.Int(i, 7);
    auto state = ParseRolloutState(rows.Text(i, 8));
    if (!state) return Corruption("rollout " + std::to_string(r.id) + ": unknown state");
    r.state = *state;
    r.reason = rows.Text(i, 9);
    r.current_wave = static_cast<size_t>(rows.Int(i, 10));
    if (r.current_wave >= r.waves.size()) {
      return Corruption("rollout " + std::to_string(r.id) + ": current wave out of range");
    }
    r.created_at = rows.Int(i, 11);
    r.wave_started_at = rows.Int(i, 12);
    r.updated_at = rows.Int(i, 13);
    rollouts.push_back(std::move(r));
  }
  return rollouts;
}

Result<std::vector<RolloutMember>> RolloutStore::LoadMembers(int64_t id) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT m.device_id, d.name, m.wave, m.sent_at, m.healthy_since, "
                              "m.failure, m.last_report_at FROM rollout_devices m "
                              "JOIN devices d ON d.device_id = m.device_id "
                              "WHERE m.rollout_id = ? ORDER BY m.wave, d.name",
                              {id}));
  std::vector<RolloutMember> members;
  for (size_t i = 0; i < rows.size(); ++i) {
    members.push_back({rows.Text(i, 0), rows.Text(i, 1), static_cast<size_t>(rows.Int(i, 2)),
                       rows.Int(i, 3), rows.Int(i, 4), rows.Text(i, 5), rows.Int(i, 6)});
  }
  return members;
}

Status RolloutStore::SaveRollout(const Rollout& r, RolloutState expected) {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db_->Query(
          "UPDATE rollouts SET state = ?, reason = ?, current_wave = ?, wave_started_at = ?, "
          "updated_at = ? WHERE id = ? AND state = ? RETURNING id",
          {RolloutStateName(r.state), r.reason, static_cast<int64_t>(r.current_wave),
           r.wave_started_at, r.updated_at, r.id, RolloutStateName(expected)}));
  if (rows.empty()) {
    return Unavailable("rollout " + std::to_string(r.id) + " changed meanwhile; try again");
  }
  return Status::Ok();
}

Status RolloutStore::SaveMembers(int64_t id, const std::vector<RolloutMember>& members) {
  for (const RolloutMember& m : members) {
    RETURN_IF_ERROR(
        db_->Query("INSERT INTO rollout_devices(rollout_id, device_id, wave, sent_at, "
                   "healthy_since, failure, last_report_at) VALUES(?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT(rollout_id, device_id) DO UPDATE SET sent_at = excluded.sent_at, "
                   "healthy_since = excluded.healthy_since, failure = excluded.failure, "
                   "last_report_at = excluded.last_report_at",
                   {id, m.device_id, static_cast<int64_t>(m.wave), m.sent_at, m.healthy_since,
                    m.failure, m.last_report_at})
            .status());
  }
  return Status::Ok();
}

Result<RolloutView> RolloutStore::Start(const RolloutSpec& spec, const FleetState& state) {
  if (spec.waves.empty() || spec.waves.back() != kWholeShare) {
    return InvalidArgument("the last wave must be 100%");
  }
  if (spec.max_failures > kWholeShare) return InvalidArgument("--max-failures is above 100%");
  if (!spec.group.empty() && !state.groups.contains(spec.group)) {
    return NotFound("no group named '" + spec.group + "' (group list shows them)");
  }
  const std::string what = "release " + std::to_string(spec.release) + " of " + spec.app;
  auto published = state.releases.find(spec.app);
  if (published == state.releases.end() || !published->second.contains(spec.release)) {
    return NotFound(what + " is not published");
  }
  auto recalled = state.recalls.find(spec.app);
  if (recalled != state.recalls.end() && recalled->second.contains(spec.release)) {
    return FailedPrecondition(what + " is recalled");
  }
  const std::vector<FleetDevice> devices = RolloutDevices(state, spec.app, spec.group);
  if (devices.empty()) {
    return FailedPrecondition("no device runs " + spec.app +
                              (spec.group.empty() ? "" : " in group " + spec.group) +
                              " (app assign gives it to a group)");
  }
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows active,
                   db_->Query("SELECT id, state FROM rollouts WHERE app = ? AND state IN "
                              "('running', 'paused', 'halted')",
                              {spec.app}));
  if (!active.empty()) {
    return FailedPrecondition("rollout " + active.Text(0, 0) + " of " + spec.app + " is " +
                              active.Text(0, 1) + ": abort it first (or let it complete)");
  }
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(
      SqlRows inserted,
      db_->Query("INSERT INTO rollouts(app, release, group_name, waves, soak_s, max_failures, "
                 "wave_timeout_s, state, reason, current_wave, created_at, wave_started_at, "
                 "updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, 'running', '', 0, ?, ?, ?) RETURNING id",
                 {spec.app, static_cast<int64_t>(spec.release), spec.group, WavesText(spec.waves),
                  spec.soak_s, static_cast<int64_t>(spec.max_failures), spec.wave_timeout_s, now,
                  now, now}));
  if (inserted.empty()) return Internal("insert of a rollout returned no id");
  const int64_t id = inserted.Int(0, 0);
  std::vector<RolloutMember> members;
  for (const auto& [device_id, wave] : AssignWaves(id, spec.waves, devices)) {
    members.push_back({device_id, "", wave, wave == 0 ? now : 0, 0, "", 0});
  }
  RETURN_IF_ERROR(SaveMembers(id, members));
  RETURN_IF_ERROR(AppendAudit(*db_, now,
                              {.actor = actor_,
                               .action = "rollout.start",
                               .target = spec.app,
                               .detail = Json{{"rollout", id},
                                              {"release", spec.release},
                                              {"group", spec.group},
                                              {"waves", WavesText(spec.waves)},
                                              {"devices", members.size()}}}));
  RETURN_IF_ERROR(transaction.Commit());
  ASSIGN_OR_RETURN(auto views, List(id));
  return views.front();
}

Result<uint64_t> RolloutStore::Count() {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT COUNT(*) FROM rollouts"));
  return static_cast<uint64_t>(rows.Int(0, 0));
}

Result<std::vector<RolloutView>> RolloutStore::List(std::optional<int64_t> id, size_t limit) {
  std::vector<Rollout> rollouts;
  if (id) {
    ASSIGN_OR_RETURN(rollouts, LoadRollouts("WHERE id = ?", {*id}));
    if (rollouts.empty()) return NotFound("no rollout " + std::to_string(*id));
  } else {
    ASSIGN_OR_RETURN(rollouts, LoadRollouts("", {}, limit));
  }
  std::vector<RolloutView> views;
  for (Rollout& r : rollouts) {
    RolloutView view;
    ASSIGN_OR_RETURN(view.members, LoadMembers(r.id));
    // Counting only: no reports given and the rollout copy is not saved.
    Rollout counted = r;
    counted.state = RolloutState::kPaused;
    view.waves = EvaluateRollout(counted, view.members, {}, NowSeconds()).waves;
    view.rollout = std::move(r);
    views.push_back(std::move(view));
  }
  return views;
}

Result<RolloutView> RolloutStore::ChangeState(int64_t id, std::string_view verb) {
  {
    ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
    ASSIGN_OR_RETURN(auto rollouts, LoadRollouts("WHERE id = ?", {id}));
    if (rollouts.empty()) return NotFound("no rollout " + std::to_string(id));
    Rollout& r = rollouts.front();
    const RolloutState was = r.state;
    const std::string is =
        "rollout " + std::to_string(id) + " is " + std::string(RolloutStateName(r.state));
    if (verb == "pause") {
      if (r.state != RolloutState::kRunning)
        return FailedPrecondition(is + ": only a running one pauses");
      r.state = RolloutState::kPaused;
      r.reason = "paused by the operator";
    } else if (verb == "resume") {
      if (r.state != RolloutState::kPaused && r.state != RolloutState::kHalted) {
        return FailedPrecondition(is + ": only a paused or halted one resumes");
      }
      r.state = RolloutState::kRunning;
      r.reason.clear();
    } else {
      if (!IsActive(r.state)) return FailedPrecondition(is + ": it is over");
      r.reason =
          "aborted by the operator" + (r.reason.empty() ? std::string() : " (" + r.reason + ")");
      r.state = RolloutState::kAborted;
    }
    r.updated_at = NowSeconds();
    RETURN_IF_ERROR(SaveRollout(r, was));
    RETURN_IF_ERROR(AppendAudit(
        *db_, r.updated_at,
        {.actor = actor_,
         .action = "rollout." + std::string(verb),
         .target = r.app,
         .detail = Json{{"rollout", id}, {"release", r.release}, {"was", RolloutStateName(was)}}}));
    RETURN_IF_ERROR(transaction.Commit());
  }
  ASSIGN_OR_RETURN(auto views, List(id));
  return views.front();
}

Result<RolloutView> RolloutStore::Pause(int64_t id) { return ChangeState(id, "pause"); }
Result<RolloutView> RolloutStore::Resume(int64_t id) { return ChangeState(id, "resume"); }
Result<RolloutView> RolloutStore::Abort(int64_t id) { return ChangeState(id, "abort"); }

Result<RolloutPass> RolloutStore::Evaluate(const FleetState& state) {
  RolloutPass pass;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(auto rollouts,
                   LoadRollouts("WHERE state IN ('running', 'paused', 'halted')", {}));
  if (rollouts.empty()) return pass;
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT device_id, app, release, state, health, "
                                            "failure, reported_at FROM device_status"));
  // app -> device id -> its latest report of the app: a rollout counts the
  // reports of its own app, whatever else the device follows.
  std::map<std::string, std::map<std::string, ReportSeen>> reports;
  for (size_t i = 0; i < rows.size(); ++i) {
    reports[rows.Text(i, 1)][rows.Text(i, 0)] = {rows.Text(i, 1), rows.Text(i, 2), rows.Text(i, 3),
                                                 rows.Text(i, 4), rows.Text(i, 5), rows.Int(i, 6)};
  }
  const int64_t now = NowSeconds();
  for (Rollout& r : rollouts) {
    ++pass.rollouts;
    ASSIGN_OR_RETURN(std::vector<RolloutMember> members, LoadMembers(r.id));
    std::set<std::string> known;
    for (const RolloutMember& m : members) known.insert(m.device_id);
    // Devices covered since the start join the last wave.
    const size_t last = r.waves.size() - 1;
    for (const FleetDevice& d : RolloutDevices(state, r.app, r.group)) {
      if (known.contains(d.device_id)) continue;
      const bool sent = r.current_wave == last;
      members.push_back({d.device_id, d.name, last, sent ? now : 0, 0, "", 0});
      if (sent) pass.released.push_back(d.device_id);
    }
    const RolloutState was = r.state;
    const size_t wave_was = r.current_wave;
    RolloutStep step = EvaluateRollout(r, members, reports[r.app], now);
    pass.released.insert(pass.released.end(), step.released.begin(), step.released.end());
    if (step.changed) RETURN_IF_ERROR(SaveRollout(r, was));
    RETURN_IF_ERROR(SaveMembers(r.id, members));
    // Notifications, in this transaction: told if and only if committed.
    if (was == RolloutState::kRunning && r.state == RolloutState::kHalted) {
      RETURN_IF_ERROR(Notify(kRolloutHalted, r, step, now));
    } else if (was == RolloutState::kRunning && r.state == RolloutState::kCompleted) {
      RETURN_IF_ERROR(Notify(kRolloutCompleted, r, step, now));
    } else if (r.state == RolloutState::kRunning && r.current_wave == wave_was &&
               now - r.wave_started_at >= r.wave_timeout_s) {
      RETURN_IF_ERROR(Notify(kRolloutWaveStalled, r, step, now));
    }
  }
  RETURN_IF_ERROR(transaction.Commit());
  return pass;
}

Result<std::vector<std::string>> RolloutStore::MembersChangedSince(int64_t since) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT m.device_id FROM rollout_devices m JOIN rollouts r "
                              "ON r.id = m.rollout_id WHERE r.updated_at >= ?",
                              {since}));
  std::vector<std::string> ids;
  for (size_t i = 0; i < rows.size(); ++i) ids.push_back(rows.Text(i, 0));
  return ids;
}

Result<std::unique_ptr<RolloutLimits>> RolloutStore::Limits(const FleetState& state) {
  ASSIGN_OR_RETURN(auto all, LoadRollouts("", {}));
  std::vector<Rollout> newest;
  std::map<int64_t, std::map<std::string, size_t>> members;
  std::set<std::string> apps;
  for (Rollout& r : all) {  // newest first
    if (!apps.insert(r.app).second) continue;
    ASSIGN_OR_RETURN(
        SqlRows rows,
        db_->Query("SELECT device_id, wave FROM rollout_devices WHERE rollout_id = ?", {r.id}));
    auto& waves = members[r.id];
    for (size_t i = 0; i < rows.size(); ++i) {
      waves[rows.Text(i, 0)] = static_cast<size_t>(rows.Int(i, 1));
    }
    newest.push_back(std::move(r));
  }
  return std::make_unique<RolloutLimits>(state, std::move(newest), std::move(members));
}

}  // namespace flotilla::tracker
