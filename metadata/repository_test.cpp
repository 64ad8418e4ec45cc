// The repository writer against the client: what the tracker publishes, a
// device trusts, through key rotations and offline root signing.
#include "metadata/repository.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/adversarial_fixture.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"

namespace flotilla::metadata::testing {
namespace {

namespace fs = std::filesystem;
using RepositoryTest = AdversarialTest;

Release DemoRelease(uint64_t version) {
  Release r;
  r.app = "demo";
  r.version = version;
  r.image.manifest = Digest::Of("manifest" + std::to_string(version));
  r.image.config = Digest::Of("config");
  r.image.platform = "linux/arm/v7";
  r.image.layers = {{Digest::Of("layer"), 4096}};
  r.artifacts = {{Digest::Of("layer"),
                  ArtifactKind::kFull,
                  {},
                  Digest::Of("artifact"),
                  1024,
                  Digest::Of("torrent" + std::to_string(version)).bytes(),
                  "zstd"}};
  r.app_spec = Json{{"image", "demo"}, {"command", {"/demo"}}};
  return r;
}

TEST_F(RepositoryTest, PublishedReleaseIsVerifiedAndReadByTheClient) {
  CreateRepository();
  ASSERT_TRUE(PublishRelease(*repo_, DemoRelease(1), AllKeys()).ok());
  ASSERT_TRUE(PublishRelease(*repo_, DemoRelease(2), AllKeys()).ok());
  InitClient();
  auto client = RefreshedClient();
  ASSERT_TRUE(client);
  auto latest = LatestReleases(*client->targets());
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->at("demo").version, 2u);
  EXPECT_EQ(latest->at("demo").image.platform, "linux/arm/v7");
  auto info = client->GetTargetInfo(ReleaseTargetName("demo", 2));
  ASSERT_TRUE(info.ok());
  auto got = client->DownloadTarget(*info, target_dir_);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The target's bytes are the canonical JSON of its custom field.
  auto bytes = ReadTextFileBounded(got->path, 1 << 20).value();
  EXPECT_EQ(bytes, CanonicalJson(info->custom).value());
}

TEST_F(RepositoryTest, ReleaseVersionsMustIncrease) {
  CreateRepository();
  ASSERT_TRUE(PublishRelease(*repo_, DemoRelease(5), AllKeys()).ok());
  Status st = PublishRelease(*repo_, DemoRelease(5), AllKeys());
  ExpectStatus(st, StatusCode::kFailedPrecondition, "already has release 5");
  ExpectStatus(PublishRelease(*repo_, DemoRelease(4), AllKeys()), StatusCode::kFailedPrecondition,
               "versions must increase");
}

TEST_F(RepositoryTest, OfflineRootSigningFromExportedFiles) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  auto new_root_key = Ed25519PrivateKey::Generate();
  // Online machine: stage root v2 and export it unsigned.
  auto staged = repo_->StageRoot({{RoleType::kRoot, {{new_root_key.public_key()}, 1}}});
  ASSERT_TRUE(staged.ok());
  const std::string unsigned_path = temp_dir_ + "/root-v2.unsigned.json";
  ASSERT_TRUE(WriteFileAtomic(unsigned_path, SerializeDocument(*staged)).ok());
  // Offline machine: two signers, each with only a key file.
  const std::string old_key_file = temp_dir_ + "/old-root.key";
  const std::string new_key_file = temp_dir_ + "/new-root.key";
  ASSERT_TRUE(root_keys_[0].SaveFile(old_key_file).ok());
  ASSERT_TRUE(new_root_key.SaveFile(new_key_file).ok());
  const std::string half = temp_dir_ + "/root-v2.half.json";
  const std::string full = temp_dir_ + "/root-v2.signed.json";
  ASSERT_TRUE(SignMetadataFile(unsigned_path, old_key_file, root_keys_[0].public_key(), half).ok());
  // Publishing with the old signature only is refused.
  ExpectStatus(repo_->PublishRoot(ReadTextFileBounded(half, 1 << 20).value()),
               StatusCode::kCorruption, "by its own root keys: 0 valid");
  ASSERT_TRUE(SignMetadataFile(half, new_key_file, new_root_key.public_key(), full).ok());
  // Back online: import.
  ASSERT_TRUE(repo_->PublishRoot(ReadTextFileBounded(full, 1 << 20).value()).ok());
  EXPECT_EQ(repo_->root().common.version, 2u);
  auto client = RefreshedClient();
  ASSERT_TRUE(client);
  EXPECT_EQ(client->root().common.version, 2u);
  // The old root key alone can no longer move the root.
  auto again = repo_->StageRoot({});
  SignedDocument doc = again.value();
  AddSignature(doc, root_keys_[0]);
  ExpectStatus(repo_->PublishRoot(SerializeDocument(doc)), StatusCode::kCorruption,
               "by the current root keys: 0 valid");
}

