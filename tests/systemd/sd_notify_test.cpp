// sd_notify without libsystemd: datagrams to a NOTIFY_SOCKET the test owns
// (a path and an abstract name), the environment systemd sets, and the
// executor watchdog whose pings stop when the event loop is stuck.
#include "node/systemd/sd_notify.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <random>

#include "tests/support/test_util.h"
#include "tests/systemd/notify_listener.h"

namespace flotilla::node {
namespace {

using flotilla::testing::HasLine;
using flotilla::testing::NotifyListener;
using flotilla::testing::ValueOf;
using std::chrono::milliseconds;

class SdNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = flotilla::testing::MakeTempDir("sd-notify-");
    ASSERT_FALSE(dir_.empty());
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
  }
  void TearDown() override {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
    if (!dir_.empty()) flotilla::testing::RunShell("rm -rf " + dir_);
  }
  // A fresh abstract name, so that parallel runs never share one.
  static std::string AbstractName() {
    return "@flotilla-sd-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(std::random_device{}());
  }
  std::string dir_;
};

TEST_F(SdNotify, PathSocketReceivesOneDatagramWithTheSenderPid) {
  NotifyListener listener;
  const std::string path = dir_ + "/notify";
  ASSERT_TRUE(listener.Bind(path));
  auto notifier = SdNotifier::FromValues(path, "", "");
  ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
  EXPECT_TRUE(notifier->enabled());
  EXPECT_FALSE(notifier->watchdog_period());
  ASSERT_TRUE(notifier->Notify("READY=1\nSTATUS=up").ok());
  auto got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "READY=1\nSTATUS=up");
  EXPECT_EQ(got->pid, ::getpid());
  EXPECT_TRUE(HasLine(*got, "READY=1"));
  EXPECT_EQ(ValueOf(*got, "STATUS"), "up");
}

TEST_F(SdNotify, AbstractSocketReceivesEveryState) {
  NotifyListener listener;
  const std::string name = AbstractName();
  ASSERT_TRUE(listener.Bind(name));
  auto notifier = SdNotifier::FromValues(name, "", "");
  ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
  for (const std::string state : {"READY=1", "STATUS=fetching", "WATCHDOG=1", "STOPPING=1"}) {
    ASSERT_TRUE(notifier->Notify(state).ok()) << state;
    auto got = listener.Receive(milliseconds(2000));
    ASSERT_TRUE(got) << state;
    EXPECT_EQ(got->text, state);
  }
}

TEST_F(SdNotify, EnvironmentGivesSocketAndWatchdogAndIsUnsetForChildren) {
  NotifyListener listener;
  const std::string name = AbstractName();
  ASSERT_TRUE(listener.Bind(name));
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "1500000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  Status problem = Internal("not set");
  SdNotifier notifier = SdNotifier::FromEnvironment(/*unset_environment=*/true, &problem);
  EXPECT_TRUE(problem.ok()) << problem.ToString();
  ASSERT_TRUE(notifier.enabled());
  ASSERT_TRUE(notifier.watchdog_period());
  EXPECT_EQ(*notifier.watchdog_period(), std::chrono::microseconds(1500000));
  EXPECT_EQ(::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(::getenv("WATCHDOG_PID"), nullptr);
  ASSERT_TRUE(notifier.Notify("WATCHDOG=1").ok());
  auto got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "WATCHDOG=1");
}

TEST_F(SdNotify, EnvironmentKeptWhenNotAskedToUnset) {
  ::setenv("NOTIFY_SOCKET", "@x", 1);
  Status problem;
  SdNotifier notifier = SdNotifier::FromEnvironment(/*unset_environment=*/false, &problem);
  EXPECT_TRUE(notifier.enabled());
  ASSERT_NE(::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_STREQ(::getenv("NOTIFY_SOCKET"), "@x");
}

TEST_F(SdNotify, WatchdogMeantForAnotherProcessIsIgnored) {
  auto notifier = SdNotifier::FromValues("@x", "1000000", std::to_string(::getpid() + 1));
  ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
  EXPECT_TRUE(notifier->enabled());
  EXPECT_FALSE(notifier->watchdog_period());
  // Without WATCHDOG_PID the watchdog is this process's.
  auto own = SdNotifier::FromValues("@x", "1000000", "");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->watchdog_period(), std::chrono::microseconds(1000000));
}

