#include "core/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <vector>

namespace flotilla {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ManualExecutorTest, RunsTimersInDueOrderAsTimeAdvances) {
  FakeClock clock;
  ManualExecutor executor(clock);
  std::vector<int> ran;
  executor.PostAfter(seconds(30), [&] { ran.push_back(30); });
  executor.PostAfter(seconds(10), [&] { ran.push_back(10); });
  executor.Post([&] { ran.push_back(0); });
  executor.PostAfter(seconds(10), [&] { ran.push_back(11); });  // same due: posting order

  EXPECT_EQ(executor.RunUntilIdle(), 1u);
  EXPECT_EQ(executor.AdvanceBy(seconds(9)), 0u);
  EXPECT_EQ(executor.AdvanceBy(seconds(1)), 2u);
  EXPECT_EQ(executor.AdvanceBy(seconds(60)), 1u);
  EXPECT_EQ(ran, (std::vector<int>{0, 10, 11, 30}));
}

TEST(ManualExecutorTest, TasksSeeTheClockAtTheirDueTime) {
  FakeClock clock;
  ManualExecutor executor(clock);
  const MonoTime start = clock.MonotonicNow();
  Duration seen{};
  // A retry loop with exponential backoff, as a node would write it.
  std::function<void(int)> attempt = [&](int n) {
    if (n == 5) {
      seen = clock.MonotonicNow() - start;
      return;
    }
    executor.PostAfter(seconds(1 << n), [&, n] { attempt(n + 1); });
  };
  attempt(0);
  executor.AdvanceBy(std::chrono::hours(1));
  EXPECT_EQ(seen, seconds(1 + 2 + 4 + 8 + 16));
  EXPECT_EQ(clock.MonotonicNow() - start, std::chrono::hours(1));
}

TEST(ManualExecutorTest, CancelledTimersDoNotRun) {
  FakeClock clock;
  ManualExecutor executor(clock);
  bool ran = false;
  TimerId id = executor.PostAfter(seconds(5), [&] { ran = true; });
  EXPECT_TRUE(executor.Cancel(id));
  EXPECT_FALSE(executor.Cancel(id));
  executor.AdvanceBy(seconds(10));
  EXPECT_FALSE(ran);
}

TEST(FakeClockTest, WallClockCanGoBackwardsButMonotonicCannot) {
  FakeClock clock;
  const WallTime wall = clock.Now();
  const MonoTime mono = clock.MonotonicNow();
  clock.SetWallTime(wall - std::chrono::hours(24 * 365));
  EXPECT_LT(clock.Now(), wall);
  EXPECT_EQ(clock.MonotonicNow(), mono);
  clock.Advance(seconds(3));
  EXPECT_EQ(clock.MonotonicNow() - mono, seconds(3));
}

TEST(ThreadExecutorTest, RunsPostedAndDelayedTasksOnItsThread) {
  ThreadExecutor executor;
  std::promise<std::thread::id> first;
  std::promise<void> delayed;
  std::atomic<bool> cancelled_ran{false};
  const auto start = std::chrono::steady_clock::now();
  executor.PostAfter(milliseconds(50), [&] { delayed.set_value(); });
  TimerId id = executor.PostAfter(milliseconds(20), [&] { cancelled_ran = true; });
  EXPECT_TRUE(executor.Cancel(id));
  executor.Post([&] { first.set_value(std::this_thread::get_id()); });
  EXPECT_NE(first.get_future().get(), std::this_thread::get_id());
  delayed.get_future().get();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(50));
  EXPECT_FALSE(cancelled_ran);
}

}  // namespace
}  // namespace flotilla
