// The human status's formatting helpers.
#include "node/control/status_format.h"

#include <gtest/gtest.h>

namespace flotilla::node {
namespace {

TEST(StatusFormat, UtcDatesAreRightBeforeAndAfter2038) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01 00:00:00");
  EXPECT_EQ(FormatUtc(1796398384), "2026-12-04 15:33:04");
  // One second past a signed 32-bit time_t (where gmtime wraps on armhf).
  EXPECT_EQ(FormatUtc(2147483648), "2038-01-19 03:14:08");
  EXPECT_EQ(FormatUtc(4102444800), "2100-01-01 00:00:00");
  EXPECT_EQ(FormatUtc(951825599), "2000-02-29 11:59:59") << "a leap day";
}

TEST(StatusFormat, DurationsAndBytes) {
  EXPECT_EQ(FormatDuration(12), "12s");
  EXPECT_EQ(FormatDuration(245), "4m05s");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatBytes(512), "512 B");
}

}  // namespace
}  // namespace flotilla::node
