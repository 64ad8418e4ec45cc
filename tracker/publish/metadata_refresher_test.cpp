#include "tracker/publish/metadata_refresher.h"

#include <gtest/gtest.h>

#include <vector>

namespace flotilla::tracker {
namespace {

// Records when it was called; fails on the calls listed in `fail_on`.
class RecordingRefresher : public MetadataRefresher {
 public:
  Result<Duration> Refresh(WallTime now) override {
    calls.push_back(now);
    if (calls.size() == fail_on) return Unavailable("signing key busy");
    return Duration(std::chrono::hours(1));
  }
  std::vector<WallTime> calls;
  size_t fail_on = 0;
};

TEST(RefreshSchedule, CallsTheRefresherWhenItAsksAndRetriesAfterFailure) {
  FakeClock clock;
  ManualExecutor executor(clock);
  RecordingRefresher refresher;
  refresher.fail_on = 2;
  const WallTime start = clock.Now();
  {
    RefreshSchedule schedule(executor, clock, refresher, std::chrono::minutes(5));
    schedule.Start();
    executor.RunUntilIdle();
    ASSERT_EQ(refresher.calls.size(), 1u);
    executor.AdvanceBy(std::chrono::minutes(59));
    EXPECT_EQ(refresher.calls.size(), 1u);
    executor.AdvanceBy(std::chrono::minutes(1));  // the 2nd call fails
    ASSERT_EQ(refresher.calls.size(), 2u);
    executor.AdvanceBy(std::chrono::minutes(5));  // retried after 5 minutes
    ASSERT_EQ(refresher.calls.size(), 3u);
    EXPECT_EQ(refresher.calls[2] - start, std::chrono::minutes(65));
    EXPECT_EQ(schedule.successes(), 2);
    EXPECT_EQ(schedule.failures(), 1);
  }
  // Once the schedule is gone nothing runs.
  executor.AdvanceBy(std::chrono::hours(5));
  EXPECT_EQ(refresher.calls.size(), 3u);
}

TEST(RefreshSchedule, RunsOnARealThreadExecutor) {
  RecordingRefresher refresher;
  ThreadExecutor executor;
  RefreshSchedule schedule(executor, SystemClock::Instance(), refresher);
  schedule.Start();
  for (int i = 0; i < 200 && schedule.successes() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(schedule.successes(), 1);
}

}  // namespace
}  // namespace flotilla::tracker
