// The runtime's state under crashes, on the fault-injecting Env: a release
// switch (parallel and stop-first, to a healthy release and to one that
// never gets healthy) is stopped at every durable step of its state writes.
// Then either the node process died there (its containers, real processes,
// keep running) or the power was cut (unsynced writes are dropped and every
// container is killed). A new Runtime on the same state directory
// reconciles, and exactly one healthy release of the app runs: the new one
// when the state on disk says the switch to a healthy release went on, the
// old one otherwise.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "appspec/app_spec.h"
#include "core/file_io.h"
#include "core/testing/fault_injection_env.h"
#include "runtime/launch_plan.h"
#include "runtime/runtime.h"
#include "tests/runtime/runtime_fixture.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using runtime::Runtime;

enum class Death { kProcess, kPowerCut };

class RuntimeCrashTest : public RuntimeTest {
 protected:
  Result<std::unique_ptr<Runtime>> Open(Env& env) {
    runtime::RuntimeOptions options;
    options.state_dir = state_;
    options.monitor_path = FLOTILLA_MONITOR_BINARY;
    options.env = &env;
    return Runtime::Open(std::move(options), SystemClock::Instance());
  }

  // A release that becomes healthy (its check finds /tmp/ok) or never does.
  appspec::AppSpec Release(const std::string& tag, bool healthy, const std::string& mode) {
    std::string start = healthy ? "touch /tmp/ok; " : "";
    Json spec = BaseSpec(kApp, {"/bin/sh", "-c", start + "exec /probe tick " + tag + " 50"});
    spec["health"] = {
        {"type", "exec"}, {"command", {"/bin/sh", "-c", "test -e /tmp/ok"}}, {"interval_ms", 50}};
    // A release that never gets healthy is given up on soon: the rollback
    // tests wait for that deadline once per boundary.
    spec["switch"] = {{"mode", mode}, {"healthy_deadline_ms", healthy ? 2000 : 300}};
    // Each simulated power cut kills the running release, which the restart
    // policy counts as a failure: unlimited retries with a short backoff, so
    // dozens of cuts in a row neither use them up nor stretch the wait.
    spec["restart"] = {{"policy", "on-failure"},
                       {"backoff_initial_ms", 50},
                       {"backoff_max_ms", 100},
                       {"max_retries", 0}};
    auto parsed = appspec::ParseAppSpecText(spec.dump());  // as a spec file is read
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    return parsed.ok() ? *parsed : appspec::AppSpec{};
  }

