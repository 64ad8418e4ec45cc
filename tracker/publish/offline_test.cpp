// The offline-keys flow on a repository made by InitRepository (docs/signing.md):
// stage, sign where the key lives, accept; and the recovery runbooks.
#include "tracker/publish/offline.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"
#include "tracker/publish/repo_init.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;
using metadata::Release;

class OfflineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flotilla-offline-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    InitOptions options;
    options.offline_keys_dir = dir_ + "/off";
    ASSERT_TRUE(InitRepository(repo_.root, options, clock_).ok());
    AddApp("a.key");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string NewKey(const std::string& name) {
    auto key = Ed25519PrivateKey::Generate();
    EXPECT_TRUE(key.SaveFile(dir_ + "/" + name).ok());
    EXPECT_TRUE(WriteFileAtomic(dir_ + "/" + name + ".pub", key.public_key().Hex()).ok());
    return dir_ + "/" + name;
  }
  Status Sign(const std::string& file, const std::string& key) {
    return metadata::SignMetadataFile(file, key, std::nullopt, file);
  }
  // stage-app kiosk with a new key named `key`, signed by the targets key, accepted.
  void AddApp(const std::string& key) {
    auto staged = StageApp({repo_.root, "kiosk", {NewKey(key) + ".pub"}}, clock_);
    ASSERT_TRUE(staged.ok()) << staged.status().ToString();
    ASSERT_TRUE(Sign(*staged, dir_ + "/off/targets.key").ok());
    auto accepted = AcceptSigned(repo_.root, *staged, "", clock_);
    ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  }
  // Release `version` of kiosk (its one artifact written to artifacts/),
  // staged in kiosk's role or also in the top-level targets.
  std::string StageRelease(uint64_t version,
                           metadata::StageIn where = metadata::StageIn::kAppRole) {
    const std::string bytes = "artifact " + std::to_string(version);
    Release r;
    r.app = "kiosk";
    r.version = version;
    r.image = {Digest::Of("m"), Digest::Of("c"), "linux/arm64", {{Digest::Of(bytes), 10}}};
    r.artifacts = {{Digest::Of(bytes),
                    metadata::ArtifactKind::kFull,
                    {},
                    Digest::Of(bytes),
                    bytes.size(),
                    Digest::Of("t" + bytes).bytes(),
                    "zstd"}};
    EXPECT_TRUE(CreateDirectories(repo_.artifacts_dir()).ok());
    EXPECT_TRUE(WriteFileAtomic(repo_.artifact_path(Digest::Of(bytes).Hex()), bytes).ok());
    auto meta = metadata::Repository::Open(repo_.root, clock_).value();
    auto doc = metadata::StageRelease(*meta, r, std::chrono::hours(24 * 365), where);
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    if (!doc.ok()) return "";
    return WritePending(repo_, where == metadata::StageIn::kTopLevel ? "targets" : "apps/kiosk",
                        *doc)
        .value();
  }
  uint64_t Latest() {
    auto meta = metadata::Repository::Open(repo_.root, clock_).value();
    return metadata::LatestReleases(meta->AllTargets()).value()["kiosk"].version;
  }

  FakeClock clock_;
  std::string dir_;
  RepositoryLayout repo_{fs::temp_directory_path() /
                         ("flotilla-offline-" + std::to_string(::getpid())) / "repo"};
};

TEST_F(OfflineTest, KeysDirectoryHoldsOnlineKeysAndAcceptTakesOnlyTheAppKey) {
  std::vector<std::string> keys;
  for (const auto& entry : fs::directory_iterator(KeysDir(repo_))) {
    keys.push_back(entry.path().filename());
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"snapshot.key", "snapshot.key.pub", "timestamp.key",
                                            "timestamp.key.pub"}));
  const std::string pending = StageRelease(1);
  ASSERT_TRUE(Sign(pending, KeysDir(repo_) + "/snapshot.key").ok());
  ASSERT_TRUE(Sign(pending, dir_ + "/off/targets.key").ok());
  EXPECT_EQ(AcceptSigned(repo_.root, pending, "", clock_).status().code(), StatusCode::kCorruption);
  ASSERT_TRUE(Sign(pending, dir_ + "/a.key").ok());
  ASSERT_TRUE(AcceptSigned(repo_.root, pending, "", clock_).ok());
  EXPECT_EQ(Latest(), 1u);
  // The same version again (a replay) is not the next version.
  EXPECT_FALSE(AcceptSigned(repo_.root, pending, "", clock_).ok());
}