TEST_F(RepositoryTest, KeyRotationOfEveryOnlineRoleIsFollowedByTheClient) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(Refresh().ok());
  auto t2 = Ed25519PrivateKey::Generate(), s2 = Ed25519PrivateKey::Generate(),
       ts2 = Ed25519PrivateKey::Generate();
  KeyRing ring = AllKeys();
  ring.Add(t2);
  ring.Add(s2);
  ring.Add(ts2);
  ASSERT_TRUE(repo_
                  ->RotateKeys({{RoleType::kTargets, {{t2.public_key()}, 1}},
                                {RoleType::kSnapshot, {{s2.public_key()}, 1}},
                                {RoleType::kTimestamp, {{ts2.public_key()}, 1}}},
                               ring)
                  .ok());
  // From here on the old online keys are useless.
  KeyRing only_new;
  only_new.Add(t2);
  only_new.Add(s2);
  only_new.Add(ts2);
  ASSERT_TRUE(PublishRelease(*repo_, DemoRelease(1), only_new).ok());
  auto client = RefreshedClient();
  ASSERT_TRUE(client);
  EXPECT_EQ(client->root().common.version, 2u);
  EXPECT_TRUE(client->targets()->targets.contains(ReleaseTargetName("demo", 1)));
  ExpectStatus(repo_->ResignTimestamp(AllKeys()), StatusCode::kFailedPrecondition,
               "only 0 of the 1 timestamp keys");
}

TEST_F(RepositoryTest, ThresholdTwoNeedsTwoKeys) {
  CreateRepository();
  auto t2 = Ed25519PrivateKey::Generate();
  KeyRing ring = AllKeys();
  ring.Add(t2);
  ASSERT_TRUE(
      repo_
          ->RotateKeys({{RoleType::kTargets, {{targets_key_.public_key(), t2.public_key()}, 2}}},
                       ring)
          .ok());
  ExpectStatus(repo_->ResignTargets(AllKeys()), StatusCode::kFailedPrecondition,
               "only 1 of the 2 targets keys");
  InitClient();
  auto client = RefreshedClient();
  ASSERT_TRUE(client);
  EXPECT_EQ(client->root().roles.at(RoleType::kTargets).threshold, 2u);
}

TEST_F(RepositoryTest, ReopenedRepositoryContinuesItsVersions) {
  CreateRepository();
  uint64_t ts_version = repo_->timestamp().common.version;
  repo_.reset();
  auto reopened = Repository::Open(repo_dir_, clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ASSERT_TRUE((*reopened)->ResignTimestamp(AllKeys()).ok());
  EXPECT_EQ((*reopened)->timestamp().common.version, ts_version + 1);
  EXPECT_EQ(Repository::Create(repo_dir_, {}, AllKeys(), clock_).status().code(),
            StatusCode::kAlreadyExists);
}

TEST_F(RepositoryTest, VersionsPublishedElsewhereAreSkippedAndTheClientFollows) {
  CreateRepository();
  InitClient();
  ASSERT_TRUE(RefreshedClient());
  const uint64_t snapshot = repo_->snapshot().common.version;
  const uint64_t timestamp = repo_->timestamp().common.version;
  repo_.reset();
  RepositoryOptions options;
  options.published_versions = {{RoleType::kTimestamp, timestamp + 5},
                                {RoleType::kSnapshot, snapshot + 2}};
  auto reopened = Repository::Open(repo_dir_, clock_, options);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ASSERT_TRUE((*reopened)->ResignTimestamp(AllKeys()).ok());
  EXPECT_EQ((*reopened)->timestamp().common.version, timestamp + 6);
  ASSERT_TRUE((*reopened)->ResignSnapshot(AllKeys()).ok());
  EXPECT_EQ((*reopened)->snapshot().common.version, snapshot + 3);
  EXPECT_EQ((*reopened)->timestamp().common.version, timestamp + 7);
  const uint64_t targets = (*reopened)->targets().common.version;
  ASSERT_TRUE((*reopened)->ResignTargets(AllKeys()).ok());
  EXPECT_EQ((*reopened)->targets().common.version, targets + 1) << "none published elsewhere";
  auto client = RefreshedClient();
  ASSERT_TRUE(client) << "versions that skip some are still newer";
  EXPECT_EQ(client->targets()->common.version, targets + 1);
}

TEST_F(RepositoryTest, RepositoryMadeFromAnotherOnesSignedRootIsTrustedFromThatRoot) {
  CreateRepository();
  InitClient();
  const std::string root = ReadRaw("1.root.json");
  KeyRing online;
  online.Add(targets_key_);
  online.Add(snapshot_key_);
  online.Add(timestamp_key_);
  // The client trusts 1.root.json; a second repository built from those bytes
  // without the root key serves it what the online keys signed.
  repo_.reset();
  fs::remove_all(repo_dir_);
  auto made = Repository::CreateWithRoot(repo_dir_, root, online, clock_);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ASSERT_TRUE(PublishRelease(**made, DemoRelease(3), online).ok());
  auto client = RefreshedClient();
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->targets()->targets.contains(ReleaseTargetName("demo", 3)));
  EXPECT_EQ(Repository::CreateWithRoot(repo_dir_, root, online, clock_).status().code(),
            StatusCode::kAlreadyExists);
  // A root whose signature does not verify is refused before anything is written.
  const std::string other = temp_dir_ + "/other";
  std::string forged = root;
  forged.replace(forged.find("\"version\": 1"), 12, "\"version\": 2");
  EXPECT_EQ(Repository::CreateWithRoot(other, forged, online, clock_).status().code(),
            StatusCode::kCorruption);
  EXPECT_FALSE(fs::exists(other + "/metadata/root.json"));
}

