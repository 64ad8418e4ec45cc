#include "core/bytes.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

TEST(BytesTest, PercentDecodeDecodesEscapesOfEitherCase) {
  EXPECT_EQ(PercentDecode("a%2Fb%2fc%00d+e").value(), std::string("a/b/c\0d+e", 9));
  EXPECT_EQ(PercentDecode("").value(), "");
  EXPECT_EQ(PercentDecode("%41").value(), "A");
}

TEST(BytesTest, PercentDecodeRefusesMalformedEscapes) {
  for (const char* bad : {"%", "%4", "a%4", "%G1", "%1g", "%%41"}) {
    auto decoded = PercentDecode(bad);
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace flotilla
