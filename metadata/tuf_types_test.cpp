#include "metadata/tuf_types.h"

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

std::string Fixture(const std::string& name) {
  return ReadTextFileBounded(
             std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/tuf-reference/metadata/" + name,
             1 << 20)
      .value();
}

TEST(TufTime, ParsesAndFormatsTheTufForm) {
  auto t = ParseTufTime("2036-01-01T00:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count(),
            2082758400);
  EXPECT_EQ(FormatTufTime(*t), "2036-01-01T00:00:00Z");
  EXPECT_EQ(FormatTufTime(ParseTufTime("2024-02-29T23:59:59Z").value()), "2024-02-29T23:59:59Z");
}

TEST(TufTime, RefusesEverythingElse) {
  for (const char* bad :
       {"2036-01-01T00:00:00", "2036-01-01 00:00:00Z", "2036-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z", "1969-12-31T23:59:59Z", "2036-01-01T24:00:00Z",
        "2036-01-01T00:00:00.5Z", "+036-01-01T00:00:00Z", "9999-01-01T00:00:00Z", ""}) {
    EXPECT_FALSE(ParseTufTime(bad).ok()) << bad;
  }
}

TEST(TufNames, TargetNames) {
  for (const char* good : {"a", "apps/demo/release-1.json", "100%", "q?x", "..a", "a..", "x/.y"}) {
    EXPECT_TRUE(ValidateTargetName(good).ok()) << good;
  }
  for (const char* bad : {"", "/abs", "a/../b", "..", ".", "a/", "a//b", "a\\b", "a\nb"}) {
    EXPECT_FALSE(ValidateTargetName(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateTargetName(std::string(1025, 'a')).ok());
}

TEST(TufNames, PercentEncoding) {
  EXPECT_EQ(PercentEncode("a/b%c?d#e f~_.-"), "a%2Fb%25c%3Fd%23e%20f~_.-");
  EXPECT_EQ(EncodeTargetUrlPath("dir/x?y"), "dir/x%3Fy");
}

// A limit past 4 GiB is a limit, not a wrapped 16 bytes: on armhf a size_t
// limit turned 2^32 + 16 into 16 and refused every document.
TEST(TufTypes, LimitPast4GiBDoesNotWrapOn32BitSystems) {
  const uint64_t limit = (uint64_t{1} << 32) + 16;
  auto doc = ParseSignedDocument(Fixture("timestamp.json"), limit);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_FALSE(ParseSignedDocument(Fixture("timestamp.json"), 16).ok());
}

TEST(TufTypes, KeyIdsOfTheReferenceFixtureAreTheHashesOfTheirKeys) {
  auto doc = ParseSignedDocument(Fixture("2.root.json"), 1 << 20);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  auto root = ParseRoot(doc->signed_json);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->common.version, 2u);
  EXPECT_TRUE(root->consistent_snapshot);
  EXPECT_EQ(root->keys.size(), 4u);
  for (const auto& [id, key] : root->keys) {
    EXPECT_EQ(MakeTufKey(Ed25519PublicKey::FromBytes(AsBytes(key.identity)).value()).keyid, id);
  }
  EXPECT_TRUE(VerifyThreshold(*doc, root->keys, root->roles.at(RoleType::kRoot), "root").ok());
}

TEST(TufTypes, ReferenceTargetsParseWithCustom) {
  auto doc = ParseSignedDocument(Fixture("1.targets.json"), 1 << 20);
  ASSERT_TRUE(doc.ok());
  auto targets = ParseTargets(doc->signed_json);
  ASSERT_TRUE(targets.ok()) << targets.status().ToString();
  const TargetFile& t = targets->targets.at("apps/demo/release-1.json");
  EXPECT_EQ(t.length, 29u);
  EXPECT_TRUE(t.custom.contains("note"));
}

TEST(TufTypes, RoundTripThroughJson) {
  RootMetadata root;
  root.common.version = 7;
  root.common.expires = ParseTufTime("2030-05-06T07:08:09Z").value();
  auto key = Ed25519PrivateKey::Generate();
  TufKey tuf_key = MakeTufKey(key.public_key());
  root.keys[tuf_key.keyid] = tuf_key;
  for (RoleType role : kAllRoles) root.roles[role] = RoleKeys{{tuf_key.keyid}, 1};
  auto parsed = ParseRoot(ToJson(root));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->common.version, 7u);
  EXPECT_EQ(FormatTufTime(parsed->common.expires), "2030-05-06T07:08:09Z");
  EXPECT_EQ(CanonicalJson(ToJson(*parsed)).value(), CanonicalJson(ToJson(root)).value());
}

TEST(TufTypes, WrongTypeIsRefused) {
  auto doc = ParseSignedDocument(Fixture("timestamp.json"), 1 << 20);
  ASSERT_TRUE(doc.ok());
  auto as_snapshot = ParseSnapshot(doc->signed_json);
  ASSERT_FALSE(as_snapshot.ok());
  EXPECT_NE(as_snapshot.status().message().find("expected snapshot metadata"), std::string::npos);
}

TEST(TufSigning, AddSignatureThenVerify) {
  auto key = Ed25519PrivateKey::Generate();
  TufKey tuf_key = MakeTufKey(key.public_key());
  SignedDocument doc = MakeUnsignedDocument(Json{{"b", 1}, {"a", "x"}}).value();
  EXPECT_EQ(doc.canonical_signed, "{\"a\":\"x\",\"b\":1}");
  AddSignature(doc, key);
  AddSignature(doc, key);  // replaces, does not duplicate
  ASSERT_EQ(doc.signatures.size(), 1u);
  std::map<std::string, TufKey> keys{{tuf_key.keyid, tuf_key}};
  auto reparsed = ParseSignedDocument(SerializeDocument(doc), 1 << 20);
  ASSERT_TRUE(reparsed.ok());
  EXPECT_TRUE(VerifyThreshold(*reparsed, keys, RoleKeys{{tuf_key.keyid}, 1}, "x").ok());
  EXPECT_FALSE(VerifyThreshold(*reparsed, keys, RoleKeys{{tuf_key.keyid}, 2}, "x").ok());
}

}  // namespace
}  // namespace flotilla::metadata