// For nodes still running 0.1.0, which read only the top-level targets: the
// release the app key signed is listed there too, by the offline targets key,
// as it is; accept checks its artifacts as for an app role.
TEST_F(OfflineTest, TheTopLevelTakesTheAppRolesReleaseForNodesRunning010) {
  const std::string in_role = StageRelease(1);
  ASSERT_TRUE(Sign(in_role, dir_ + "/a.key").ok());
  ASSERT_TRUE(AcceptSigned(repo_.root, in_role, "", clock_).ok());
  const std::string top = StageRelease(1, metadata::StageIn::kTopLevel);
  ASSERT_FALSE(top.empty());
  ASSERT_TRUE(Sign(top, dir_ + "/a.key").ok());
  EXPECT_FALSE(AcceptSigned(repo_.root, top, "", clock_).ok()) << "the app key signs no top-level";
  ASSERT_TRUE(Sign(top, dir_ + "/off/targets.key").ok());
  fs::path artifact = repo_.artifact_path(Digest::Of("artifact 1").Hex());
  fs::rename(artifact, artifact.string() + ".away");
  EXPECT_EQ(AcceptSigned(repo_.root, top, "", clock_).status().code(),
            StatusCode::kFailedPrecondition);
  fs::rename(artifact.string() + ".away", artifact);
  auto accepted = AcceptSigned(repo_.root, top, "", clock_);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->role, "targets");
  auto meta = metadata::Repository::Open(repo_.root, clock_).value();
  EXPECT_TRUE(meta->targets().targets.contains("apps/kiosk/release-1.json"));
  EXPECT_EQ(Latest(), 1u);
}

TEST_F(OfflineTest, LostAppKeyIsReplacedAndTheOldKeySignsNothingMore) {
  const std::string first = StageRelease(1);
  ASSERT_TRUE(Sign(first, dir_ + "/a.key").ok());
  ASSERT_TRUE(AcceptSigned(repo_.root, first, "", clock_).ok());
  AddApp("b.key");
  const std::string second = StageRelease(2);
  ASSERT_TRUE(Sign(second, dir_ + "/a.key").ok());
  EXPECT_FALSE(AcceptSigned(repo_.root, second, "", clock_).ok());
  ASSERT_TRUE(Sign(second, dir_ + "/b.key").ok());
  auto accepted = AcceptSigned(repo_.root, second, "", clock_);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(Latest(), 2u);
}

TEST_F(OfflineTest, CompromisedOnlineKeysAreRotatedAndADeviceFollows) {
  const std::string root_v1 = *ReadTextFileBounded(repo_.root + "/metadata/1.root.json", 1 << 20);
  ASSERT_TRUE(metadata::TufClient::Initialize(dir_ + "/device", root_v1).ok());
  metadata::DirectoryRemote remote(repo_.root + "/metadata", repo_.root + "/targets");
  ASSERT_TRUE(metadata::TufClient::Open(dir_ + "/device", remote, clock_).value()->Refresh().ok());

  const std::string snapshot = NewKey("snapshot.key"), timestamp = NewKey("timestamp.key");
  auto staged = StageRootRotation(
      {repo_.root, {{"snapshot", {snapshot + ".pub"}}, {"timestamp", {timestamp + ".pub"}}}},
      clock_);
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  ASSERT_TRUE(Sign(*staged, dir_ + "/off/root.key").ok());
  // The new online keys are not in keys/ yet: nothing is published.
  EXPECT_EQ(AcceptSigned(repo_.root, *staged, "", clock_).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_FALSE(fs::exists(repo_.root + "/metadata/2.root.json"));
  for (const std::string& key : {snapshot, timestamp}) {
    fs::rename(key, KeysDir(repo_) + "/" + fs::path(key).filename().string());
  }
  ASSERT_TRUE(AcceptSigned(repo_.root, *staged, "", clock_).ok());
  auto client = metadata::TufClient::Open(dir_ + "/device", remote, clock_).value();
  ASSERT_TRUE(client->Refresh().ok());
  EXPECT_EQ(client->root().common.version, 2u);
}

}  // namespace
}  // namespace flotilla::tracker
