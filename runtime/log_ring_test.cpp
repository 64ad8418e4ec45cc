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

}  // namespace
}  // namespace flotilla::runtime
