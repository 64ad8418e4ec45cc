// The node stays responsive while a deployment blocks: the real tracker and
// `flotilla-node run` under a NOTIFY_SOCKET with a watchdog, two apps in the
// real runtime. The first app's health check passes only once the test opens
// a gate (a file in a directory bound into its container), and the test holds
// the gate shut for at least 10 s. Meanwhile the control API and GET /metrics
// are each asked every 100 ms and must answer within 1 s (their p99 is
// printed), WATCHDOG=1 keeps coming every half period, and the second app is
// published, fetched, deployed and runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/file_io.h"
#include "node/control/control_server.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/systemd/notify_listener.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Latencies of one kind of request, from its own thread, every 100 ms.
class Prober {
 public:
  Prober(std::string name, std::function<bool()> ask) : name_(std::move(name)) {
    thread_ = std::thread([this, ask = std::move(ask)] {
      while (!stop_) {
        const auto start = Clock::now();
        const bool ok = ask();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        {
          std::lock_guard lock(mu_);
          latencies_ms_.push_back(ms);
          failures_ += ok ? 0 : 1;
        }
        std::this_thread::sleep_until(start + 100ms);
      }
    });
  }
  ~Prober() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Clears what was measured so far (before the gate was shut).
  void Reset() {
    std::lock_guard lock(mu_);
    latencies_ms_.clear();
    failures_ = 0;
  }
  double Percentile(double p) {
    std::lock_guard lock(mu_);
    if (latencies_ms_.empty()) return 0;
    std::vector<double> sorted = latencies_ms_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return latencies_ms_.size();
  }
  int failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  void Print() {
    std::printf("%s: %zu requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed\n",
                name_.c_str(), count(), Percentile(0.5), Percentile(0.99), Percentile(1.0),
                failures());
  }

 private:
  std::string name_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<double> latencies_ms_;
  int failures_ = 0;
  std::thread thread_;
};

class NodeResponsive : public ::testing::Test {
 protected:
  void SetUp() override {
    // Clean: the gate's path is a bind source in a signed spec.
    dir_ = std::filesystem::canonical(MakeTempDir("node-responsive-")).string();
    data_ = dir_ + "/node/data";
    RunShell("mkdir -p " + dir_ + "/node " + dir_ + "/gate");
  }
  void TearDown() override {
    StopWatching();
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    std::ofstream(dir_ + "/gate/open") << "go\n";  // never leave a switch hanging
    node_.Stop();
    for (const char* app : {"gated", "quick"}) {
      RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ + "/runtime " + app +
               " >/dev/null 2>&1");
    }
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }
  Json AppStatus(const Json& status, const std::string& app) {
    if (!status.is_object() || !status.contains("apps")) return nullptr;
    for (const auto& a : status["apps"]) {
      if (a["name"] == app) return a;
    }
    return nullptr;
  }
  Json Status() {
    auto r = node::ControlRequest(data_ + "/control.sock", {{"op", "status"}}, 5s);
    return r.ok() ? *r : Json();
  }
  // Receives notifications on its own thread, so each ping's time is when it
  // came, and keeps the largest gap between two WATCHDOG=1 pings since `since`.
  void WatchPings(Clock::time_point since) {
    while (listener_.Receive(0ms)) {
    }  // the pings before `since`
    watcher_ = std::thread([this, since] {
      while (!stop_watching_) {
        auto got = listener_.Receive(20ms);
        if (!got || !HasLine(*got, "WATCHDOG=1") || got->at < since) continue;
        std::lock_guard lock(mu_);
        if (pings_ > 0) max_gap_ = std::max(max_gap_, got->at - last_ping_);
        last_ping_ = got->at;
        ++pings_;
      }
    });
  }
  void StopWatching() {
    stop_watching_ = true;
    if (watcher_.joinable()) watcher_.join();
  }

  std::string dir_, data_;
  TrackerProcess tracker_;
  NodeProcess node_;
  NotifyListener listener_;
  std::thread watcher_;
  std::atomic<bool> stop_watching_{false};
  std::mutex mu_;
  Clock::time_point last_ping_;
  Clock::duration max_gap_{};
  int pings_ = 0;
};

