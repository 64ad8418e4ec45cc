#include "sim/delay_line.h"

#include <gtest/gtest.h>

namespace flotilla::sim {
namespace {

using std::chrono::microseconds;

MonoTime T(int64_t us) { return MonoTime(microseconds(us)); }

Bytes Frame(uint8_t tag, size_t size = 100) { return Bytes(size, tag); }

TEST(DelayQueueTest, ReleasesEachFrameExactlyAfterTheDelay) {
  DelayQueue q(DelaySpec{50'000, 0, 1 << 20}, 1);
  ASSERT_TRUE(q.Push(T(0), Frame(1)));
  ASSERT_TRUE(q.Push(T(10'000), Frame(2)));
  Bytes out;
  EXPECT_FALSE(q.PopDue(T(49'999), out));
  ASSERT_TRUE(q.PopDue(T(50'000), out));
  EXPECT_EQ(out, Frame(1));
  EXPECT_EQ(q.next_due(), T(60'000));
  EXPECT_FALSE(q.PopDue(T(59'999), out));
  ASSERT_TRUE(q.PopDue(T(60'000), out));
  EXPECT_EQ(out, Frame(2));
  EXPECT_TRUE(q.empty());
}

TEST(DelayQueueTest, JitterStaysWithinBoundsAndNeverReorders) {
  DelayQueue q(DelaySpec{20'000, 5'000, 64 << 20}, 42);
  int64_t min_delay = INT64_MAX, max_delay = 0;
  MonoTime last_due = T(0);
  for (int i = 0; i < 10'000; ++i) {
    // One frame every 10 ms: far apart, so ordering never stretches a delay.
    MonoTime arrival = T(int64_t(i) * 10'000);
    ASSERT_TRUE(q.Push(arrival, Frame(uint8_t(i))));
    MonoTime due = q.next_due();
    EXPECT_GE(due, last_due);
    last_due = due;
    int64_t d = std::chrono::duration_cast<microseconds>(due - arrival).count();
    min_delay = std::min(min_delay, d);
    max_delay = std::max(max_delay, d);
    Bytes out;
    ASSERT_TRUE(q.PopDue(due, out));
    EXPECT_EQ(out[0], uint8_t(i));
  }
  EXPECT_GE(min_delay, 15'000);
  EXPECT_LE(max_delay, 25'000);
  // Uniform over +-5 ms: 10k samples reach close to both ends.
  EXPECT_LT(min_delay, 15'500);
  EXPECT_GT(max_delay, 24'500);
}

TEST(DelayQueueTest, BackToBackFramesKeepTheirOrderUnderJitter) {
  DelayQueue q(DelaySpec{10'000, 10'000, 1 << 20}, 7);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.Push(T(i), Frame(uint8_t(i))));
  Bytes out;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(q.PopDue(T(1'000'000), out));
    EXPECT_EQ(out[0], uint8_t(i));
  }
}

TEST(DelayQueueTest, QueueMemoryIsBoundedByTailDrop) {
  DelayQueue q(DelaySpec{1'000'000, 0, 1000}, 1);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(q.Push(T(i), Frame(1, 100)));
  EXPECT_FALSE(q.Push(T(11), Frame(1, 100)));
  EXPECT_FALSE(q.Push(T(12), Frame(1, 1)));
  EXPECT_EQ(q.queued_bytes(), 1000u);
  EXPECT_EQ(q.dropped(), 2u);
  Bytes out;
  ASSERT_TRUE(q.PopDue(T(1'000'000), out));
  EXPECT_EQ(q.queued_bytes(), 900u);
  EXPECT_TRUE(q.Push(T(13), Frame(1, 100)));
}

}  // namespace
}  // namespace flotilla::sim
