// Release switches: healthy, unhealthy (rolled back), stop-first, the
// operator's deploy beside a supervising node, health rechecks. The switch
// interrupted at every durable step is runtime_crash_test.cpp.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file_io.h"
#include "tests/runtime/runtime_fixture.h"

namespace flotilla::testing {
namespace {

class RuntimeSwitchTest : public RuntimeTest {
 protected:
  // A release that becomes healthy (the exec check finds /tmp/ok) or never does.
  Json Release(const std::string& app, const std::string& tag, bool healthy,
               const std::string& mode = "parallel") {
    std::string start = healthy ? "touch /tmp/ok; " : "";
    Json spec = BaseSpec(app, {"/bin/sh", "-c", start + "exec /probe tick " + tag + " 100"});
    spec["health"] = {
        {"type", "exec"}, {"command", {"/bin/sh", "-c", "test -e /tmp/ok"}}, {"interval_ms", 100}};
    spec["switch"] = {{"mode", mode}, {"healthy_deadline_ms", 1500}};
    spec["restart"] = {{"policy", "on-failure"}};
    return spec;
  }

  // Exactly one release of `app` runs, it is `release`, no switch is pending,
  // and its output is the one `tag` says.
  void ExpectOnlyRunning(const std::string& app, const std::string& release,
                         const std::string& tag) {
    auto status = Ls()[app];
    EXPECT_TRUE(status["switch"].is_null()) << status.dump();
    EXPECT_EQ(status["current"], release) << status.dump();
    EXPECT_EQ(status["state"], "running") << status.dump();
    EXPECT_EQ(status["running_releases"], Json::array({release})) << status.dump();
    EXPECT_TRUE(WaitForLog(app, tag + " 2", 5, release)) << Logs(app, release);
  }
};

TEST_F(RuntimeSwitchTest, HealthySwitchStopsTheOldRelease) {
  ASSERT_EQ(Deploy(Release("web", "one", true), "r1").exit_code, 0);
  ExpectOnlyRunning("web", "r1", "one");
  auto r = Deploy(Release("web", "two", true), "r2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("switched"), std::string::npos);
  ExpectOnlyRunning("web", "r2", "two");
  EXPECT_EQ(Ls()["web"]["previous"], "r1");
  // The old release got SIGTERM (forwarded by init) and ended cleanly.
  EXPECT_NE(Logs("web", "r1").find("one: got SIGTERM"), std::string::npos);
}

TEST_F(RuntimeSwitchTest, UnhealthyReleaseIsRolledBackAndTheOldKeepsRunning) {
  ASSERT_EQ(Deploy(Release("web", "one", true), "r1").exit_code, 0);
  auto pid_before = Ls()["web"]["pid"];
  auto r = Deploy(Release("web", "bad", false), "r2");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("rolled back"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not healthy after 1500 ms"), std::string::npos) << r.output;
  ExpectOnlyRunning("web", "r1", "one");
  EXPECT_EQ(Ls()["web"]["pid"], pid_before);  // never interrupted
  // The rolled-back release did run, and was stopped.
  EXPECT_NE(Logs("web", "r2").find("bad 0"), std::string::npos);
}

TEST_F(RuntimeSwitchTest, StopFirstSwitchAndItsRollbackRestartTheOld) {
  ASSERT_EQ(Deploy(Release("screen", "one", true, "stop-first"), "r1").exit_code, 0);
  auto pid1 = Ls()["screen"]["pid"];
  ASSERT_EQ(Deploy(Release("screen", "bad", false, "stop-first"), "r2").exit_code, 3);
  ExpectOnlyRunning("screen", "r1", "one");
  EXPECT_NE(Ls()["screen"]["pid"], pid1);  // it was stopped first, then brought back
  ASSERT_EQ(Deploy(Release("screen", "two", true, "stop-first"), "r3").exit_code, 0);
  ExpectOnlyRunning("screen", "r3", "two");
}

TEST_F(RuntimeSwitchTest, HttpHealthCheckAndRollbackCommand) {
  const int port = 20000 + ::getpid() % 20000;
  Json spec = BaseSpec("api", {"/probe", "http", std::to_string(port)});
  spec["health"] = {{"type", "http"}, {"port", port}, {"path", "/healthz"}, {"interval_ms", 50}};
  ASSERT_EQ(Deploy(spec, "r1").exit_code, 0) << Logs("api", "r1");
  ASSERT_EQ(Deploy(Release("api", "two", true), "r2").exit_code, 0);
  auto back = App("rollback api");
  EXPECT_EQ(back.exit_code, 0) << back.output;
  auto status = Ls()["api"];
  EXPECT_EQ(status["current"], "r1");
  EXPECT_EQ(status["previous"], "r2");
  EXPECT_EQ(status["running_releases"], Json::array({"r1"}));
}

// An operator's `app deploy` while the node supervises: the per-app lock
// keeps the supervisor from resuming a switch that the deploy is driving.
TEST_F(RuntimeSwitchTest, DeployWhileTheNodeSupervises) {
  pid_t supervisor = ::fork();
  if (supervisor == 0) {
    std::string node = "exec env FLOTILLA_MONITOR=" + std::string(FLOTILLA_MONITOR_BINARY) + " " +
                       BinaryPath("flotilla-node") + " app supervise --state-dir " + state_;
    ::execl("/bin/sh", "sh", "-c", node.c_str(), nullptr);
    ::_exit(127);
  }
  EXPECT_EQ(Deploy(Release("web", "one", true), "r1").exit_code, 0);
  EXPECT_EQ(Deploy(Release("web", "two", true), "r2").exit_code, 0);
  ExpectOnlyRunning("web", "r2", "two");
  EXPECT_EQ(Deploy(Release("web", "bad", false), "r3").exit_code, 3);
  ExpectOnlyRunning("web", "r2", "two");
  EXPECT_EQ(Ls()["web"]["restarts"], 0);  // the supervisor never restarted anything
  ::kill(supervisor, SIGKILL);
  ::waitpid(supervisor, nullptr, 0);
}

// Supervision with health rechecks: a healthy running app is probed and left
// alone; once its check fails `failure_threshold` times in a row it is
// stopped (gracefully) as unhealthy, and the restart policy decides: on-failure
// restarts it, "no" leaves it stopped. The check fails while the file
// /flags/sick exists in the app's volume; a starting container removes it.
TEST_F(RuntimeSwitchTest, RunningAppsAreRecheckedAndUnhealthyOnesHandledByRestartPolicy) {
  auto spec = [](const std::string& app, const std::string& policy) {
    Json s =
        BaseSpec(app, {"/bin/sh", "-c", "rm -f /flags/sick; exec /probe tick " + app + " 100"});
    s["mounts"] = {{{"type", "volume"}, {"name", "flags"}, {"destination", "/flags"}}};
    s["health"] = {{"type", "exec"},
                   {"command", {"/bin/sh", "-c", "test ! -e /flags/sick"}},
                   {"interval_ms", 100},
                   {"recheck_interval_ms", 200},
                   {"failure_threshold", 2}};
    s["restart"] = {{"policy", policy}, {"backoff_initial_ms", 300}};
    return s;
  };
  ASSERT_EQ(Deploy(spec("live", "on-failure"), "r1").exit_code, 0);
  ASSERT_EQ(Deploy(spec("once", "no"), "r1").exit_code, 0);
  const Json live_pid = Ls()["live"]["pid"];
  pid_t supervisor = ::fork();
  if (supervisor == 0) {
    std::string node = "exec env FLOTILLA_MONITOR=" + std::string(FLOTILLA_MONITOR_BINARY) + " " +
                       BinaryPath("flotilla-node") + " app supervise --state-dir " + state_;
    ::execl("/bin/sh", "sh", "-c", node.c_str(), nullptr);
    ::_exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{supervisor};
  // Rechecked every 200 ms for 1.5 s, healthy every time: left alone.
  ::usleep(1500 * 1000);
  EXPECT_EQ(Ls()["live"]["pid"], live_pid);
  EXPECT_EQ(Ls()["live"]["restarts"], 0);

  for (const char* app : {"live", "once"}) {
    ASSERT_TRUE(WriteFileAtomic(state_ + "/apps/" + app + "/volumes/flags/sick", "").ok());
  }
  EXPECT_TRUE(WaitFor([&] { return Ls()["live"]["restarts"] == 1; }, 20)) << Ls()["live"].dump();
  EXPECT_TRUE(WaitFor([&] { return Ls()["live"]["state"] == "running"; }, 10));
  auto live = Ls()["live"];
  EXPECT_NE(live["pid"], live_pid);
  const std::string why = live["last_exit"].get<std::string>();
  EXPECT_NE(why.find("unhealthy: 2 failed health checks in a row"), std::string::npos) << why;
  // Stopped with SIGTERM, forwarded to the app, which ended cleanly.
  EXPECT_NE(why.find("stopped: exited with code 0"), std::string::npos) << why;

  EXPECT_TRUE(WaitFor([&] { return Ls()["once"]["state"] == "exited"; }, 20));
  EXPECT_NE(Ls()["once"]["last_exit"].get<std::string>().find("unhealthy"), std::string::npos);
  // The restarted one is healthy again and stays; the one with policy "no" stays stopped.
  ::usleep(1500 * 1000);
  EXPECT_EQ(Ls()["live"]["restarts"], 1);
  EXPECT_EQ(Ls()["live"]["pid"], live["pid"]);
  EXPECT_EQ(Ls()["once"]["state"], "exited");
  EXPECT_EQ(Ls()["once"]["restarts"], 0);
}

}  // namespace
}  // namespace flotilla::testing
