#include "core/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
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

TEST(TimerSlotTest, ScheduleReplacesThePendingTaskAndCancelStopsIt) {
  FakeClock clock;
  ManualExecutor executor(clock);
  std::vector<int> ran;
  TimerSlot slot(executor);
  slot.Schedule(seconds(10), [&] { ran.push_back(10); });
  slot.Schedule(seconds(3), [&] { ran.push_back(3); });
  EXPECT_TRUE(slot.pending());
  executor.AdvanceBy(seconds(60));
  EXPECT_EQ(ran, std::vector<int>{3});
  EXPECT_FALSE(slot.pending());
  // A task may schedule its own slot again (a periodic task).
  std::function<void()> tick = [&] {
    ran.push_back(1);
    if (ran.size() < 4) slot.Schedule(seconds(1), tick);
  };
  slot.Schedule(seconds(1), tick);
  executor.AdvanceBy(seconds(10));
  EXPECT_EQ(ran, (std::vector<int>{3, 1, 1, 1}));
  slot.Schedule(seconds(1), [&] { ran.push_back(99); });
  slot.Cancel();
  executor.AdvanceBy(seconds(10));
  EXPECT_EQ(ran.size(), 4u);
}

TEST(WorkerTest, JobsRunInOrderOnTheWorkerAndResultsComeBackOnTheLoop) {
  FakeClock clock;
  ManualExecutor loop(clock);
  ManualExecutor lane(clock);
  Worker worker(lane, loop);
  std::vector<std::string> seen;
  worker.Run(
      [&] {
        seen.push_back("job 1");
        return 1;
      },
      [&](int r) { seen.push_back("done " + std::to_string(r)); });
  worker.Run(
      [&] {
        seen.push_back("job 2");
        return 2;
      },
      [&](int r) { seen.push_back("done " + std::to_string(r)); });
  EXPECT_EQ(loop.RunUntilIdle(), 0u);  // nothing back before the lane runs
  EXPECT_EQ(lane.RunUntilIdle(), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"job 1", "job 2"}));
  EXPECT_EQ(loop.RunUntilIdle(), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"job 1", "job 2", "done 1", "done 2"}));
}

TEST(WorkerTest, AfterCloseNoJobStartsAndNoResultIsDelivered) {
  FakeClock clock;
  ManualExecutor loop(clock);
  ManualExecutor lane(clock);
  auto worker = std::make_unique<Worker>(lane, loop);
  int jobs = 0, dones = 0;
  worker->Run([&] { return ++jobs; }, [&](int) { ++dones; });
  lane.RunUntilIdle();  // finished, its result waits on the loop
  worker->Run([&] { return ++jobs; }, [&](int) { ++dones; });
  worker.reset();  // closes
  lane.RunUntilIdle();
  loop.RunUntilIdle();
  EXPECT_EQ(jobs, 1);
  EXPECT_EQ(dones, 0);
}

// The point of a worker: a job that blocks does not block the loop.
TEST(WorkerTest, ABlockedJobOnAThreadLeavesTheLoopServing) {
  std::unique_ptr<Worker> worker;  // destroyed after both threads joined
  ThreadExecutor loop;
  ThreadExecutor lane;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<int> result;
  std::promise<void> loop_ran;
  loop.Post([&] {
    worker = std::make_unique<Worker>(lane, loop);
    worker->Run(
        [released] {
          released.wait();
          return 7;
        },
        [&](int r) { result.set_value(r); });
  });
  loop.Post([&] { loop_ran.set_value(); });
  EXPECT_EQ(loop_ran.get_future().wait_for(seconds(5)), std::future_status::ready);
  release.set_value();
  auto got = result.get_future();
  ASSERT_EQ(got.wait_for(seconds(5)), std::future_status::ready);
  EXPECT_EQ(got.get(), 7);
}

}  // namespace
}  // namespace flotilla
