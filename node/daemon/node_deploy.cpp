// The daemon's deployment (docs/node.md, "Deployment"): a release whose
// layers are all in the store and verified is handed to the runtime's
// health-gated switch as release "r<version>", its layers as the lowers. The
// previous release keeps running until the new one is healthy and comes back
// when it is not. Each app keeps keep_releases releases on disk (layers,
// artifacts still seeded to peers, runtime release directories); the rest is
// collected after every successful switch.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "appspec/app_spec.h"
#include "core/file_io.h"
#include "layerstore/safe_path.h"
#include "node/daemon/node_daemon.h"

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

}  // namespace

Status NodeDaemon::OpenRuntime() {
  runtime::RuntimeOptions options;
  options.state_dir = layout_.runtime();
  options.monitor_path =
      config_.monitor_path.empty() ? runtime::DefaultMonitorPath() : config_.monitor_path;
  auto opened = runtime::Runtime::Open(std::move(options), clock_);
  if (!opened.ok()) return opened.status().WithContext("runtime");
  runtime_ = std::move(*opened);
  for (const auto& app : config_.apps) SyncRunning(app);
  return Status::Ok();
}

void NodeDaemon::SyncRunning(const std::string& app) {
  AppState& a = state_.apps[app];
  auto status = runtime_->Inspect(app);
  if (!status.ok()) {
    if (status.status().code() != StatusCode::kNotFound) {
      spdlog::warn("app {}: {}", app, status.status().ToString());
      return;
    }
    a.running_release = a.previous_release = 0;
    return;
  }
  a.running_release = VersionOf(status->current);
  a.previous_release = VersionOf(status->previous);
}

void NodeDaemon::ResumeDeployments() {
  // The first supervision pass finishes a switch a crash interrupted; what
  // was ready but not handed over is deployed once the refresh has the
  // release's signed metadata again (OnReleases).
  Result<Duration> pass = runtime_->Reconcile();
  if (!pass.ok()) spdlog::warn("runtime: {}", pass.status().ToString());
  for (const auto& app : config_.apps) {
    SyncRunning(app);
    AppState& a = state_.apps[app];
    if (a.phase == AppPhase::kDeploying && a.running_release == a.ready_release) {
      a.phase = AppPhase::kRunning;
    }
  }
  SaveState();
  // Finishes a collection a crash interrupted, or one a finished switch owes;
  // not while a transfer was in flight: its layers rebuilt so far are not in
  // `kept` yet, and the next successful switch collects anyway.
  for (const auto& app : config_.apps) {
    if (state_.apps[app].target_release != 0) return;
  }
  CollectGarbage();
}

void NodeDaemon::SuperviseTask() {
  Result<Duration> next = runtime_->Reconcile();
  Duration delay = std::chrono::seconds(5);
  if (!next.ok()) {
    spdlog::warn("runtime: {}", next.status().ToString());
  } else {
    delay = std::clamp<Duration>(*next, std::chrono::milliseconds(200), std::chrono::seconds(5));
  }
  for (const auto& app : config_.apps) SyncRunning(app);
  Schedule(kSuperviseTask, delay);
}

void NodeDaemon::DeployReady(const std::string& app) {
  AppState& a = state_.apps[app];
  const metadata::Release& release = releases_.at(app);
  const uint64_t version = release.version;
  auto fail = [&](const std::string& why) {
    ++counters_.deploys_failed;
    a.failed_release = version;
    a.last_error = why;
    a.phase = a.running_release != 0 ? AppPhase::kRunning : AppPhase::kFailed;
    const std::string message =
        "app " + app + " release " + std::to_string(version) + " not deployed: " + why +
        (a.running_release != 0 ? "; release " + std::to_string(a.running_release) + " runs" : "");
    spdlog::error("{}", message);
    AddError(message);
    SaveState();
    report_due_ = true;
  };
  auto spec = appspec::ParseAppSpec(release.app_spec);
  if (!spec.ok()) return fail("app spec: " + spec.status().ToString());
  if (spec->name != app) return fail("app spec names '" + spec->name + "', not '" + app + "'");
  std::vector<std::string> lowers;  // top-most first
  for (auto layer = release.image.layers.rbegin(); layer != release.image.layers.rend(); ++layer) {
    auto path = store_->LayerTreePath(layer->diff_id);
    if (!path.ok()) return fail(path.status().ToString());
    lowers.push_back(*path);
  }
  a.phase = AppPhase::kDeploying;
  SaveState();
  spdlog::info("app {}: deploying release {} (health-gated switch from {})", app, version,
               a.running_release == 0 ? "nothing" : "release " + std::to_string(a.running_release));
  // Both releases may need their stop grace and the new one its deadline.
  const Duration blocking =
      std::chrono::milliseconds(spec->switch_mode.healthy_deadline_ms + 2 * spec->stop_grace_ms) +
      std::chrono::seconds(60);
  if (long_task_hook_) long_task_hook_(blocking);
  auto outcome = runtime_->Deploy(*spec, lowers, ReleaseId(version));
  if (long_task_hook_) long_task_hook_(Duration::zero());
  SyncRunning(app);
  if (!outcome.ok()) return fail(outcome.status().ToString());
  if (a.running_release != version) return fail("rolled back: " + outcome->message);
  ++counters_.deploys_ok;
  a.phase = AppPhase::kRunning;
  a.last_error.clear();
  spdlog::info("app {}: release {} runs and is healthy ({})", app, version, outcome->message);
  SaveState();
  report_due_ = true;
  CollectGarbage();
}

