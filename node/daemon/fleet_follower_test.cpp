#include "node/daemon/fleet_follower.h"

#include <gtest/gtest.h>

namespace flotilla::node {
namespace {

constexpr char kDocument[] =
    R"({"apps":{"kiosk":{"hashes":{"sha256":"235bd57f3110f18c9833e2bc138bf5d367ff3ce75c7e5af8bc7ad4b45f5631da"},)"
    R"("length":683,"release":7,"target":"apps/kiosk/release-7.json"}},"device":"dev-screen-7"})";

TEST(FleetDocumentTest, ParsesTheDocumentTheTrackerSigns) {
  auto doc = ParseFleetDocument(kDocument);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->device, "dev-screen-7");
  ASSERT_EQ(doc->apps.size(), 1u);
  const FleetAppChoice& kiosk = doc->apps.at("kiosk");
  EXPECT_EQ(kiosk.release, 7u);
  EXPECT_EQ(kiosk.target, "apps/kiosk/release-7.json");
  EXPECT_EQ(kiosk.length, 683u);
  EXPECT_EQ(kiosk.hashes.at("sha256"),
            "235bd57f3110f18c9833e2bc138bf5d367ff3ce75c7e5af8bc7ad4b45f5631da");
  auto empty = ParseFleetDocument(R"({"apps":{},"device":"d"})");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->apps.empty());
}

TEST(FleetDocumentTest, RefusesAnythingElse) {
  const char* bad[] = {
      "",
      "[]",
      R"({"apps":{}})",                          // no device
      R"({"apps":{},"device":"d","format":2})",  // a newer format
      R"({"apps":{},"device":"d","format":0})",
      R"({"apps":{},"device":"d","format":"1"})",
      R"({"apps":[],"device":"d"})",  // apps not an object
      R"({"apps":{},"device":7})",    // device not a string
      R"({"apps":{"../x":{"hashes":{"sha256":"aa"},"length":1,"release":1,"target":"t"}},"device":"d"})",
      R"({"apps":{"k":{"hashes":{"sha256":"aa"},"length":1,"release":1}},"device":"d"})",
      R"({"apps":{"k":{"hashes":{},"length":1,"release":1,"target":"t"}},"device":"d"})",
      R"({"apps":{"k":{"hashes":{"sha256":"aa"},"length":1,"release":0,"target":"t"}},"device":"d"})",
      R"({"apps":{"k":{"hashes":{"sha256":"aa"},"length":-1,"release":1,"target":"t"}},"device":"d"})",
      R"({"apps":{},"device":"d","device":"e"})",  // duplicate key
  };
  for (const char* text : bad) {
    auto doc = ParseFleetDocument(text);
    EXPECT_FALSE(doc.ok()) << text;
  }
}

// A newer tracker may add members (windows, locks...) within format 1: this
// node follows the parts it knows instead of refusing the whole document.
TEST(FleetDocumentTest, IgnoresMembersANewerTrackerAddsWithinItsFormat) {
  auto doc = ParseFleetDocument(
      R"({"apps":{"k":{"hashes":{"sha256":"aa"},"length":1,"release":3,"target":"t","window":"x"}},)"
      R"("device":"d","format":1,"locks":[]})");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->apps.at("k").release, 3u);
  auto old = ParseFleetDocument(R"({"apps":{},"device":"d"})");  // no format: 1
  EXPECT_TRUE(old.ok()) << old.status().ToString();
  auto newer = ParseFleetDocument(R"({"apps":{},"device":"d","format":2})");
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("update the node"), std::string::npos);
}

}  // namespace
}  // namespace flotilla::node