  // What a power cut does to the containers: every monitor and init dies.
  void KillContainers() {
    for (const auto& entry : fs::directory_iterator(state_ + "/apps/" + kApp + "/releases")) {
      auto running = runtime::LoadRunningRecord(entry.path().string());
      if (!running.ok()) continue;
      for (pid_t pid : {running->monitor_pid, running->init_pid}) ::kill(pid, SIGKILL);
      for (pid_t pid : {running->monitor_pid, running->init_pid}) {
        for (int i = 0; i < 200 && fs::exists("/proc/" + std::to_string(pid) + "/stat"); ++i) {
          auto stat = ReadTextFileBounded("/proc/" + std::to_string(pid) + "/stat", 4096);
          if (!stat.ok() || stat->find(") Z ") != std::string::npos) break;  // gone or a zombie
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    }
  }

  // The release that must run once the state on disk is resumed.
  static std::string Expected(const runtime::AppStatus& status, bool new_healthy) {
    if (!status.switching) return status.current;
    const runtime::SwitchRecord& sw = *status.switching;
    if (sw.step == runtime::SwitchStep::kRollingBack || !new_healthy) return sw.from;
    return sw.to;
  }

  // Reconciles until `release` alone runs, then checks it is healthy and current.
  void ExpectOnlyRunning(Runtime& rt, const std::string& release, const std::string& tag) {
    for (int pass = 0; pass < 40; ++pass) {
      auto wait = rt.Reconcile();
      ASSERT_TRUE(wait.ok()) << wait.status().ToString();
      auto status = rt.Inspect(kApp);
      ASSERT_TRUE(status.ok());
      if (status->state == runtime::ContainerState::kRunning &&
          status->running_releases == std::vector<std::string>{release}) {
        break;
      }
      std::this_thread::sleep_for(std::min<Duration>(*wait, std::chrono::milliseconds(100)));
    }
    auto status = rt.Inspect(kApp).value();
    EXPECT_FALSE(status.switching.has_value());
    EXPECT_EQ(status.current, release);
    EXPECT_EQ(status.state, runtime::ContainerState::kRunning);
    EXPECT_EQ(status.running_releases, std::vector<std::string>{release});
    bool ticking = false;
    for (int i = 0; i < 100 && !ticking; ++i) {
      auto logs = rt.Logs(kApp, release);
      ticking = logs.ok() && logs->find(tag + " 2") != std::string::npos;
      if (!ticking) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(ticking) << release << " runs but does not tick: restarts " << status.restarts
                         << ", pid " << status.init_pid << ", last exit " << status.last_exit
                         << "\n"
                         << rt.Logs(kApp, release).value_or("(no log)");
  }

  // Switches from the running release to new ones, crashing each switch at
  // the next durable boundary, until a switch completes with none left.
  void CrashEverySwitchStep(const std::string& mode, bool new_healthy, Death death) {
    {
      auto rt = Open(Env::Default()).value();
      auto first = rt->Deploy(Release("t0", true, mode), lower_list_, "r0");
      ASSERT_TRUE(first.ok()) << first.status().ToString();
    }
    std::string running = "r0";
    for (uint64_t boundary = 1;; ++boundary) {
      const std::string release = "r" + std::to_string(boundary);
      SCOPED_TRACE(mode + (new_healthy ? " to a healthy release" : " to an unhealthy one") +
                   (death == Death::kPowerCut ? ", power cut" : ", node killed") + " at boundary " +
                   std::to_string(boundary));
      bool crashed;
      {
        FaultInjectionEnv env(dir_ + "/stash");
        env.CrashAtBoundary(boundary);
        {
          auto rt = Open(env).value();
          auto outcome = rt->Deploy(Release("t" + std::to_string(boundary), new_healthy, mode),
                                    lower_list_, release);
          crashed = env.crashed();
          EXPECT_EQ(outcome.ok(), !crashed) << outcome.status().ToString();
        }
        if (crashed && death == Death::kPowerCut) {
          ASSERT_TRUE(env.PowerCut().ok());
          KillContainers();
        }
      }
      auto rt = Open(Env::Default()).value();
      const auto before = rt->Inspect(kApp).value();
      const std::string expected = Expected(before, new_healthy);
      ASSERT_TRUE(expected == running || expected == release)
          << "the state names " << expected << ", neither the old nor the new release";
      ExpectOnlyRunning(*rt, expected, expected == running ? running_tag_ : TagOf(release));
      if (expected == release) running_tag_ = TagOf(release);
      running = expected;
      if (::testing::Test::HasFailure()) return;
      if (!crashed) {
        std::printf("switch completed after crashes at %llu boundaries\n",
                    static_cast<unsigned long long>(boundary - 1));
        return;
      }
    }
  }

  static std::string TagOf(const std::string& release) { return "t" + release.substr(1); }

  static constexpr const char* kApp = "web";
  std::vector<std::string> lower_list_{};
  std::string running_tag_ = "t0";

  void SetUp() override {
    RuntimeTest::SetUp();
    lower_list_ = {fs::path(lower_).lexically_normal().string()};
  }
};

TEST_F(RuntimeCrashTest, ParallelSwitchKilledAtEveryStep) {
  CrashEverySwitchStep("parallel", true, Death::kProcess);
}
TEST_F(RuntimeCrashTest, ParallelSwitchPowerCutAtEveryStep) {
  CrashEverySwitchStep("parallel", true, Death::kPowerCut);
}
TEST_F(RuntimeCrashTest, StopFirstSwitchKilledAtEveryStep) {
  CrashEverySwitchStep("stop-first", true, Death::kProcess);
}
TEST_F(RuntimeCrashTest, StopFirstSwitchPowerCutAtEveryStep) {
  CrashEverySwitchStep("stop-first", true, Death::kPowerCut);
}
TEST_F(RuntimeCrashTest, RollbackKilledAtEveryStep) {
  CrashEverySwitchStep("parallel", false, Death::kProcess);
}
TEST_F(RuntimeCrashTest, RollbackPowerCutAtEveryStep) {
  CrashEverySwitchStep("stop-first", false, Death::kPowerCut);
}

}  // namespace
}  // namespace flotilla::testing