uint64_t NodeDaemon::StoreBytes() {
  auto layers = store_->ListLayers();
  if (!layers.ok()) return 0;
  uint64_t bytes = 0;
  for (const auto& l : *layers) bytes += l.length;
  return bytes;
}

void NodeDaemon::CollectGarbage() {
  if (!runtime_) return;
  spdlog::debug("collecting garbage");
  std::set<Digest> keep_layers, keep_artifacts, dropped_artifacts;
  for (const auto& app : config_.apps) {
    AppState& a = state_.apps[app];
    std::sort(a.kept.begin(), a.kept.end(),
              [](const KeptRelease& x, const KeptRelease& y) { return x.version > y.version; });
    std::vector<KeptRelease> retained;
    for (auto& k : a.kept) {
      const bool in_runtime = k.version == a.running_release || k.version == a.previous_release;
      const bool waiting = k.version > a.running_release && k.version != a.failed_release;
      if (in_runtime || waiting || retained.size() < config_.keep_releases) {
        retained.push_back(std::move(k));
      } else {
        spdlog::info("app {}: release {} is collected (keep_releases {})", app, k.version,
                     config_.keep_releases);
        dropped_artifacts.insert(k.artifacts.begin(), k.artifacts.end());
      }
    }
    a.kept = std::move(retained);
    for (const auto& k : a.kept) {
      keep_layers.insert(k.layers.begin(), k.layers.end());
      keep_artifacts.insert(k.artifacts.begin(), k.artifacts.end());
    }
    // A release being fetched keeps what it already has.
    if (auto r = releases_.find(app); r != releases_.end() && transfers_.count(app)) {
      for (const auto& l : r->second.image.layers) keep_layers.insert(l.diff_id);
      for (const auto& art : transfers_.at(app).artifacts) keep_artifacts.insert(art.sha256);
    }
    if (!runtime_->Inspect(app).ok()) continue;  // never deployed here
    auto pruned = runtime_->PruneReleases(app);
    if (!pruned.ok()) spdlog::warn("app {}: {}", app, pruned.status().ToString());
  }
  SaveState();  // the kept lists first: a crash below leaves files, never dangling records
  for (const auto& d : dropped_artifacts) {
    if (keep_artifacts.count(d)) continue;
    Status st = fetcher_->Forget(d);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
    counted_.erase(d);
  }
  auto layers = store_->ListLayers();
  if (!layers.ok()) return spdlog::warn("{}", layers.status().ToString());
  size_t removed = 0;
  for (const auto& l : *layers) {
    if (keep_layers.count(l.diff_id)) continue;
    Status st = store_->RemoveLayer(l.diff_id);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
    removed += st.ok();
  }
  spdlog::info("collected {} layer(s) of {}; {} kept", removed, layers->size(),
               layers->size() - removed);
}

void NodeDaemon::ReclaimTransfer(const std::string& app) {
  auto t = transfers_.find(app);
  if (t == transfers_.end()) return;
  std::set<Digest> kept;
  for (const auto& [name, a] : state_.apps) {
    for (const auto& k : a.kept) kept.insert(k.artifacts.begin(), k.artifacts.end());
  }
  for (const auto& artifact : t->second.artifacts) {
    if (kept.count(artifact.sha256)) continue;
    Status st = fetcher_->Forget(artifact.sha256);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
    counted_.erase(artifact.sha256);
  }
  layerstore::RemoveTree(layout_.root + "/tmp").IgnoreError();
}

}  // namespace flotilla::node
