#include "core/json_object_reader.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

Json Parse(std::string_view text) {
  auto json = ParseJsonStrict(text);
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  return json.ok() ? *json : Json();
}

struct Lan {
  bool enabled = false;
  std::string group = "239.0.0.1";
  uint16_t port = 7000;
  int offset = 0;
  double ratio = 0.5;
  std::vector<std::string> names;
};

Status ReadLan(const Json& json, Lan& lan) {
  JsonObjectReader r(json, "lan");
  r.Require({"enabled"});
  r.Bool("enabled", lan.enabled);
  r.String("group", lan.group);
  r.Unsigned("port", lan.port, 1, 65535);
  r.Int("offset", lan.offset, -10, 10);
  r.Number("ratio", lan.ratio, 0, 1);
  r.Strings("names", lan.names);
  return r.Finish();
}

std::string ErrorOf(std::string_view text) {
  Lan lan;
  Status st = ReadLan(Parse(text), lan);
  EXPECT_FALSE(st.ok()) << text;
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  return st.message();
}

TEST(JsonObjectReaderTest, ReadsPresentMembersAndKeepsDefaultsForAbsentOrNullOnes) {
  Lan lan;
  ASSERT_TRUE(ReadLan(Parse(R"({"enabled": true, "port": 80, "offset": -3, "ratio": 1,
                               "names": ["a", "b"], "group": null})"),
                      lan)
                  .ok());
  EXPECT_TRUE(lan.enabled);
  EXPECT_EQ(lan.group, "239.0.0.1");
  EXPECT_EQ(lan.port, 80);
  EXPECT_EQ(lan.offset, -3);
  EXPECT_EQ(lan.ratio, 1.0);
  EXPECT_EQ(lan.names, (std::vector<std::string>{"a", "b"}));
}

TEST(JsonObjectReaderTest, ErrorsNameTheMemberByItsPath) {
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "grup": "x"})"), "unknown key 'lan.grup'");
  EXPECT_EQ(ErrorOf(R"({"group": "x"})"), "lan.enabled: required");
  EXPECT_EQ(ErrorOf(R"({"enabled": null})"), "lan.enabled: required");
  EXPECT_EQ(ErrorOf(R"({"enabled": 1})"), "lan.enabled: must be true or false");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "group": 5})"), "lan.group: must be a string");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "port": "80"})"), "lan.port: must be an unsigned integer");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "port": 80.0})"), "lan.port: must be an unsigned integer");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "port": -1})"), "lan.port: must be an unsigned integer");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "port": 0})"), "lan.port: must be in 1..65535");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "port": 65536})"), "lan.port: must be in 1..65535");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "offset": 1.5})"), "lan.offset: must be an integer");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "offset": -11})"), "lan.offset: must be in -10..10");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "offset": 18446744073709551615})"),
            "lan.offset: must be in -10..10");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "ratio": "x"})"), "lan.ratio: must be a number");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "ratio": 1.5})"), "lan.ratio: must be in 0..1");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "names": ["a", 1]})"),
            "lan.names: must be an array of strings");
  EXPECT_EQ(ErrorOf(R"({"enabled": true, "names": "a"})"),
            "lan.names: must be an array of strings");
  EXPECT_EQ(ErrorOf("[1]"), "lan: must be a JSON object");
}

TEST(JsonObjectReaderTest, TheFirstErrorWinsAndLeavesLaterOutputsAlone) {
  Lan lan;
  Status st = ReadLan(Parse(R"({"enabled": "yes", "port": "x", "group": "g", "extra": 1})"), lan);
  EXPECT_EQ(st.message(), "lan.enabled: must be true or false");
  EXPECT_EQ(lan.group, "239.0.0.1");
}

TEST(JsonObjectReaderTest, FailAndCheckRecordCustomErrors) {
  const Json doc = Parse(R"({"mode": "ftp"})");
  JsonObjectReader r(doc, "");
  std::string mode;
  r.String("mode", mode);
  r.Check(mode == "p2p", "mode", "must be \"p2p\"");
  r.Fail("other", "is not reached");
  EXPECT_EQ(r.Finish().message(), "mode: must be \"p2p\"");
}

