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

#include "node/daemon/node_control.h"

namespace flotilla::testing {

class ScriptedControl final : public node::NodeControl {
 public:
  node::NodeView View() override;
  void UpdateNow() override { ++updates; }
  Result<std::string> Rollback(const std::string& app) override;
  Result<std::string> Logs(const std::string& app, size_t max_bytes) override;

  void SetView(node::NodeView view);
  std::atomic<int> updates{0};
  std::string logs;  // of every known app; set before the servers are polled

 private:
  bool Known(const std::string& app);
  std::mutex mu_;
  node::NodeView view_;
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
