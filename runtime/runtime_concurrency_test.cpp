// runtime::Runtime called from several threads, as the node's worker lanes
// call it: two apps deploy at the same time while one's health check blocks,
// and supervision passes meanwhile skip the app whose switch is in flight
// and keep the other one supervised. Real containers (LOCK runtime).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "appspec/app_spec.h"
#include "runtime/runtime.h"

namespace flotilla::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RuntimeConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/runtime-concurrency-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    lower_ = dir_ + "/lower";
    for (const char* d : {"/bin", "/tmp", "/proc", "/sys", "/dev", "/gate"}) {
      fs::create_directories(lower_ + d);
    }
    fs::copy_file("/bin/busybox", lower_ + "/bin/busybox");
    fs::create_symlink("busybox", lower_ + "/bin/sh");
    fs::create_directories(dir_ + "/gate");
    RuntimeOptions options;
    options.state_dir = dir_ + "/state";
    options.monitor_path = DefaultMonitorPath();
    auto runtime = Runtime::Open(options, SystemClock::Instance());
    ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
    runtime_ = std::move(*runtime);
  }
  void TearDown() override {
    if (runtime_) {
      for (const char* app : {"gated", "quick"}) runtime_->Stop(app).IgnoreError();
    }
    runtime_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Healthy at once, or (gated) only once the test creates <dir>/gate/open.
  appspec::AppSpec Spec(const std::string& name, bool gated) {
    Json spec = {{"name", name},
                 {"command", {"/bin/sh", "-c", "exec /bin/busybox sleep 1000"}},
                 {"restart", {{"policy", "no"}}},
                 {"stop_grace_ms", 2000u},
                 {"health", {{"type", "running"}, {"seconds", 0u}}}};
    if (gated) {
      spec["mounts"] = {{{"type", "bind"}, {"source", dir_ + "/gate"}, {"destination", "/gate"}}};
      spec["health"] = {{"type", "exec"},
                        {"command", {"/bin/sh", "-c", "test -e /gate/open"}},
                        {"interval_ms", 100u}};
      spec["switch"] = {{"healthy_deadline_ms", 60000u}};
    }
    auto parsed = appspec::ParseAppSpec(spec);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    return *parsed;
  }

  std::string dir_, lower_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(RuntimeConcurrencyTest, TwoAppsDeployAtOnceWhileSupervisionSkipsTheOneSwitching) {
  auto gated = std::async(std::launch::async,
                          [&] { return runtime_->Deploy(Spec("gated", true), {lower_}, "r1"); });
  // Wait until its switch is in flight: the new release started, not healthy.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = runtime_->Inspect("gated");
    if (s.ok() && s->switching && s->running_releases == std::vector<std::string>{"r1"}) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(runtime_->Inspect("gated").ok());

  // Supervision passes on a third thread meanwhile: none waits for the switch.
  std::atomic<bool> stop{false};
  std::atomic<int> passes{0};
  std::atomic<int64_t> slowest_ms{0};
  std::thread supervisor([&] {
    while (!stop) {
      const auto start = std::chrono::steady_clock::now();
      EXPECT_TRUE(runtime_->Reconcile().ok());
      const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
      slowest_ms = std::max<int64_t>(slowest_ms, ms);
      ++passes;
      std::this_thread::sleep_for(100ms);
    }
  });

  // The other app deploys while the first one's health check blocks.
  auto quick = runtime_->Deploy(Spec("quick", false), {lower_}, "r1");
  ASSERT_TRUE(quick.ok()) << quick.status().ToString();
  EXPECT_TRUE(quick->switched) << quick->message;
  EXPECT_EQ(gated.wait_for(0s), std::future_status::timeout) << "the gated switch ended early";
  auto quick_status = runtime_->Inspect("quick");
  ASSERT_TRUE(quick_status.ok());
  EXPECT_EQ(quick_status->current, "r1");
  EXPECT_EQ(quick_status->state, ContainerState::kRunning);
  std::this_thread::sleep_for(1s);  // passes go on beside the switch
  EXPECT_TRUE(runtime_->Inspect("gated")->switching.has_value());

  std::ofstream(dir_ + "/gate/open") << "go\n";
  ASSERT_EQ(gated.wait_for(30s), std::future_status::ready);
  auto outcome = gated.get();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->switched) << outcome->message;
  stop = true;
  supervisor.join();
  EXPECT_GE(passes.load(), 5);
  EXPECT_LT(slowest_ms.load(), 1000) << "a pass waited for the switch in flight";
  auto gated_status = runtime_->Inspect("gated");
  ASSERT_TRUE(gated_status.ok());
  EXPECT_EQ(gated_status->current, "r1");
  EXPECT_FALSE(gated_status->switching.has_value());
  EXPECT_EQ(runtime_->Inspect("quick")->state, ContainerState::kRunning);
}

// A first deploy makes the app's directory before it locks it: a pass that
// meets the directory in between finds no record, skips the app, and still
// supervises the others.
TEST_F(RuntimeConcurrencyTest, SupervisionSkipsAnAppWhoseFirstDeployHasNotWrittenItsRecord) {
  auto quick = runtime_->Deploy(Spec("quick", false), {lower_}, "r1");
  ASSERT_TRUE(quick.ok()) << quick.status().ToString();
  ASSERT_TRUE(quick->switched) << quick->message;
  fs::create_directories(dir_ + "/state/apps/gated");
  auto pass = runtime_->Reconcile();
  EXPECT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(runtime_->Inspect("quick")->state, ContainerState::kRunning);
}

}  // namespace
}  // namespace flotilla::runtime
