#include "node/daemon/deployer.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "appspec/app_spec.h"

namespace flotilla::node {
namespace {

std::string ReleaseId(uint64_t version) { return "r" + std::to_string(version); }

// "r12" -> 12; anything else (a release deployed by hand) -> 0.
uint64_t VersionOf(const std::string& release_id) {
  if (release_id.size() < 2 || release_id[0] != 'r' ||
      release_id.find_first_not_of("0123456789", 1) != std::string::npos ||
      release_id.size() > 20) {
    return 0;
  }
  return std::stoull(release_id.substr(1));
}

struct SupervisionResult {
  Result<Duration> next = Internal("not run");
  std::map<std::string, Result<runtime::AppStatus>> status;
  std::map<std::string, uint64_t> generation;  // of each app when the pass was asked for
};

}  // namespace

Deployer::Deployer(std::vector<std::string> apps, StateFile& state, StoreWorker& store,
                   runtime::Runtime& runtime, const LaneOf& lanes, Executor& loop,
                   DeployerEvents events)
    : apps_(std::move(apps)),
      state_(state),
      store_(store),
      runtime_(runtime),
      events_(std::move(events)),
      supervisor_(lanes("supervise"), loop),
      logs_(lanes("logs"), loop),
      timer_(loop),
      loop_(&loop) {
  for (const auto& app : apps_) {
    lanes_[app].worker = std::make_unique<Worker>(lanes("app/" + app), loop);
    Sync(app, runtime_.Inspect(app));
  }
}

void Deployer::Start() { Supervise(); }

void Deployer::Follow(const std::string& app, const LaneOf& lanes) {
  if (lanes_.count(app)) return;
  apps_.push_back(app);
  lanes_[app].worker = std::make_unique<Worker>(lanes("app/" + app), *loop_);
  Sync(app, runtime_.Inspect(app));
}

void Deployer::Stop() {
  timer_.Cancel();
  supervisor_.Close();
  logs_.Close();
  for (auto& [app, lane] : lanes_) lane.worker->Close();
}

bool Deployer::Awaits(const std::string& app, uint64_t version) const {
  const AppLane& lane = lanes_.at(app);
  const AppState& a = state_.app(app);
  return version == a.ready_release && version != a.failed_release &&
         a.running_release != version && lane.in_flight == 0 &&
         !(lane.next && lane.next->version == version);
}

void Deployer::Supervise() {
  SupervisionResult asked;
  for (const auto& [app, lane] : lanes_) asked.generation[app] = lane.generation;
  supervisor_.Run(
      [&runtime = runtime_, apps = apps_, result = std::move(asked)]() mutable {
        result.next = runtime.Reconcile();
        for (const auto& app : apps) result.status.emplace(app, runtime.Inspect(app));
        return result;
      },
      [this](const SupervisionResult& result) {
        for (const auto& [app, status] : result.status) {
          const AppLane& lane = lanes_.at(app);
          if (lane.in_flight == 0 && lane.generation == result.generation.at(app)) {
            Sync(app, status);
          }
        }
        Duration delay = std::chrono::seconds(5);
        if (!result.next.ok()) {
          spdlog::warn("runtime: {}", result.next.status().ToString());
        } else {
          delay = std::clamp<Duration>(*result.next, std::chrono::milliseconds(200),
                                       std::chrono::seconds(5));
        }
        if (!resumed_) Resume();
        timer_.Schedule(delay, [this] { Supervise(); });
      });
}

// After the first supervision pass: what a crash left half-deployed is
// settled, deployments asked for meanwhile go ahead.
void Deployer::Resume() {
  resumed_ = true;
  bool fetching = false;
  for (const auto& app : apps_) {
    AppState& a = state_.app(app);
    if (a.phase == AppPhase::kDeploying && a.running_release == a.ready_release) {
      a.phase = AppPhase::kRunning;
    }
    fetching = fetching || a.target_release != 0;
  }
  state_.Save();
  // Finishes a collection a crash interrupted, or one a finished switch owes;
  // not while a transfer is in flight: the layers it rebuilt so far are not
  // kept yet, and the next successful switch collects anyway.
  if (!fetching) events_.collect();
  for (const auto& app : apps_) DeployNext(app);
}

void Deployer::DeployNext(const std::string& app) {
  AppLane& lane = lanes_.at(app);
  if (!lane.next || lane.in_flight != 0) return;
  const metadata::Release next = *std::exchange(lane.next, std::nullopt);
  const AppState& a = state_.app(app);
  // The pass that finished an interrupted switch may have made it run already.
  if (next.version == a.running_release || next.version == a.failed_release) return;
  Deploy(app, next);
}

void Deployer::Deploy(const std::string& app, const metadata::Release& release) {
  AppLane& lane = lanes_.at(app);
  if (!resumed_ || lane.in_flight != 0) {
    lane.next = release;  // after the first supervision pass, or the switch in flight
    return;
  }
  auto spec = appspec::ParseAppSpec(release.app_spec);
  if (!spec.ok())
    return Failed(app, release.version, "deploy", "app spec: " + spec.status().ToString());
  if (spec->name != app) {
    return Failed(app, release.version, "deploy",
                  "app spec names '" + spec->name + "', not '" + app + "'");
  }
  std::vector<Digest> top_first;
  for (auto l = release.image.layers.rbegin(); l != release.image.layers.rend(); ++l) {
    top_first.push_back(l->diff_id);
  }
  lane.Begin();
  store_.ResolveTrees(std::move(top_first), [this, app, version = release.version, spec = *spec](
                                                Result<std::vector<std::string>> lowers) {
    if (!lowers.ok()) {
      lanes_.at(app).End();
      return Failed(app, version, "deploy", lowers.status().ToString());
    }
    StartSwitch(app, version, spec, *lowers);
  });
}

void Deployer::StartSwitch(const std::string& app, uint64_t version, const appspec::AppSpec& spec,
                           const std::vector<std::string>& lowers) {
  AppState& a = state_.app(app);
  a.phase = AppPhase::kDeploying;
  state_.Save();
  spdlog::info("app {}: deploying release {} (health-gated switch from {})", app, version,
               a.running_release == 0 ? "nothing" : "release " + std::to_string(a.running_release));
  lanes_.at(app).worker->Run(
      [&runtime = runtime_, spec, lowers, app, id = ReleaseId(version)] {
        SwitchResult result;
        result.outcome = runtime.Deploy(spec, lowers, id);
        result.after = runtime.Inspect(app);
        return result;
      },
      [this, app, version](const SwitchResult& result) { Switched(app, version, result); });
}

void Deployer::Switched(const std::string& app, uint64_t version, const SwitchResult& result) {
  lanes_.at(app).End();
  Sync(app, result.after);
  AppState& a = state_.app(app);
  if (!result.outcome.ok()) {
    return Failed(app, version, "deploy", result.outcome.status().ToString());
  }
  // The health-gated switch went back: the release did not start or run
  // healthy.
  if (a.running_release != version) {
    return Failed(app, version, "health", "rolled back: " + result.outcome->message);
  }
  ++deploys_ok_;
  a.phase = AppPhase::kRunning;
  a.last_error.clear();
  a.failure.clear();
  spdlog::info("app {}: release {} runs and is healthy ({})", app, version,
               result.outcome->message);
  state_.Save();
  events_.changed();
  events_.collect();
  DeployNext(app);
}

void Deployer::Failed(const std::string& app, uint64_t version, const std::string& kind,
                      const std::string& why) {
  AppState& a = state_.app(app);
  ++deploys_failed_;
  a.failed_release = version;
  a.last_error = why;
  a.failure = kind;
  a.phase = a.running_release != 0 ? AppPhase::kRunning : AppPhase::kFailed;
  const std::string message =
      "app " + app + " release " + std::to_string(version) + " not deployed: " + why +
      (a.running_release != 0 ? "; release " + std::to_string(a.running_release) + " runs" : "");
  spdlog::error("{}", message);
  events_.error(message);
  state_.Save();
  events_.changed();
  DeployNext(app);
}

void Deployer::Rollback(const std::string& app, ControlReply reply) {
  auto it = lanes_.find(app);
  if (it == lanes_.end()) return reply(NotFound("no app '" + app + "' is followed here"));
  it->second.Begin();
  it->second.worker->Run(
      [&runtime = runtime_, app] {
        RollbackResult r;
        r.before = runtime.Inspect(app);
        r.outcome = runtime.Rollback(app);
        r.after = runtime.Inspect(app);
        return r;
      },
      [this, app, reply = std::move(reply)](const RollbackResult& r) {
        lanes_.at(app).End();
        reply(RolledBack(app, r));
        DeployNext(app);
      });
}

Result<std::string> Deployer::RolledBack(const std::string& app, const RollbackResult& r) {
  if (!r.outcome.ok()) return r.outcome.status();
  Sync(app, r.after);
  AppState& a = state_.app(app);
  const uint64_t from = r.before.ok() ? VersionOf(r.before->current) : 0;
  if (a.running_release == from) {
    return FailedPrecondition("rollback of " + app + " did not happen: " + r.outcome->message +
                              "; release " + std::to_string(from) + " still runs");
  }
  // Not redeployed at the next refresh: only a newer release replaces it.
  if (from > a.running_release) a.failed_release = std::max(a.failed_release, from);
  a.last_error = "rolled back by the operator from release " + std::to_string(from);
  a.failure.clear();  // the release did not fail
  a.phase = AppPhase::kRunning;
  state_.Save();
  events_.changed();
  spdlog::info("app {}: rolled back by the operator: release {} runs, {} is kept", app,
               a.running_release, from);
  return app + ": release " + std::to_string(a.running_release) + " runs (rolled back from " +
         std::to_string(from) + ")";
}

void Deployer::Logs(const std::string& app, size_t max_bytes, ControlReply reply) {
  if (!lanes_.count(app)) return reply(NotFound("no app '" + app + "' is followed here"));
  logs_.Run(
      [&runtime = runtime_, app, max_bytes] {
        auto logs = runtime.Logs(app);
        if (logs.ok() && logs->size() > max_bytes) logs->erase(0, logs->size() - max_bytes);
        return logs;
      },
      std::move(reply));
}

ContainerView Deployer::Container(const std::string& app) const {
  auto it = lanes_.find(app);
  return it == lanes_.end() ? ContainerView{} : it->second.container;
}

void Deployer::Sync(const std::string& app, const Result<runtime::AppStatus>& status) {
  AppState& a = state_.app(app);
  ContainerView& container = lanes_.at(app).container;
  if (!status.ok()) {
    if (status.status().code() != StatusCode::kNotFound) {
      spdlog::warn("app {}: {}", app, status.status().ToString());
      return;
    }
    a.running_release = a.previous_release = 0;
    container = ContainerView{};
    return;
  }
  a.running_release = VersionOf(status->current);
  a.previous_release = VersionOf(status->previous);
  container.state = runtime::ContainerStateName(status->state);
  container.restarts = status->restarts;
}

}  // namespace flotilla::node
