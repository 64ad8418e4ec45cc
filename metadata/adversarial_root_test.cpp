// Adversarial suite, part 1: the root chain, signatures and thresholds.
// Every rejection also checks that the trusted files did not change.
#include <gtest/gtest.h>

#include "metadata/adversarial_fixture.h"
#include "metadata/tuf_signing.h"

namespace flotilla::metadata::testing {
namespace {

using Adversarial = AdversarialTest;

// The next root (version 2) with a fresh root key replacing root key 0.
Json NextRootWithNewKey(const AdversarialTest& t, const Ed25519PrivateKey& new_key) {
  Json root = t.ReadSigned("1.root.json");
  root["version"] = 2;
  TufKey key = MakeTufKey(new_key.public_key());
  root["keys"][key.keyid] = key.json;
  root["roles"]["root"]["keyids"] = Json::array({key.keyid});
  root["roles"]["root"]["threshold"] = 1;
  return root;
}

TEST_F(Adversarial, RootRotationSignedByOldAndNewKeysIsAccepted) {
  CreateRepository();
  InitClient();
  auto new_key = Ed25519PrivateKey::Generate();
  WriteSigned("2.root.json", NextRootWithNewKey(*this, new_key), {&root_keys_[0], &new_key});
  ASSERT_TRUE(Refresh().ok());
  auto client = RefreshedClient();
  EXPECT_EQ(client->root().common.version, 2u);
}

TEST_F(Adversarial, NewRootSignedOnlyByNewKeysIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  auto new_key = Ed25519PrivateKey::Generate();
  WriteSigned("2.root.json", NextRootWithNewKey(*this, new_key), {&new_key});
  ExpectRefreshRejected(StatusCode::kCorruption, "by the trusted root's keys: 0 valid");
}

TEST_F(Adversarial, NewRootSignedOnlyByOldKeysIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  auto new_key = Ed25519PrivateKey::Generate();
  WriteSigned("2.root.json", NextRootWithNewKey(*this, new_key), {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kCorruption, "by its own keys: 0 valid");
}

TEST_F(Adversarial, SkippedRootVersionIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 3;  // served as 2.root.json
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kCorruption, "root version 3 where version 2 was expected");
}

TEST_F(Adversarial, ReplayedOldRootAsNextVersionIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  WriteRaw("2.root.json", ReadRaw("1.root.json"));
  ExpectRefreshRejected(StatusCode::kCorruption, "root version 1 where version 2 was expected");
}

TEST_F(Adversarial, TwoSignaturesUnderOneKeyIdAreRefused) {
  CreateRepository(/*root_threshold=*/2);
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  SignedDocument doc = MakeUnsignedDocument(root).value();
  AddSignature(doc, root_keys_[0]);
  doc.signatures.push_back(doc.signatures[0]);  // the same signature twice
  WriteRaw("2.root.json", SerializeDocument(doc));
  ExpectRefreshRejected(StatusCode::kCorruption, "two signatures carry key id");
  // Also when both signatures are valid and the threshold would be met by other keys.
  AddSignature(doc, root_keys_[1]);
  WriteRaw("2.root.json", SerializeDocument(doc));
  ExpectRefreshRejected(StatusCode::kCorruption, "(TUF allows one signature per key id)");
}

TEST_F(Adversarial, SameKeyUnderTwoKeyIdsCountsOnce) {
  CreateRepository(/*root_threshold=*/2);
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  // The verifier counts public keys, not key ids: with one key known under two
  // ids (which root parsing refuses anyway), one signature stays one.
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  SignedDocument doc = MakeUnsignedDocument(root).value();
  AddSignature(doc, root_keys_[0]);
  TufKey key = MakeTufKey(root_keys_[0].public_key());
  TufKey alias = key;
  alias.keyid = std::string(64, 'a');
  doc.signatures.push_back({alias.keyid, doc.signatures[0].sig_hex});
  std::map<std::string, TufKey> keys{{key.keyid, key}, {alias.keyid, alias}};
  RoleKeys role{{key.keyid, alias.keyid}, 2};
  ExpectStatus(VerifyThreshold(doc, keys, role, "root"), StatusCode::kCorruption,
               "1 valid signature(s), threshold is 2");
  // And a root that lists the alias is refused outright.
  root["keys"][alias.keyid] = key.json;
  root["roles"]["root"]["keyids"].push_back(alias.keyid);
  WriteSigned("2.root.json", root, {&root_keys_[0], &root_keys_[1]});
  ExpectRefreshRejected(StatusCode::kCorruption, "is not the SHA-256 of its key");
}

TEST_F(Adversarial, ThresholdZeroIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  root["roles"]["timestamp"]["threshold"] = 0;
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "threshold must be 1..1024, got 0");
}

TEST_F(Adversarial, OneBadSignatureBesideEnoughGoodOnesIsAccepted) {
  CreateRepository(/*root_threshold=*/2);
  InitClient();
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  SignedDocument doc = MakeUnsignedDocument(root).value();
  AddSignature(doc, root_keys_[0]);
  AddSignature(doc, root_keys_[1]);
  // A third signature, garbage, placed first, under the id of a key the root lists.
  doc.signatures.insert(doc.signatures.begin(),
                        {MakeTufKey(targets_key_.public_key()).keyid, std::string(128, '0')});
  WriteRaw("2.root.json", SerializeDocument(doc));
  ASSERT_TRUE(Refresh().ok());
  EXPECT_EQ(RefreshedClient()->root().common.version, 2u);
}

TEST_F(Adversarial, EndlessRootChainIsCutAtTheLimit) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  for (int v = 2; v <= 12; ++v) {
    root["version"] = v;
    WriteSigned(std::to_string(v) + ".root.json", root, {&root_keys_[0]});
  }
  ClientLimits limits;
  limits.max_root_rotations = 4;
  ExpectStatus(Refresh(limits), StatusCode::kResourceExhausted,
               "more than 4 root versions in one refresh; stopped at version 5");
  // The four verified versions were kept (as the spec asks), nothing beyond.
  auto client = TufClient::Open(client_dir_, *remote_, clock_, limits);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->root().common.version, 5u);
}

