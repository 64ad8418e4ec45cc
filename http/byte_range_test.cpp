#include "http/byte_range.h"

#include <gtest/gtest.h>

namespace flotilla::http {
namespace {

TEST(ResolveRange, SatisfiableForms) {
  EXPECT_FALSE(ResolveRange(std::nullopt, 100)->has_value());
  auto r = ResolveRange("bytes=10-19", 100).value();
  EXPECT_EQ(r->offset, 10u);
  EXPECT_EQ(r->length, 10u);
  r = ResolveRange("bytes=90-", 100).value();
  EXPECT_EQ(r->offset, 90u);
  EXPECT_EQ(r->length, 10u);
  r = ResolveRange("bytes=-30", 100).value();
  EXPECT_EQ(r->offset, 70u);
  EXPECT_EQ(r->length, 30u);
  r = ResolveRange("bytes=95-500", 100).value();  // clamped to the end
  EXPECT_EQ(r->length, 5u);
  r = ResolveRange("bytes=-500", 100).value();
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(r->length, 100u);
}

TEST(ResolveRange, UnsatisfiableOrMalformed) {
  for (const char* bad :
       {"bytes=100-", "bytes=100-200", "bytes=5-4", "bytes=-0", "items=0-1", "bytes=0-1,4-5",
        "bytes=x-1", "bytes=1", "bytes=18446744073709551616-", "bytes= 1-2"}) {
    EXPECT_FALSE(ResolveRange(bad, 100).ok()) << bad;
  }
  EXPECT_FALSE(ResolveRange("bytes=0-", 0).ok());
}

}  // namespace
}  // namespace flotilla::http
