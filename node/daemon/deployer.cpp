#include "node/daemon/deployer.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "appspec/app_spec.h"
#include "runtime/app_config.h"

namespace flotilla::node {
namespace {

// "r12", or "r12-c<config id>" with a configuration.
std::string ReleaseId(uint64_t version, const std::string& config_id) {
  return "r" + std::to_string(version) + (config_id.empty() ? "" : "-c" + config_id);
}

// The configuration id of "r12-c3f2a..." ("" for "r12" or anything else).
std::string ConfigIdOf(const std::string& release_id) {
  const size_t dash = release_id.find("-c");
  return dash == std::string::npos ? "" : release_id.substr(dash + 2);
}

// "r12" and "r12-c<id>" -> 12; anything else (a release deployed by hand) -> 0.
uint64_t VersionOf(const std::string& release_id) {
  const std::string id = release_id.substr(0, release_id.find("-c"));
  if (id.size() < 2 || id[0] != 'r' || id.find_first_not_of("0123456789", 1) != std::string::npos ||
      id.size() > 20) {
    return 0;
  }
  return std::stoull(id.substr(1));
}

struct SupervisionResult {
  Result<Duration> next = Internal("not run");
  std::map<std::string, Result<runtime::AppStatus>> status;
  std::map<std::string, uint64_t> generation;  // of each app when the pass was asked for
};

}  // namespace

Deployer::Deployer(std::vector<std::string> apps, StateFile& state, StoreWorker& store,
                   runtime::Runtime& runtime, const LaneOf& lanes, Executor& loop,
                   DeployerEvents events, std::string config_dir, DeployerSecrets secrets)
    : apps_(std::move(apps)),
      config_dir_(std::move(config_dir)),
      secrets_(std::move(secrets)),
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

void Deployer::Start() {
  RestoreSecretFiles();
  Supervise();
}

void Deployer::RestoreSecretFiles() {
  if (secrets_.dir.empty() || config_dir_.empty()) return;
  std::vector<std::pair<std::string, std::string>> configs;  // app, config id
  for (const auto& app : apps_) {
    const AppState& a = state_.app(app);
    for (const std::string& id : {a.config_id, a.previous_config_id}) {
      if (!id.empty()) configs.emplace_back(app, id);
    }
  }
  struct Restored {
    std::vector<std::string> made, errors;
  };
  // On the supervision lane, so that the first pass (which starts what a
  // reboot stopped) runs after it.
  supervisor_.Run(
      [configs, config_dir = config_dir_, secrets = secrets_] {
        Restored r;
        bool mounted = false;  // a node whose apps hold no secrets mounts nothing
        for (const auto& [app, id] : configs) {
          const std::string files = config_dir + "/" + app + "/" + id;
          if (!std::filesystem::exists(files + "/" + kSealedBoxesFile)) continue;
          if (!mounted) {
            Status tmpfs = EnsureSecretsTmpfs(secrets.dir);
            if (!tmpfs.ok()) {
              r.errors.push_back(tmpfs.ToString());
              return r;
            }
            mounted = true;
          }
          const std::string dir = secrets.dir + "/" + app + "/" + id;
          const bool there = std::filesystem::exists(dir);
          Status st = RestoreSecrets(files, dir, secrets.device_key);
          const std::string what = "app " + app + " configuration " + id;
          if (!st.ok()) {
            r.errors.push_back(what + ": " + st.ToString());
          } else if (!there && std::filesystem::exists(dir)) {
            r.made.push_back(what);
          }
        }
        return r;
      },
      [this](const Restored& r) {
        for (const auto& what : r.made) spdlog::info("secrets of {} written again", what);
        for (const auto& e : r.errors) {
          spdlog::error("secrets: {}", e);
          events_.error("secrets: " + e);
        }
      });
}

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
  const appspec::ConfigValues config = std::exchange(lane.next_config, {});
  const SecretBoxes secrets = std::exchange(lane.next_secrets, {});
  const AppState& a = state_.app(app);
  // The pass that finished an interrupted switch may have made it run already.
  if (next.version == a.failed_release) return;
  if (next.version == a.running_release && !WantsConfig(app, config, secrets)) return;
  Deploy(app, next, config, secrets);
}

bool Deployer::WantsConfig(const std::string& app, const appspec::ConfigValues& config,
                           const SecretBoxes& secrets) const {
  const AppState& a = state_.app(app);
  const std::string id = runtime::ConfigId(config, secrets);
  return id != a.config_id && (id.empty() || id != a.failed_config_id);
}

