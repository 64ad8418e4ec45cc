#include "runtime/log_ring.h"

#include <gtest/gtest.h>

namespace flotilla::runtime {
namespace {

TEST(LogRing, KeepsEverythingUnderCapacity) {
  LogRing ring(64);
  ring.Append("one\n");
  ring.Append("two\n");
  EXPECT_EQ(ring.Contents(), "one\ntwo\n");
  EXPECT_EQ(ring.dropped_bytes(), 0u);
}

TEST(LogRing, KeepsTheNewestBytesFromALineStart) {
  LogRing ring(16);
  for (int i = 0; i < 10; ++i) ring.Append("line " + std::to_string(i) + "\n");
  // 70 bytes written, 16 kept: "e 7\nline 8\nline 9\n" minus the partial first line.
  EXPECT_EQ(ring.Contents(), "line 8\nline 9\n");
  EXPECT_EQ(ring.dropped_bytes(), 70u - 16u);
}

TEST(LogRing, OneWriteLargerThanTheRing) {
  LogRing ring(8);
  ring.Append("abc\n");
  ring.Append("0123456789\nxyz\n");
  EXPECT_EQ(ring.Contents(), "xyz\n");
}

TEST(LogRing, LinesSinceAMomentStartAtTheFirstLineOfThatSecond) {
  LogRing ring(1024);
  ring.Append("a1\na2\n", 100);
  ring.Append("b1\n", 105);
  ring.Append("b2\n", 105);
  ring.Append("c1 partial", 110);
  ring.Append(" still c1\nc2\n", 111);  // the line that starts in it (c2) has second 111
  EXPECT_EQ(ring.ContentsSince(0), ring.Contents());
  EXPECT_EQ(ring.ContentsSince(100), "a1\na2\nb1\nb2\nc1 partial still c1\nc2\n");
  EXPECT_EQ(ring.ContentsSince(101), "b1\nb2\nc1 partial still c1\nc2\n");
  EXPECT_EQ(ring.ContentsSince(105), "b1\nb2\nc1 partial still c1\nc2\n");
  EXPECT_EQ(ring.ContentsSince(106), "c1 partial still c1\nc2\n");
  EXPECT_EQ(ring.ContentsSince(111), "c2\n");
  EXPECT_EQ(ring.ContentsSince(112), "");
}

TEST(LogRing, LinesSinceAMomentAfterTheRingWrapped) {
  LogRing ring(16);
  for (int i = 0; i < 10; ++i) ring.Append("line " + std::to_string(i) + "\n", 100 + i);
  ASSERT_EQ(ring.Contents(), "line 8\nline 9\n");
  EXPECT_EQ(ring.ContentsSince(100), "line 8\nline 9\n");  // older times went with their lines
  EXPECT_EQ(ring.ContentsSince(108), "line 8\nline 9\n");
  EXPECT_EQ(ring.ContentsSince(109), "line 9\n");
  EXPECT_EQ(ring.ContentsSince(110), "");
}

TEST(LogRing, KeepsABoundedNumberOfLineTimes) {
  LogRing ring(1 << 20);
  const int seconds = static_cast<int>(LogRing::kMaxLineTimes) + 100;
  for (int i = 0; i < seconds; ++i) ring.Append("t" + std::to_string(i) + "\n", i + 1);
  // The first 100 seconds' times are forgotten: their lines count as older
  // than every time kept, so asking from before those returns everything.
  EXPECT_EQ(ring.ContentsSince(1), ring.Contents());
  EXPECT_EQ(ring.ContentsSince(seconds), "t" + std::to_string(seconds - 1) + "\n");
  const std::string from_500 = ring.ContentsSince(500);
  EXPECT_TRUE(from_500.starts_with("t499\n")) << from_500.substr(0, 20);
}

}  // namespace
}  // namespace flotilla::runtime
