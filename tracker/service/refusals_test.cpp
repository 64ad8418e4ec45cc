#include "tracker/service/refusals.h"

#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

TEST(RefusalLog, CountsEveryRefusal) {
  FakeClock clock;
  TrackerMetrics metrics;
  RefusalLog log(clock, metrics, std::chrono::seconds(10));
  for (int i = 0; i < 1000; ++i) log.Refuse("announce_device_peers", "device 'x'");
  log.Refuse("enrol_rate", "enrolment of 'y'");
  const std::string text = metrics.Render({});
  EXPECT_NE(text.find("flotilla_refusals_total{kind=\"announce_device_peers\"} 1000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("flotilla_refusals_total{kind=\"enrol_rate\"} 1"), std::string::npos);
}

TEST(TokenBucket, AllowsTheBurstThenTheRate) {
  FakeClock clock;
  TokenBucket bucket(3, 1, clock.MonotonicNow());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.Take(clock.MonotonicNow())) << i;
  EXPECT_FALSE(bucket.Take(clock.MonotonicNow()));
  clock.Advance(std::chrono::milliseconds(1100));
  EXPECT_TRUE(bucket.Take(clock.MonotonicNow()));
  EXPECT_FALSE(bucket.Take(clock.MonotonicNow()));
  clock.Advance(std::chrono::hours(1));  // refills up to the burst, no further
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.Take(clock.MonotonicNow())) << i;
  EXPECT_FALSE(bucket.Take(clock.MonotonicNow()));
}

}  // namespace
}  // namespace flotilla::tracker