void Deployer::Deploy(const std::string& app, const metadata::Release& release,
                      const appspec::ConfigValues& config, const SecretBoxes& secrets) {
  AppLane& lane = lanes_.at(app);
  if (!resumed_ || lane.in_flight != 0) {
    lane.next = release;  // after the first supervision pass, or the switch in flight
    lane.next_config = config;
    lane.next_secrets = secrets;
    return;
  }
  auto spec = appspec::ParseAppSpec(release.app_spec);
  if (!spec.ok())
    return Failed(app, release.version, "deploy", "app spec: " + spec.status().ToString());
  if (spec->name != app) {
    return Failed(app, release.version, "deploy",
                  "app spec names '" + spec->name + "', not '" + app + "'");
  }
  // Running such an app without its secret would be worse than not running
  // the release (docs/config.md, "Secrets").
  for (const auto& declared : spec->config) {
    if (!declared.secret || secrets.count(declared.name)) continue;
    if (secrets_.dir.empty()) {
      return Failed(app, release.version, "deploy",
                    "app spec declares the secret " + declared.name +
                        " and this node has no secrets directory");
    }
    return Failed(app, release.version, "deploy",
                  "app spec declares the secret " + declared.name +
                      ", which is not sealed for this device (flotilla-tracker secret set)");
  }
  for (const auto& [name, box] : secrets) {
    if (!appspec::DeclaresSecret(*spec, name)) {
      return Failed(app, release.version, "deploy", "app spec does not declare the secret " + name);
    }
  }
  std::vector<Digest> top_first;
  for (auto l = release.image.layers.rbegin(); l != release.image.layers.rend(); ++l) {
    top_first.push_back(l->diff_id);
  }
  lane.Begin();
  store_.ResolveTrees(std::move(top_first),
                      [this, app, version = release.version, spec = *spec, config,
                       secrets](Result<std::vector<std::string>> lowers) {
                        if (!lowers.ok()) {
                          lanes_.at(app).End();
                          return Failed(app, version, "deploy", lowers.status().ToString());
                        }
                        StartSwitch(app, version, spec, *lowers, config, secrets);
                      });
}

void Deployer::StartSwitch(const std::string& app, uint64_t version, const appspec::AppSpec& spec,
                           const std::vector<std::string>& lowers,
                           const appspec::ConfigValues& config, const SecretBoxes& secrets) {
  AppState& a = state_.app(app);
  a.phase = AppPhase::kDeploying;
  state_.Save();
  const std::string config_id = runtime::ConfigId(config, secrets);
  if (version == a.running_release) {
    spdlog::info("app {}: configuration {} of release {} (health-gated switch from {})", app,
                 config_id.empty() ? "none" : config_id, version,
                 a.config_id.empty() ? "none" : a.config_id);
  } else {
    spdlog::info(
        "app {}: deploying release {} (health-gated switch from {})", app, version,
        a.running_release == 0 ? "nothing" : "release " + std::to_string(a.running_release));
  }
  const std::string files = config_dir_ + "/" + app + "/" + config_id;
  lanes_.at(app).worker->Run(
      [&runtime = runtime_, spec, lowers, app, config, secrets, files,
       id = ReleaseId(version, config_id), configured = !config_dir_.empty(),
       secret_files = secrets_.dir + "/" + app + "/" + config_id, secrets_place = secrets_] {
        SwitchResult result;
        if ((!config.empty() || !secrets.empty()) && !configured) {
          result.outcome = FailedPrecondition("no configuration directory");
          return result;
        }
        if (!secrets.empty()) {
          // The boxes first: a restart finds them before the container runs.
          Status kept = SaveSealedBoxes(files, spec.user, secrets);
          if (kept.ok()) kept = EnsureSecretsTmpfs(secrets_place.dir);
          if (kept.ok()) {
            auto opener = SealedBoxOpener::LoadFile(secrets_place.device_key);
            kept = opener.ok() ? MaterialiseSecrets(secret_files, spec.user, secrets, *opener)
                               : opener.status();
          }
          if (!kept.ok()) {
            result.outcome = kept.WithContext("secrets");
            return result;
          }
        }
        auto applied = runtime::ApplyConfig(spec, config, files);
        if (!applied.ok()) {
          result.outcome = applied.status();
          return result;
        }
        if (!secrets.empty()) {
          applied->mounts.push_back(appspec::MountSpec{.type = "bind",
                                                       .source = secret_files,
                                                       .destination = kSecretsMountPoint,
                                                       .read_only = true});
        }
        result.outcome = runtime.Deploy(*applied, lowers, id);
        result.after = runtime.Inspect(app);
        return result;
      },
      [this, app, version, config_id](const SwitchResult& result) {
        Switched(app, version, config_id, result);
      });
}