TEST_F(Adversarial, OversizedRootIsCutAtTheLimit) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  root["padding"] = std::string(600 << 10, 'x');
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kResourceExhausted, "more than the limit of 524288");
}

TEST_F(Adversarial, ExpiredFinalRootIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  clock_.Advance(std::chrono::hours(24 * 400));  // past root expiry (365 days)
  ExpectRefreshRejected(StatusCode::kFailedPrecondition, "root metadata expired");
}

TEST_F(Adversarial, ExpiredIntermediateRootIsWalkedThrough) {
  CreateRepository();
  InitClient();
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  root["expires"] = "2000-01-01T00:00:00Z";
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  root["version"] = 3;
  root["expires"] = "2100-01-01T00:00:00Z";
  WriteSigned("3.root.json", root, {&root_keys_[0]});
  ASSERT_TRUE(Refresh().ok());
  EXPECT_EQ(RefreshedClient()->root().common.version, 3u);
}

TEST_F(Adversarial, KeyIdThatIsNotTheKeysHashIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  std::string id = root["roles"]["targets"]["keyids"][0];
  Json key = root["keys"][id];
  root["keys"].erase(id);
  root["keys"][std::string(64, 'b')] = key;
  root["roles"]["targets"]["keyids"] = Json::array({std::string(64, 'b')});
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kCorruption, "is not the SHA-256 of its key");
}

TEST_F(Adversarial, UnsupportedKeyTypeIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  for (auto& [id, key] : root["keys"].items()) key["keytype"] = "rsa";
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "unsupported key type 'rsa'");
}

TEST_F(Adversarial, TimestampKeyRotationRecoversFromFastForward) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  // The timestamp key leaks; the attacker fast-forwards timestamp to v1000.
  Json ts = ReadSigned("timestamp.json");
  ts["version"] = 1000;
  WriteSigned("timestamp.json", ts, {&timestamp_key_});
  ASSERT_TRUE(Refresh().ok());
  // The operator rotates the timestamp key; the next timestamp is a low version again.
  auto new_timestamp_key = Ed25519PrivateKey::Generate();
  KeyRing ring = AllKeys();
  ring.Add(new_timestamp_key);
  ASSERT_TRUE(
      repo_->RotateKeys({{RoleType::kTimestamp, {{new_timestamp_key.public_key()}, 1}}}, ring)
          .ok());
  ASSERT_LT(repo_->timestamp().common.version, 1000u);
  ASSERT_TRUE(Refresh().ok());
  auto client = RefreshedClient();
  EXPECT_EQ(client->timestamp()->common.version, repo_->timestamp().common.version);
}

