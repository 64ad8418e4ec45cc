// Test support for the control API and metrics servers: a NodeControl whose
// answers the test sets, and a thread that polls servers as the daemon's
// event loop does (every few milliseconds), so a blocking client call in the
// test thread gets its answer.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/control/node_control.h"

namespace flotilla::testing {

class ScriptedControl final : public node::NodeControl {
 public:
  node::NodeView View() override;
  void UpdateNow() override { ++updates; }
  // Replies at once, unless `hold_rollbacks`: then the reply waits in
  // `held_rollbacks` until the test calls it (on the polling thread's side
  // of the lock: ReleaseRollbacks).
  void Rollback(const std::string& app, node::ControlReply reply) override;
  void Logs(const std::string& app, size_t max_bytes, node::ControlReply reply) override;
  // Replies to every held rollback; called from the polling thread by the loop.
  void ReleaseHeldRollbacks();

  void SetView(node::NodeView view);
  std::atomic<int> updates{0};
  std::string logs;  // of every known app; set before the servers are polled
  std::atomic<bool> hold_rollbacks{false};
  std::atomic<bool> release_rollbacks{false};  // the next poll replies to the held ones
  std::atomic<int> held{0};

 private:
  bool Known(const std::string& app);
  std::mutex mu_;
  node::NodeView view_;
  std::vector<std::pair<std::string, node::ControlReply>> held_rollbacks_;
};

// A view with two apps, one of them downloading.
node::NodeView SampleView();

// Calls every function in `polls` about every 2 ms on its own thread until destroyed.
class PollLoop {
 public:
  explicit PollLoop(std::vector<std::function<void()>> polls);
  ~PollLoop();

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace flotilla::testing