void Deployer::Switched(const std::string& app, uint64_t version, const std::string& config_id,
                        const SwitchResult& result) {
  lanes_.at(app).End();
  AppState& a = state_.app(app);
  const uint64_t before = a.running_release;
  if (result.after.ok() || result.after.status().code() == StatusCode::kNotFound) {
    Sync(app, result.after);
  }
  if (!result.outcome.ok()) {
    if (before == version && before != 0) {
      return ConfigFailed(app, config_id, result.outcome.status().ToString());
    }
    return Failed(app, version, "deploy", result.outcome.status().ToString());
  }
  // The health-gated switch went back: the release (or its configuration)
  // did not start or run healthy.
  if (a.running_release != version || a.config_id != config_id) {
    if (a.running_release == version && before == version) {
      return ConfigFailed(app, config_id, "rolled back: " + result.outcome->message);
    }
    return Failed(app, version, "health", "rolled back: " + result.outcome->message);
  }
  ++deploys_ok_;
  a.phase = AppPhase::kRunning;
  a.last_error.clear();
  a.failure.clear();
  a.failed_config_id.clear();
  spdlog::info("app {}: release {}{} runs and is healthy ({})", app, version,
               config_id.empty() ? "" : " with configuration " + config_id,
               result.outcome->message);
  state_.Save();
  PruneConfigs(app);
  events_.changed();
  events_.collect();
  DeployNext(app);
}

void Deployer::ConfigFailed(const std::string& app, const std::string& config_id,
                            const std::string& why) {
  AppState& a = state_.app(app);
  ++deploys_failed_;
  a.failed_config_id = config_id;
  a.last_error =
      "configuration " + (config_id.empty() ? "none" : config_id) + " not applied: " + why;
  // Trackers know the kinds of release failures only: the configuration
  // made the app unhealthy (docs/config.md).
  a.failure = "health";
  a.phase = AppPhase::kRunning;
  const std::string message = "app " + app + " " + a.last_error + "; configuration " +
                              (a.config_id.empty() ? "none" : a.config_id) + " of release " +
                              std::to_string(a.running_release) + " runs";
  spdlog::error("{}", message);
  events_.error(message);
  state_.Save();
  events_.changed();
  DeployNext(app);
}

void Deployer::PruneConfigs(const std::string& app) {
  if (config_dir_.empty()) return;
  const AppState& a = state_.app(app);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(config_dir_ + "/" + app, ec)) {
    const std::string id = entry.path().filename().string();
    if (id == a.config_id || id == a.previous_config_id) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) spdlog::warn("app {}: removing configuration {}: {}", app, id, ec.message());
  }
  if (secrets_.dir.empty()) return;
  // The secrets files go with their configuration (and a directory a
  // crash left half made, "<id>.new").
  for (const auto& entry : std::filesystem::directory_iterator(secrets_.dir + "/" + app, ec)) {
    const std::string id = entry.path().filename().string();
    if (id == a.config_id || id == a.previous_config_id) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (ec)
      spdlog::warn("app {}: removing the secrets of configuration {}: {}", app, id, ec.message());
  }
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
  const std::string from_id = r.before.ok() ? r.before->current : "";
  const uint64_t from = VersionOf(from_id);
  if (r.after.ok() && r.after->current != from_id && a.running_release == from && from != 0) {
    // The same release, the configuration before: the one left is not
    // applied again at the next poll (another configuration is).
    const std::string left = ConfigIdOf(from_id);
    a.failed_config_id = left;
    a.last_error =
        "configuration " + (left.empty() ? "none" : left) + " rolled back by the operator";
    a.failure.clear();
    a.phase = AppPhase::kRunning;
    state_.Save();
    events_.changed();
    const std::string runs = a.config_id.empty() ? "none" : a.config_id;
    spdlog::info("app {}: rolled back by the operator: configuration {} of release {} runs", app,
                 runs, from);
    return app + ": release " + std::to_string(from) + " runs with configuration " + runs +
           " (rolled back from configuration " + (left.empty() ? "none" : left) + ")";
  }
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

void Deployer::Logs(const std::string& app, size_t max_bytes, int64_t since_unix_s,
                    ControlReply reply) {
  if (!lanes_.count(app)) return reply(NotFound("no app '" + app + "' is followed here"));
  logs_.Run(
      [&runtime = runtime_, app, max_bytes, since_unix_s] {
        auto logs = runtime.Logs(app, "", since_unix_s);
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
    a.config_id.clear();
    a.previous_config_id.clear();
    container = ContainerView{};
    return;
  }
  a.running_release = VersionOf(status->current);
  a.previous_release = VersionOf(status->previous);
  a.config_id = ConfigIdOf(status->current);
  a.previous_config_id = ConfigIdOf(status->previous);
  container.state = runtime::ContainerStateName(status->state);
  container.restarts = status->restarts;
}

}  // namespace flotilla::node
