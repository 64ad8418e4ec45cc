#include "core/canonical_json.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

std::string Canon(std::string_view json_text) {
  auto parsed = ParseJsonStrict(json_text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  if (!parsed.ok()) return {};
  auto canon = CanonicalJson(*parsed);
  EXPECT_TRUE(canon.ok()) << canon.status().ToString();
  return canon.ok() ? *canon : std::string();
}

TEST(CanonicalJsonTest, SortsKeysAndDropsWhitespace) {
  EXPECT_EQ(Canon(R"({ "b": 1, "a": {"z": [3, 2, 1], "y": null}, "A": true })"),
            R"({"A":true,"a":{"y":null,"z":[3,2,1]},"b":1})");
}

TEST(CanonicalJsonTest, SortsKeysByUtf8Bytes) {
  // U+00E9 (c3 a9) sorts after 'z' (7a) and before U+4E2D (e4 b8 ad).
  EXPECT_EQ(Canon("{\"\u4e2d\":1,\"z\":2,\"\u00e9\":3,\"Z\":4}"),
            "{\"Z\":4,\"z\":2,\"\u00e9\":3,\"\u4e2d\":1}");
}

TEST(CanonicalJsonTest, EscapesOnlyBackslashAndQuote) {
  Json v = {{"s", std::string("q\"b\\n\nt\tc\x01/\u00e9")}};
  auto canon = CanonicalJson(v);
  ASSERT_TRUE(canon.ok());
  EXPECT_EQ(*canon, std::string("{\"s\":\"q\\\"b\\\\n\nt\tc\x01/\u00e9\"}"));
}

TEST(CanonicalJsonTest, Integers) {
  EXPECT_EQ(
      Canon(R"([0, -1, 42, 9223372036854775807, -9223372036854775808, 18446744073709551615])"),
      "[0,-1,42,9223372036854775807,-9223372036854775808,18446744073709551615]");
}

TEST(CanonicalJsonTest, RefusesFloats) {
  auto parsed = ParseJsonStrict(R"({"x": 1.5})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(CanonicalJson(*parsed).status().code(), StatusCode::kInvalidArgument);
  auto exponent = ParseJsonStrict(R"([1e3])");
  ASSERT_TRUE(exponent.ok());
  EXPECT_FALSE(CanonicalJson(*exponent).ok()) << "1e3 is a float in JSON";
}

TEST(CanonicalJsonTest, RefusesInvalidUtf8WhenEncoding) {
  Json v = std::string("\xc3\x28");
  EXPECT_FALSE(CanonicalJson(v).ok());
  Json overlong = std::string("\xc0\xaf");
  EXPECT_FALSE(CanonicalJson(overlong).ok());
  Json surrogate = std::string("\xed\xa0\x80");
  EXPECT_FALSE(CanonicalJson(surrogate).ok());
}

TEST(CanonicalJsonTest, EmptyContainersAndLiterals) {
  EXPECT_EQ(Canon(R"({"a":{},"b":[],"c":false,"d":""})"), R"({"a":{},"b":[],"c":false,"d":""})");
}

TEST(ParseJsonStrictTest, RefusesDuplicateKeysAtAnyDepth) {
  EXPECT_EQ(ParseJsonStrict(R"({"a":1,"a":2})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseJsonStrict(R"({"x":[{"k":1,"k":1}]})").ok());
  EXPECT_TRUE(ParseJsonStrict(R"({"a":{"a":1},"b":{"a":2}})").ok())
      << "the same key in sibling objects is fine";
}

TEST(ParseJsonStrictTest, RefusesTrailingBytesAndGarbage) {
  EXPECT_FALSE(ParseJsonStrict(R"({"a":1} x)").ok());
  EXPECT_FALSE(ParseJsonStrict(R"({"a":1}{})").ok());
  EXPECT_FALSE(ParseJsonStrict(R"({"a":)").ok());
  EXPECT_FALSE(ParseJsonStrict("").ok());
  EXPECT_FALSE(ParseJsonStrict("{\"a\":\"\xff\"}").ok()) << "invalid UTF-8";
  EXPECT_FALSE(ParseJsonStrict(R"({"a":1} // comment)").ok());
}

TEST(ParseJsonStrictTest, EnforcesSizeAndDepthLimits) {
  EXPECT_EQ(ParseJsonStrict(std::string(100, ' ') + "1", {.max_bytes = 50}).status().code(),
            StatusCode::kResourceExhausted);
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_FALSE(ParseJsonStrict(deep, {.max_depth = 20}).ok());
  EXPECT_TRUE(ParseJsonStrict(deep, {.max_depth = 200}).ok());
}

TEST(CanonicalJsonTest, ParseOfCanonicalIsAFixedPoint) {
  const std::string text =
      R"({"signed":{"_type":"root","expires":"2030-01-01T00:00:00Z","version":3},"x":"\\\""})";
  EXPECT_EQ(Canon(text), text);
  EXPECT_EQ(Canon(Canon(text)), text);
}

}  // namespace
}  // namespace flotilla