TEST_F(NodeResponsive, ControlMetricsAndWatchdogAnswerWhileAHealthCheckBlocksAndAnotherAppDeploys) {
  const std::string repo = dir_ + "/repo";
  ASSERT_TRUE(InitRepository(dir_, repo));
  const Json gated = {
      {"name", "gated"},
      {"command", {"/bin/sh", "-c", "exec sleep 1000"}},
      {"mounts", {{{"type", "bind"}, {"source", dir_ + "/gate"}, {"destination", "/gate"}}}},
      {"health",
       {{"type", "exec"},
        {"command", {"/bin/sh", "-c", "test -e /gate/open"}},
        {"interval_ms", 200}}},
      {"switch", {{"healthy_deadline_ms", 120000}}}};
  ASSERT_TRUE(PublishImage(dir_, repo, "gated", 256, "gated", "0", gated))
      << ReadTextFileBounded(dir_ + "/publish.log", 1 << 20).value_or("");
  ASSERT_TRUE(tracker_.Start(dir_, repo));
  const uint16_t metrics_port = FreePort();
  Json config =
      NodeConfigFor("busy-node", data_, tracker_.url(), repo + "/metadata/1.root.json", "gated");
  config["apps"] = {"gated", "quick"};
  config["deploy"] = true;
  config["refresh_interval_s"] = 1;
  config["metrics_listen"] = "127.0.0.1:" + std::to_string(metrics_port);
  ASSERT_TRUE(listener_.Bind(dir_ + "/notify.sock"));
  ::setenv("NOTIFY_SOCKET", (dir_ + "/notify.sock").c_str(), 1);
  ::setenv("WATCHDOG_USEC", "2000000", 1);  // a ping every second
  ASSERT_TRUE(node_.Start(dir_ + "/node", config));
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");

  Prober control("control API status", [&] { return Status().is_object(); });
  Prober metrics("GET /metrics", [&] {
    return HttpGet(metrics_port, "/metrics", 5s).find("flotilla_node_info") != std::string::npos;
  });

  // The gated app's switch starts and waits at its health check.
  ASSERT_TRUE(WaitFor([&] { return AppStatus(Status(), "gated")["phase"] == "deploying"; }, 90s))
      << node_.Log();
  const auto shut_since = Clock::now();
  control.Reset();
  metrics.Reset();
  WatchPings(shut_since);

  // Meanwhile the second app is published, fetched, deployed and runs.
  const Json quick = {{"name", "quick"},
                      {"command", {"/bin/sh", "-c", "exec sleep 1000"}},
                      {"health", {{"type", "running"}, {"seconds", 1}}}};
  ASSERT_TRUE(PublishImage(dir_, repo, "quick", 128, "quick", "0", quick))
      << ReadTextFileBounded(dir_ + "/publish.log", 1 << 20).value_or("");
  ASSERT_TRUE(WaitFor(
      [&] {
        const Json status = Status();
        return AppStatus(status, "quick")["running_release"] == 1 &&
               AppStatus(status, "quick")["container_state"] == "running";
      },
      60s))
      << node_.Log();
  EXPECT_EQ(AppStatus(Status(), "gated")["phase"], "deploying") << "the gate opened by itself?";

  // The gate stays shut for at least 10 s in all.
  std::this_thread::sleep_until(shut_since + 10s);
  StopWatching();
  EXPECT_EQ(AppStatus(Status(), "gated")["phase"], "deploying");
  control.Stop();
  metrics.Stop();
  const double shut_s = std::chrono::duration<double>(Clock::now() - shut_since).count();
  std::printf(
      "health check held for %.1f s; watchdog: %d pings, max gap %.0f ms (period 2000 ms)\n",
      shut_s, pings_, std::chrono::duration<double, std::milli>(max_gap_).count());
  control.Print();
  metrics.Print();
  EXPECT_GE(control.count(), 80u);
  EXPECT_GE(metrics.count(), 80u);
  EXPECT_EQ(control.failures(), 0);
  EXPECT_EQ(metrics.failures(), 0);
  EXPECT_LT(control.Percentile(0.99), 1000);
  EXPECT_LT(metrics.Percentile(0.99), 1000);
  EXPECT_GE(pings_, static_cast<int>(shut_s) - 1);
  EXPECT_LT(max_gap_, 2s) << "the watchdog would have fired";

  // The gate opens: the first app's switch completes.
  std::ofstream(dir_ + "/gate/open") << "go\n";
  ASSERT_TRUE(WaitFor(
      [&] {
        const Json gated_status = AppStatus(Status(), "gated");
        return gated_status["running_release"] == 1 && gated_status["phase"] == "running";
      },
      30s))
      << node_.Log();
  EXPECT_EQ(AppStatus(Status(), "quick")["running_release"], 1);
}

}  // namespace
}  // namespace flotilla::testing
