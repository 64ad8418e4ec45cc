// What the daemon shows through the control API and the metrics endpoint
// (node/control/node_control.h), and the operator's commands.
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include "core/version.h"
#include "node/control/control_server.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {

NodeView NodeDaemon::View() {
  NodeView view;
  view.device_name = config_.device_name;
  view.site = config_.site;
  view.transfer_mode = config_.transfer_mode == TransferMode::kP2p ? "p2p" : "http-only";
  view.version = kVersion;
  view.enrolled = credentials_.has_value();
  view.last_refresh_unix = counters_.last_refresh_unix;
  view.last_refresh_error = last_refresh_error_;
  view.refreshes_ok = counters_.refreshes_ok;
  view.refreshes_failed = counters_.refreshes_failed;
  view.deploys_ok = counters_.deploys_ok;
  view.deploys_failed = counters_.deploys_failed;
  struct statvfs fs {};
  if (::statvfs(layout_.root.c_str(), &fs) == 0) {
    view.disk_free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  }
  view.store_bytes = StoreBytes();
  for (const auto& app : config_.apps) {
    const AppState& a = state_.apps[app];
    AppView v;
    v.name = app;
    v.phase = std::string(AppPhaseName(a.phase));
    v.target_release = a.target_release;
    v.ready_release = a.ready_release;
    v.running_release = a.running_release;
    v.previous_release = a.previous_release;
    v.container_state = "none";
    if (runtime_) {
      if (auto s = runtime_->Inspect(app); s.ok()) {
        v.container_state = runtime::ContainerStateName(s->state);
        v.restarts = s->restarts;
      }
    }
    if (auto t = transfers_.find(app); t != transfers_.end()) {
      v.bytes_done = std::min(t->second.done, t->second.total);
      v.bytes_total = t->second.total;
      for (const auto& artifact : t->second.artifacts) {
        auto p = fetcher_->Progress(artifact.sha256);
        if (!p.ok()) continue;
        v.peers += p->peers;
        view.hash_failures += p->hash_failures;
      }
      v.rate_bytes_per_s = rates_[app].rate;
      if (v.rate_bytes_per_s > 1 && v.bytes_total > v.bytes_done) {
        v.eta_s = static_cast<int64_t>((v.bytes_total - v.bytes_done) / v.rate_bytes_per_s);
      }
    }
    v.bytes_from_peers = a.bytes_from_peers;
    v.bytes_from_origin = a.bytes_from_origin;
    v.last_error = a.last_error;
    view.apps.push_back(std::move(v));
  }
  return view;
}

void NodeDaemon::UpdateNow() {
  spdlog::info("update requested through the control API: refreshing now");
  refresh_failures_ = 0;
  retry_waits_.clear();
  Schedule(kRefreshTask, Duration::zero());
}

void NodeDaemon::Rollback(const std::string& app, ControlReply reply) { reply(RollbackNow(app)); }

Result<std::string> NodeDaemon::RollbackNow(const std::string& app) {
  if (!state_.apps.count(app)) return NotFound("no app '" + app + "' is followed here");
  if (!runtime_) return FailedPrecondition("deploy is off in this node's configuration");
  AppState& a = state_.apps[app];
  const uint64_t from = a.running_release;
  if (long_task_hook_) long_task_hook_(std::chrono::hours(1));  // the longest deadline allowed
  auto rolled = runtime_->Rollback(app);
  if (long_task_hook_) long_task_hook_(Duration::zero());
  ASSIGN_OR_RETURN(runtime::DeployOutcome outcome, std::move(rolled));
  SyncRunning(app);
  if (a.running_release == from) {
    return FailedPrecondition("rollback of " + app + " did not happen: " + outcome.message +
                              "; release " + std::to_string(from) + " still runs");
  }
  // Not redeployed at the next refresh: only a newer release replaces it.
  if (from > a.running_release) a.failed_release = std::max(a.failed_release, from);
  a.last_error = "rolled back by the operator from release " + std::to_string(from);
  a.phase = AppPhase::kRunning;
  SaveState();
  report_due_ = true;
  spdlog::info("app {}: rolled back by the operator: release {} runs, {} is kept", app,
               a.running_release, from);
  return app + ": release " + std::to_string(a.running_release) + " runs (rolled back from " +
         std::to_string(from) + ")";
}

void NodeDaemon::Logs(const std::string& app, size_t max_bytes, ControlReply reply) {
  if (!state_.apps.count(app)) return reply(NotFound("no app '" + app + "' is followed here"));
  if (!runtime_) return reply(FailedPrecondition("deploy is off in this node's configuration"));
  auto logs = runtime_->Logs(app);
  if (logs.ok() && logs->size() > max_bytes) logs->erase(0, logs->size() - max_bytes);
  reply(std::move(logs));
}

uint16_t NodeDaemon::metrics_port() const { return metrics_ ? metrics_->port() : 0; }

}  // namespace flotilla::node