TEST_F(RepositoryTest, PublishCutShortBeforeTheTimestampLeavesAUsableRepository) {
  CreateRepository();
  InitClient();
  // A crash after the new targets and snapshot files but before timestamp.json:
  // the old timestamp still names complete, consistent files.
  std::string next_targets = std::to_string(repo_->targets().common.version + 1) + ".targets.json";
  std::string next_snapshot =
      std::to_string(repo_->snapshot().common.version + 1) + ".snapshot.json";
  WriteRaw(next_targets, "{\"half\":");
  WriteRaw(next_snapshot, "");
  ASSERT_TRUE(Refresh().ok());
  auto reopened = Repository::Open(repo_dir_, clock_);
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE(PublishRelease(**reopened, DemoRelease(1), AllKeys()).ok());
  auto client = RefreshedClient();
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->targets()->targets.contains(ReleaseTargetName("demo", 1)));
}

TEST_F(RepositoryTest, WithoutUnversionedCopiesTheVersionsTheTimestampNamesAreCurrent) {
  CreateRepository();
  InitClient();
  const std::string root = ReadRaw("1.root.json");
  KeyRing online;
  online.Add(targets_key_);
  online.Add(snapshot_key_);
  online.Add(timestamp_key_);
  repo_.reset();
  fs::remove_all(repo_dir_);
  RepositoryOptions options;
  options.unversioned_copies = false;
  auto made = Repository::CreateWithRoot(repo_dir_, root, online, clock_, options);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ASSERT_TRUE(PublishRelease(**made, DemoRelease(3), online).ok());
  const std::string md = repo_dir_ + "/metadata/";
  EXPECT_FALSE(fs::exists(md + "targets.json"));
  EXPECT_FALSE(fs::exists(md + "snapshot.json"));
  EXPECT_TRUE(fs::exists(md + "root.json"));
  const uint64_t targets = (*made)->targets().common.version;
  const uint64_t snapshot = (*made)->snapshot().common.version;
  made->reset();
  // A crash left the next versions on disk, unnamed by the timestamp: the
  // current ones are still those the timestamp and snapshot name.
  WriteRaw(std::to_string(targets + 1) + ".targets.json", "{\"half\":");
  WriteRaw(std::to_string(snapshot + 1) + ".snapshot.json", "");
  auto reopened = Repository::Open(repo_dir_, clock_, options);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->targets().common.version, targets);
  EXPECT_EQ((*reopened)->snapshot().common.version, snapshot);
  ASSERT_TRUE(PublishRelease(**reopened, DemoRelease(4), online).ok());
  EXPECT_FALSE(fs::exists(md + "targets.json"));
  auto client = RefreshedClient();
  ASSERT_TRUE(client) << "a client of consistent snapshots follows";
  EXPECT_TRUE(client->targets()->targets.contains(ReleaseTargetName("demo", 4)));
}

TEST(DirectoryRemoteTest, EncodedNulAndClimbingSegmentsAreRefused) {
  DirectoryRemote remote("/nonexistent/metadata", "/nonexistent/targets");
  EXPECT_EQ(remote.FetchTarget("a%00b", 10, "/nonexistent/out").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(remote.FetchTarget("a/%2E%2E/b", 10, "/nonexistent/out").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(remote.FetchTarget("a%2Fb", 10, "/nonexistent/out").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(remote.FetchTarget("a%4", 10, "/nonexistent/out").code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flotilla::metadata::testing