TEST_F(SdNotify, WithoutSocketEveryNotifyIsANoOp) {
  Status problem;
  SdNotifier notifier = SdNotifier::FromEnvironment(/*unset_environment=*/true, &problem);
  EXPECT_TRUE(problem.ok());
  EXPECT_FALSE(notifier.enabled());
  EXPECT_TRUE(notifier.Notify("READY=1").ok());
  EXPECT_TRUE(SdNotifier().Notify("WATCHDOG=1").ok());
}

TEST_F(SdNotify, MalformedValuesAreErrorsNamingTheVariable) {
  for (const char* socket : {"relative/path", "@", "/", "x"}) {
    auto bad = SdNotifier::FromValues(socket, "", "");
    ASSERT_FALSE(bad.ok()) << socket;
    EXPECT_NE(bad.status().message().find("NOTIFY_SOCKET"), std::string::npos);
  }
  EXPECT_FALSE(SdNotifier::FromValues("/" + std::string(120, 'a'), "", "").ok());
  for (const char* usec : {"abc", "0", "-5", "12x", " 5"}) {
    auto bad = SdNotifier::FromValues("@x", usec, "");
    ASSERT_FALSE(bad.ok()) << usec;
    EXPECT_NE(bad.status().message().find("WATCHDOG_USEC"), std::string::npos) << usec;
  }
  EXPECT_FALSE(SdNotifier::FromValues("@x", "1000", "pid").ok());

  // From the environment: the problem is reported, the socket still used.
  NotifyListener listener;
  const std::string name = AbstractName();
  ASSERT_TRUE(listener.Bind(name));
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "soon", 1);
  Status problem;
  SdNotifier notifier = SdNotifier::FromEnvironment(/*unset_environment=*/true, &problem);
  EXPECT_FALSE(problem.ok());
  EXPECT_NE(problem.message().find("WATCHDOG_USEC"), std::string::npos);
  EXPECT_FALSE(notifier.watchdog_period());
  ASSERT_TRUE(notifier.Notify("READY=1").ok());
  EXPECT_TRUE(listener.Receive(milliseconds(2000)));
}