// The online keys leak; the attacker pushes snapshot, timestamp and the
// targets version the snapshot names to 1000 (TUF's fast-forward attack).
void FastForward(AdversarialTest& t) {
  Json sn = t.ReadSigned("snapshot.json");
  sn["version"] = 1000;
  sn["meta"]["targets.json"] = Json{{"version", 1000}};
  t.WriteSigned("1000.snapshot.json", sn, {&t.snapshot_key_});
  t.RewriteTimestampFor("1000.snapshot.json", 1000);
}

TEST_F(Adversarial, SnapshotKeyRotationRecoversFromFastForwardedVersions) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  FastForward(*this);
  // The client takes timestamp and snapshot 1000 (validly signed) and fails on targets 1000.
  ExpectStatus(Refresh(), StatusCode::kNotFound, "1000.targets.json");
  // The operator rotates the snapshot key only. 5.3.11: timestamp and snapshot
  // are both forgotten, so the honest low versions are taken again.
  auto new_snapshot_key = Ed25519PrivateKey::Generate();
  KeyRing ring = AllKeys();
  ring.Add(new_snapshot_key);
  ASSERT_TRUE(
      repo_->RotateKeys({{RoleType::kSnapshot, {{new_snapshot_key.public_key()}, 1}}}, ring).ok());
  ASSERT_LT(repo_->timestamp().common.version, 1000u);
  ASSERT_TRUE(Refresh().ok());
  auto client = RefreshedClient();
  EXPECT_EQ(client->timestamp()->common.version, repo_->timestamp().common.version);
  EXPECT_EQ(client->snapshot()->common.version, repo_->snapshot().common.version);
}

TEST_F(Adversarial, FastForwardRecoveryHoldsWhenTheRefreshStopsAfterTheNewRoot) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  FastForward(*this);
  ASSERT_FALSE(Refresh().ok());
  auto new_snapshot_key = Ed25519PrivateKey::Generate();
  KeyRing ring = AllKeys();
  ring.Add(new_snapshot_key);
  ASSERT_TRUE(
      repo_->RotateKeys({{RoleType::kSnapshot, {{new_snapshot_key.public_key()}, 1}}}, ring).ok());
  // Root 3 is broken: this refresh accepts root 2 (the rotation) and stops at 3.
  WriteRaw("3.root.json", "{}");
  ExpectStatus(Refresh(), StatusCode::kInvalidArgument, "3.root.json");
  EXPECT_EQ(TrustedVersionOf("root.json"), 2u);
  // The rotation was acted on with root 2, not left for a refresh that no longer sees it.
  EXPECT_FALSE(std::filesystem::exists(client_dir_ + "/timestamp.json"));
  EXPECT_FALSE(std::filesystem::exists(client_dir_ + "/snapshot.json"));
  std::filesystem::remove(MetadataPath("3.root.json"));
  ASSERT_TRUE(Refresh().ok());
  EXPECT_EQ(TrustedVersionOf("timestamp.json"), repo_->timestamp().common.version);
}

TEST_F(Adversarial, InitialRootNotSignedByItsOwnKeysIsRefused) {
  CreateRepository();
  Json root = ReadSigned("1.root.json");
  auto stranger = Ed25519PrivateKey::Generate();
  SignedDocument doc = MakeUnsignedDocument(root).value();
  AddSignature(doc, stranger);
  ExpectStatus(TufClient::Initialize(client_dir_, SerializeDocument(doc)), StatusCode::kCorruption,
               "0 valid signature(s)");
  EXPECT_FALSE(std::filesystem::exists(client_dir_ + "/root.json"));
}

TEST_F(Adversarial, RootWithFifthRoleIsRejected) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  Json root = ReadSigned("1.root.json");
  root["version"] = 2;
  root["roles"]["mirrors"] = root["roles"]["targets"];
  WriteSigned("2.root.json", root, {&root_keys_[0]});
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "a role other than the top-level four");
}

}  // namespace
}  // namespace flotilla::metadata::testing
