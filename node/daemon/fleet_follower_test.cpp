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

// An app's `config` (docs/config.md): strings by name; anything else
// refuses the document. A node before it ignored the member, as any other
// within format 1 (above).
TEST(FleetDocumentTest, ReadsConfigAndRefusesMalformedOnes) {
  auto doc = ParseFleetDocument(
      R"({"apps":{"k":{"config":{"MODE":"a","URL":"https://x"},"hashes":{"sha256":"aa"},)"
      R"("length":1,"release":3,"target":"t"}},"device":"d","format":1})");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->apps.at("k").config, (appspec::ConfigValues{{"MODE", "a"}, {"URL", "https://x"}}));
  for (const char* config : {R"([])", R"({"A":1})", R"({"A":null})", R"("A=1")"}) {
    auto bad = ParseFleetDocument(
        std::string(R"({"apps":{"k":{"config":)") + config +
        R"(,"hashes":{"sha256":"aa"},"length":1,"release":3,"target":"t"}},"device":"d"})");
    EXPECT_FALSE(bad.ok()) << config;
  }
}

// An app's `secrets`: sealed boxes (base64 strings) by name, kept as they
// came; anything else refuses the document. Opening them is the follower's
// check against the signed spec (NodeSecretsTest).
TEST(FleetDocumentTest, ReadsSecretsAndRefusesMalformedOnes) {
  auto doc = ParseFleetDocument(
      R"({"apps":{"k":{"hashes":{"sha256":"aa"},"length":1,"release":3,)"
      R"("secrets":{"API_TOKEN":"c2VhbGVk"},"target":"t"}},"device":"d","format":1})");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->apps.at("k").secrets,
            (std::map<std::string, std::string>{{"API_TOKEN", "c2VhbGVk"}}));
  const std::string huge = "\"" + std::string(20000, 'A') + "\"";
  for (const std::string& secrets :
       {std::string(R"([])"), std::string(R"({"A":1})"), std::string(R"({"A":null})"),
        std::string(R"({"A":)") + huge + "}"}) {
    auto bad = ParseFleetDocument(
        R"({"apps":{"k":{"secrets":)" + secrets +
        R"(,"hashes":{"sha256":"aa"},"length":1,"release":3,"target":"t"}},"device":"d"})");
    EXPECT_FALSE(bad.ok()) << secrets.substr(0, 20);
  }
}

// `windows`: each window read as the tracker writes it; absent, none; a
// malformed one refuses the document (the node must not switch at any time
// because it misread when it may).
TEST(FleetDocumentTest, ReadsWindowsAndRefusesMalformedOnes) {
  auto doc = ParseFleetDocument(
      R"({"apps":{},"device":"d","format":1,"windows":[{"days":"mon-fri","from":"22:00",)"
      R"("group":"shops","to":"06:00","tz":"Europe/Berlin"},)"
      R"({"days":"daily","from":"00:00","to":"24:00","tz":"UTC"}]})");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->windows.size(), 2u);
  EXPECT_EQ(tracker::WindowText(doc->windows[0]), "mon-fri 22:00-06:00 Europe/Berlin");
  EXPECT_EQ(doc->windows[0].group, "shops");
  EXPECT_EQ(doc->windows[1].to_minute, 1440);
  EXPECT_TRUE(ParseFleetDocument(R"({"apps":{},"device":"d"})")->windows.empty());
  for (
      const char* bad :
      {R"({"apps":{},"device":"d","windows":{}})",
       R"({"apps":{},"device":"d","windows":[{"days":"mon","from":"22:00","to":"06:00"}]})",
       R"({"apps":{},"device":"d","windows":[{"days":"x","from":"22:00","to":"06:00","tz":"UTC"}]})",
       R"({"apps":{},"device":"d","windows":[{"days":"mon","from":"2200","to":"06:00","tz":"UTC"}]})"}) {
    auto refused = ParseFleetDocument(bad);
    EXPECT_FALSE(refused.ok()) << bad;
    if (!refused.ok()) {
      EXPECT_NE(refused.status().message().find("fleet document"), std::string::npos)
          << refused.status().ToString();
    }
  }
}

}  // namespace
}  // namespace flotilla::node
