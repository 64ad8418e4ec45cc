// What the daemon shows through the control API and the metrics endpoint
// (node/control/node_control.h), and the operator's commands: composed from
// what each part keeps, never blocking the loop.
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "core/version.h"
#include "node/agent/agent_layout.h"
#include "node/agent/agent_slots.h"
#include "node/control/control_server.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {
namespace {

// Which agent release this process is: an installed one runs from
// <data_dir>/agent/releases/<N>/, the packaged one is the build's.
AgentView AgentViewOf(const std::string& data_dir) {
  const agent::AgentLayout layout(data_dir);
  AgentView view;
  view.release = kAgentRelease;
  if (auto installed = agent::InstalledReleaseOf(layout, agent::ExecutableOf(0))) {
    view.release = *installed;
    view.installed = true;
  }
  // A rollback is news while no newer agent runs.
  if (auto slots = agent::LoadAgentSlots(layout.slots());
      slots.ok() && slots->rolled_back && slots->rolled_back->release > view.release) {
    view.rolled_back = "release " + std::to_string(slots->rolled_back->release) + ": " +
                       slots->rolled_back->reason;
  }
  return view;
}

}  // namespace

NodeView NodeDaemon::View() {
  NodeView view;
  view.device_name = config_.device_name;
  view.site = config_.site;
  view.transfer_mode = config_.transfer_mode == TransferMode::kP2p ? "p2p" : "http-only";
  view.version = kVersion;
  view.enrolled = credentials_.has_value();
  const FollowerStatus& follower = follower_->status();
  view.last_refresh_unix = follower.last_refresh_unix;
  view.last_refresh_error = follower.last_refresh_error;
  view.refreshes_ok = follower.refreshes_ok;
  view.refreshes_failed = follower.refreshes_failed;
  if (deployer_) {
    view.deploys_ok = deployer_->deploys_ok();
    view.deploys_failed = deployer_->deploys_failed();
  }
  const FleetStatus& fleet = fleet_->status();
  view.fleet.state = fleet.state;
  view.fleet.last_poll_unix = fleet.last_refresh_unix;
  view.fleet.last_error = fleet.last_error;
  if (fleet.accepted) {
    view.fleet.version = fleet.accepted->targets_version;
    view.fleet.expires_unix = fleet.accepted->expires_unix;
  }
  struct statvfs fs {};
  if (::statvfs(layout_.root.c_str(), &fs) == 0) {
    view.disk_free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  }
  view.store_bytes = store_->bytes();
  view.agent = AgentViewOf(layout_.root);
  view.agent.ready = started_;
  view.agent.metadata_verified = trusted_on_disk_verified_ || follower.refreshes_ok > 0;
  view.import = importer_->view();
  view.import_dir = importer_->dir_view();
  for (const auto& app : apps_) {
    view.apps.push_back(ViewOf(app));
    if (auto t = pipeline_->Transfer(app)) {
      view.hash_failures += t->hash_failures;
      view.peers_banned += t->peers_banned;
      view.bytes_wasted += t->bytes_wasted;
    }
  }
  return view;
}

AppView NodeDaemon::ViewOf(const std::string& app) const {
  const AppState& a = state_->app(app);
  AppView v;
  v.name = app;
  v.phase = std::string(AppPhaseName(a.phase));
  v.target_release = a.target_release;
  v.ready_release = a.ready_release;
  v.running_release = a.running_release;
  v.previous_release = a.previous_release;
  if (deployer_) {
    const ContainerView container = deployer_->Container(app);
    v.container_state = container.state;
    v.restarts = container.restarts;
  } else {
    v.container_state = "none";
  }
  if (auto t = pipeline_->Transfer(app)) {
    v.bytes_done = t->done;
    v.bytes_total = t->total;
    v.peers = t->peers;
    v.rate_bytes_per_s = t->rate_bytes_per_s;
    if (v.rate_bytes_per_s > 1 && v.bytes_total > v.bytes_done) {
      v.eta_s = static_cast<int64_t>((v.bytes_total - v.bytes_done) / v.rate_bytes_per_s);
    }
  }
  v.bytes_from_peers = a.bytes_from_peers;
  v.bytes_from_origin = a.bytes_from_origin;
  v.last_error = a.last_error;
  if (const auto& accepted = fleet_->status().accepted) {
    auto it = accepted->document.apps.find(app);
    v.fleet_assigned = it != accepted->document.apps.end();
    if (v.fleet_assigned) v.desired_release = it->second.release;
  }
  if (auto lock = LockOf(app); LockHolds(lock, clock_)) {
    v.lock_until_unix = lock->until_unix;
    v.lock_reason = lock->reason;
  }
  if (auto held = waiting_switches_.find(app); held != waiting_switches_.end()) {
    v.waiting = DecideSwitch(FleetWindows(), LockOf(app), RunningHealthy(app), clock_).waiting;
    if (v.waiting.empty()) v.waiting = "switching now";
  }
  return v;
}

void NodeDaemon::UpdateNow() {
  spdlog::info("update requested through the control API: refreshing now");
  pipeline_->RetryNow();
  follower_->RefreshNow();
}

void NodeDaemon::Rollback(const std::string& app, ControlReply reply) {
  if (std::find(apps_.begin(), apps_.end(), app) == apps_.end()) {
    return reply(NotFound("no app '" + app + "' is followed here"));
  }
  if (!deployer_) return reply(FailedPrecondition("deploy is off in this node's configuration"));
  deployer_->Rollback(app, std::move(reply));
}

void NodeDaemon::Logs(const std::string& app, size_t max_bytes, ControlReply reply) {
  AppLog(app, max_bytes, 0, std::move(reply));
}

void NodeDaemon::AppLog(const std::string& app, size_t max_bytes, int64_t since_unix_s,
                        ControlReply reply) {
  if (std::find(apps_.begin(), apps_.end(), app) == apps_.end()) {
    return reply(NotFound("no app '" + app + "' is followed here"));
  }
  if (!deployer_) return reply(FailedPrecondition("deploy is off in this node's configuration"));
  deployer_->Logs(app, max_bytes, since_unix_s, std::move(reply));
}

uint16_t NodeDaemon::metrics_port() const { return metrics_ ? metrics_->port() : 0; }

}  // namespace flotilla::node
