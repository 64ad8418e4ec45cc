#include "tests/control/control_test_support.h"

#include <chrono>

namespace flotilla::testing {

node::NodeView ScriptedControl::View() {
  std::lock_guard lock(mu_);
  return view_;
}

void ScriptedControl::SetView(node::NodeView view) {
  std::lock_guard lock(mu_);
  view_ = std::move(view);
}

bool ScriptedControl::Known(const std::string& app) {
  std::lock_guard lock(mu_);
  for (const auto& a : view_.apps) {
    if (a.name == app) return true;
  }
  return false;
}

void ScriptedControl::Rollback(const std::string& app, node::ControlReply reply) {
  if (!Known(app)) return reply(NotFound("no app '" + app + "' is followed here"));
  if (hold_rollbacks) {
    std::lock_guard lock(mu_);
    held_rollbacks_.emplace_back(app, std::move(reply));
    ++held;
    return;
  }
  reply(app + ": release 1 runs (rolled back from 2)");
}

void ScriptedControl::ReleaseHeldRollbacks() {
  if (!release_rollbacks.exchange(false)) return;
  std::vector<std::pair<std::string, node::ControlReply>> held_now;
  {
    std::lock_guard lock(mu_);
    held_now.swap(held_rollbacks_);
  }
  for (auto& [app, reply] : held_now) reply(app + ": release 1 runs (rolled back from 2)");
}

void ScriptedControl::Logs(const std::string& app, size_t max_bytes, node::ControlReply reply) {
  if (!Known(app)) return reply(NotFound("no app '" + app + "' is followed here"));
  reply(logs.size() > max_bytes ? logs.substr(logs.size() - max_bytes) : logs);
}

node::NodeView SampleView() {
  node::NodeView v;
  v.device_name = "kiosk-lobby";
  v.site = "shop-7";
  v.transfer_mode = "p2p";
  v.version = "0.1.0";
  v.enrolled = true;
  v.last_refresh_unix = 1'800'000'000;
  v.refreshes_ok = 12;
  v.refreshes_failed = 3;
  v.deploys_ok = 2;
  v.deploys_failed = 1;
  v.hash_failures = 4;
  v.peers_banned = 2;
  v.bytes_wasted = 32768;
  v.disk_free_bytes = 3'000'000'000;
  v.store_bytes = 123'456'789;
  node::AppView signage;
  signage.name = "signage";
  signage.phase = "downloading";
  signage.target_release = 4;
  signage.ready_release = 3;
  signage.running_release = 3;
  signage.previous_release = 2;
  signage.container_state = "running";
  signage.restarts = 1;
  signage.bytes_done = 12'000'000;
  signage.bytes_total = 48'000'000;
  signage.rate_bytes_per_s = 524288.5;
  signage.peers = 3;
  signage.eta_s = 69;
  signage.bytes_from_peers = 9'000'000;
  signage.bytes_from_origin = 3'000'000;
  node::AppView sensor;
  sensor.name = "sensor";
  sensor.phase = "running";
  sensor.ready_release = 7;
  sensor.running_release = 7;
  sensor.previous_release = 6;
  sensor.container_state = "running";
  sensor.last_error = "rolled back by the operator from release 8";
  v.apps = {signage, sensor};
  return v;
}

PollLoop::PollLoop(std::vector<std::function<void()>> polls)
    : thread_([this, polls = std::move(polls)] {
        while (!stop_) {
          for (const auto& poll : polls) poll();
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }) {}

PollLoop::~PollLoop() {
  stop_ = true;
  thread_.join();
}

}  // namespace flotilla::testing