TEST_F(SdNotify, UnreachableSocketAndOversizeStateAreErrorsNotCrashes) {
  auto absent = SdNotifier::FromValues(dir_ + "/nobody-listens", "", "");
  ASSERT_TRUE(absent.ok());
  Status sent = absent->Notify("READY=1");
  EXPECT_EQ(sent.code(), StatusCode::kIOError) << sent.ToString();
  EXPECT_NE(sent.message().find("nobody-listens"), std::string::npos);

  NotifyListener listener;
  ASSERT_TRUE(listener.Bind(dir_ + "/notify"));
  auto notifier = SdNotifier::FromValues(dir_ + "/notify", "", "");
  ASSERT_TRUE(notifier.ok());
  EXPECT_EQ(notifier->Notify(std::string(5000, 'x')).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(notifier->Notify("").code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(listener.Receive(milliseconds(200)));
}

TEST_F(SdNotify, FullQueueDropsTheNotificationInsteadOfBlocking) {
  // Nobody reads: the kernel queue fills, and Notify returns an error at once.
  NotifyListener listener;
  ASSERT_TRUE(listener.Bind(dir_ + "/notify"));
  auto notifier = SdNotifier::FromValues(dir_ + "/notify", "", "");
  ASSERT_TRUE(notifier.ok());
  Status last;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000 && last.ok(); ++i) last = notifier->Notify(std::string(2048, 'w'));
  EXPECT_FALSE(last.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(SdStatusLine, IsOneBoundedLine) {
  EXPECT_EQ(StatusLine("a\nb\r\nc"), "STATUS=a; b; c");
  const std::string line = StatusLine(std::string(5000, 's'));
  EXPECT_LE(line.size(), 1100u);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

class ExecutorWatchdogTest : public SdNotify {};

TEST_F(ExecutorWatchdogTest, PingsRunOnlyAsExecutorTasksAndNeverPileUp) {
  NotifyListener listener;
  const std::string name = AbstractName();
  ASSERT_TRUE(listener.Bind(name));
  auto notifier = SdNotifier::FromValues(name, "1000000", "");
  ASSERT_TRUE(notifier.ok());
  FakeClock clock;
  ManualExecutor executor(clock);
  int calls = 0;
  ExecutorWatchdog watchdog(*notifier, executor, [&] { return "app " + std::to_string(++calls); });

  // The loop does not run: one ping is pending, nothing is sent, further
  // ticks add nothing.
  EXPECT_TRUE(watchdog.Tick());
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(watchdog.Tick());
  EXPECT_FALSE(listener.Receive(milliseconds(200)));
  EXPECT_EQ(watchdog.pings_sent(), 0u);

  // The loop runs again: exactly one ping, with a status computed then.
  EXPECT_EQ(executor.RunUntilIdle(), 1u);
  auto got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "WATCHDOG=1\nSTATUS=app 1");
  EXPECT_EQ(watchdog.pings_sent(), 1u);
  EXPECT_TRUE(watchdog.last_error().ok());
  EXPECT_FALSE(listener.Receive(milliseconds(100)));

  EXPECT_TRUE(watchdog.Tick());
  EXPECT_EQ(executor.RunUntilIdle(), 1u);
  got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(ValueOf(*got, "STATUS"), "app 2");
}

TEST_F(ExecutorWatchdogTest, StuckThreadExecutorStopsThePingsUntilItMovesAgain) {
  NotifyListener listener;
  ASSERT_TRUE(listener.Bind(dir_ + "/notify"));
  auto notifier = SdNotifier::FromValues(dir_ + "/notify", "500000", "");
  ASSERT_TRUE(notifier.ok());
  ThreadExecutor executor;
  ExecutorWatchdog watchdog(*notifier, executor);
  ASSERT_TRUE(watchdog.Tick());
  auto got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "WATCHDOG=1");

  // A task that blocks the loop: ticks go on, no ping reaches the socket.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  executor.Post([released] { released.wait(); });
  for (int i = 0; i < 8; ++i) {
    watchdog.Tick();
    EXPECT_FALSE(listener.Receive(milliseconds(50))) << "tick " << i;
  }
  release.set_value();
  got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "WATCHDOG=1");
  EXPECT_FALSE(listener.Receive(milliseconds(200)));  // one ping, not one per tick
  EXPECT_EQ(watchdog.pings_sent(), 2u);
}

TEST_F(ExecutorWatchdogTest, WithoutWatchdogOnlyStatusIsSentAndErrorsAreKept) {
  FakeClock clock;
  ManualExecutor executor(clock);
  auto absent = SdNotifier::FromValues(dir_ + "/nobody", "", "");
  ASSERT_TRUE(absent.ok());
  {
    ExecutorWatchdog watchdog(*absent, executor, [] { return std::string("idle"); });
    ASSERT_TRUE(watchdog.Tick());
    EXPECT_EQ(executor.RunUntilIdle(), 1u);
    EXPECT_EQ(watchdog.pings_sent(), 0u);
    EXPECT_EQ(watchdog.last_error().code(), StatusCode::kIOError);
    // A ping still pending when the watchdog goes away runs safely later.
    ASSERT_TRUE(watchdog.Tick());
  }
  EXPECT_EQ(executor.RunUntilIdle(), 1u);

  NotifyListener listener;
  ASSERT_TRUE(listener.Bind(dir_ + "/notify"));
  auto notifier = SdNotifier::FromValues(dir_ + "/notify", "", "");
  ASSERT_TRUE(notifier.ok());
  ExecutorWatchdog status_only(*notifier, executor, [] { return std::string("idle"); });
  ASSERT_TRUE(status_only.Tick());
  executor.RunUntilIdle();
  auto got = listener.Receive(milliseconds(2000));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "STATUS=idle");
}

}  // namespace
}  // namespace flotilla::node