TEST(JsonObjectReaderTest, NestedObjectsAndArraysAreCheckedAndNamed) {
  Json doc = Parse(R"({"lan": {"port": 1}, "list": [1], "bad": 3})");
  JsonObjectReader top(doc, "");
  const Json* lan = top.Object("lan");
  ASSERT_NE(lan, nullptr);
  JsonObjectReader nested(*lan, top.PathOf("lan"));
  uint32_t port = 0;
  nested.Unsigned("port", port);
  EXPECT_TRUE(nested.Finish().ok());
  EXPECT_EQ(port, 1u);
  EXPECT_NE(top.Array("list"), nullptr);
  EXPECT_EQ(top.Object("absent"), nullptr);
  EXPECT_TRUE(top.status().ok());
  EXPECT_EQ(top.Array("bad"), nullptr);
  EXPECT_EQ(top.status().message(), "bad: must be an array");
}

TEST(JsonObjectReaderTest, ObjectAndObjectsReadNestedMembersWithTheirPaths) {
  const Json doc =
      Parse(R"({"lan": {"port": 7}, "sites": [{"name": "a"}, {"name": "b", "x": 1}]})");
  JsonObjectReader r(doc, "");
  uint16_t port = 0;
  std::vector<std::string> names;
  r.Object("lan", [&](JsonObjectReader& lan) { lan.Unsigned("port", port); });
  r.Object("absent", [&](JsonObjectReader&) { ADD_FAILURE() << "read an absent member"; });
  r.Objects("sites", [&](JsonObjectReader& site) { site.String("name", names.emplace_back()); });
  EXPECT_EQ(r.Finish().message(), "unknown key 'sites[1].x'");
  EXPECT_EQ(port, 7);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
}

TEST(JsonObjectReaderTest, AStatusFromANestedReadIsKeptAndLaterElementsAreNotRead) {
  const Json doc = Parse(R"({"sites": [{"name": "a"}, {"name": "b"}], "lan": []})");
  JsonObjectReader r(doc, "");
  int reads = 0;
  r.Objects("sites", [&](JsonObjectReader& site) -> Status {
    ++reads;
    return InvalidArgument(site.PathOf("name") + ": taken");
  });
  EXPECT_EQ(r.status().message(), "sites[0].name: taken");
  EXPECT_EQ(reads, 1);
  JsonObjectReader other(doc, "");
  other.Object("lan", [](JsonObjectReader&) {});
  EXPECT_EQ(other.status().message(), "lan: must be a JSON object");
}

enum class Mode { kFast, kSafe };
constexpr EnumName<Mode> kModeNames[] = {{Mode::kFast, "fast"}, {Mode::kSafe, "safe"}};

TEST(JsonObjectReaderTest, ChoiceTakesOneOfTheNames) {
  const Json doc = Parse(R"({"a": "safe", "b": "slow", "c": 1})");
  Mode mode = Mode::kFast;
  JsonObjectReader r(doc, "m");
  r.Choice("a", kModeNames, mode);
  EXPECT_EQ(mode, Mode::kSafe);
  r.Choice("b", kModeNames, mode);
  EXPECT_EQ(r.status().message(), "m.b: must be fast or safe");
  JsonObjectReader wrong_type(doc, "m");
  wrong_type.Choice("c", kModeNames, mode);
  EXPECT_EQ(wrong_type.status().message(), "m.c: must be fast or safe");
  EXPECT_EQ(mode, Mode::kSafe);
}

TEST(JsonObjectReaderTest, StatusIgnoresUnknownKeysWhereFinishRefusesThem) {
  const Json doc = Parse(R"({"a": "x", "ext": 1})");
  JsonObjectReader r(doc, "doc");
  std::string a;
  r.String("a", a);
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.Finish().message(), "unknown key 'doc.ext'");
}

TEST(JsonObjectReaderTest, UnknownKeysCanBeIgnoredAtEveryDepth) {
  const Json doc = Parse(R"({"a": "x", "new": 1, "lan": {"port": 1, "newer": 2}})");
  JsonObjectReader r(doc, "", UnknownKeys::kIgnore);
  std::string a;
  uint16_t port = 0;
  r.String("a", a);
  r.Object("lan", [&](JsonObjectReader& lan) { lan.Unsigned("port", port); });
  EXPECT_TRUE(r.Finish().ok()) << r.Finish().ToString();
  EXPECT_EQ(port, 1);
}

TEST(JsonObjectReaderTest, AnUnknownKeyIsQuotedAtMost64Bytes) {
  Json doc = Json::object();
  doc[std::string(1000, 'k')] = 1;
  EXPECT_EQ(JsonObjectReader(doc, "").Finish().message(),
            "unknown key '" + std::string(64, 'k') + "'");
}

}  // namespace
}  // namespace flotilla
