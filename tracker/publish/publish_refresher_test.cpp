// RepositoryRefresher and crash recovery of unpublished metadata, on a real
// repository made by InitRepository, with a FakeClock.
#include "tracker/publish/publish_refresher.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/repository.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;
using metadata::RoleType;
using std::chrono::hours;

class RefresherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/refresherXXXXXX";
    base_ = mkdtemp(pattern);
    repo_ = RepositoryLayout{base_ + "/repo"};
    ASSERT_TRUE(InitRepository(repo_.root, InitOptions{}, clock_).ok());
  }
  void TearDown() override { fs::remove_all(base_); }

  uint64_t TimestampVersion() {
    return ReadPublishedMetadata(repo_).value().timestamp.common.version;
  }
  std::string Read(const std::string& name) {
    return ReadTextFileBounded(repo_.metadata_dir() + "/" + name, 1 << 20).value();
  }
  // Adds a target and then puts timestamp.json back: what a publish killed
  // just before its commit point leaves.
  void PublishWithoutTimestamp() {
    const std::string old_timestamp = Read("timestamp.json");
    auto repo = metadata::Repository::Open(repo_.root, clock_).value();
    auto ring = LoadRoleKeys(repo_, repo->root(),
                             {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp})
                    .value();
    ASSERT_TRUE(repo->AddTargets({{"half.txt", "half", nullptr}}, ring).ok());
    ASSERT_TRUE(WriteFileAtomic(repo_.metadata_dir() + "/timestamp.json", old_timestamp).ok());
  }

  FakeClock clock_;
  std::string base_;
  RepositoryLayout repo_;
};

TEST_F(RefresherTest, ResignsTimestampOnlyWhenHalfItsLifetimeIsGone) {
  RepositoryRefresher refresher(repo_, clock_);
  const uint64_t v1 = TimestampVersion();
  auto wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(TimestampVersion(), v1);  // fresh: nothing to do
  EXPECT_EQ(*wait, std::chrono::hours(1));

  clock_.Advance(hours(13));
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(TimestampVersion(), v1 + 1);
  auto expires = ReadPublishedMetadata(repo_).value().timestamp.common.expires;
  EXPECT_GT(expires, clock_.Now() + hours(23));
  // The repository still opens and verifies.
  EXPECT_TRUE(metadata::Repository::Open(repo_.root, clock_).ok());
}

TEST_F(RefresherTest, AShorterTimestampLifetimeAppliesAtOnceAndSetsTheWait) {
  metadata::RepositoryOptions options;
  options.timestamp_expiry = std::chrono::minutes(2);
  RepositoryRefresher refresher(repo_, clock_, options);
  const uint64_t v1 = TimestampVersion();  // init signed it for a day
  auto wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(TimestampVersion(), v1 + 1);
  const auto expires = ReadPublishedMetadata(repo_).value().timestamp.common.expires;
  EXPECT_LE(expires, clock_.Now() + std::chrono::minutes(2));
  EXPECT_GT(expires, clock_.Now() + std::chrono::seconds(119));
  EXPECT_EQ(*wait, std::chrono::minutes(1));
  clock_.Advance(std::chrono::seconds(40));
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(TimestampVersion(), v1 + 1) << "not due before half its lifetime";
  EXPECT_EQ(*wait, std::chrono::seconds(30)) << "a quarter of the lifetime, not a minute";
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(refresher.Refresh(clock_.Now()).ok());
  EXPECT_EQ(TimestampVersion(), v1 + 2);
}

TEST_F(RefresherTest, SignsAboveVersionsPublishedElsewhere) {
  RepositoryRefresher refresher(repo_, clock_);
  const uint64_t v1 = TimestampVersion();
  // Nothing is due, but devices may have seen timestamp v1 + 4: re-signed above it at once.
  auto wait = refresher.RefreshAbove(clock_.Now(), {{"timestamp", v1 + 4}, {"snapshot", 1}});
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(TimestampVersion(), v1 + 5);
  ASSERT_TRUE(refresher.RefreshAbove(clock_.Now(), {{"timestamp", v1 + 5}}).ok());
  EXPECT_EQ(TimestampVersion(), v1 + 5) << "current and not due: not signed again";
  clock_.Advance(hours(13));
  ASSERT_TRUE(refresher.RefreshAbove(clock_.Now(), {{"timestamp", v1 + 9}}).ok());
  EXPECT_EQ(TimestampVersion(), v1 + 10);
  EXPECT_TRUE(metadata::Repository::Open(repo_.root, clock_).ok());
}

TEST_F(RefresherTest, ResignsSnapshotBeforeItExpires) {
  RepositoryRefresher refresher(repo_, clock_);
  const uint64_t snapshot_v = ReadPublishedMetadata(repo_).value().snapshot.common.version;
  clock_.Advance(hours(24 * 4));
  ASSERT_TRUE(refresher.Refresh(clock_.Now()).ok());
  auto published = ReadPublishedMetadata(repo_).value();
  EXPECT_EQ(published.snapshot.common.version, snapshot_v + 1);
  EXPECT_GT(published.snapshot.common.expires, clock_.Now() + hours(24 * 6));
}

TEST_F(RefresherTest, WaitsWhileAPublishHoldsTheLock) {
  RepositoryRefresher refresher(repo_, clock_);
  clock_.Advance(hours(13));
  const uint64_t v1 = TimestampVersion();
  {
    auto lock = PublishLock::Acquire(repo_, /*wait=*/false);
    ASSERT_TRUE(lock.ok());
    auto wait = refresher.Refresh(clock_.Now());
    ASSERT_TRUE(wait.ok());
    EXPECT_EQ(*wait, std::chrono::seconds(30));
    EXPECT_EQ(TimestampVersion(), v1);
  }
  ASSERT_TRUE(refresher.Refresh(clock_.Now()).ok());
  EXPECT_EQ(TimestampVersion(), v1 + 1);
}

TEST_F(RefresherTest, UnfinishedPublishIsPutBackBeforeSigning) {
  const std::string published_targets = Read("targets.json");
  PublishWithoutTimestamp();
  EXPECT_NE(Read("targets.json"), published_targets);
  // Without recovery the metadata writer refuses the repository.
  EXPECT_FALSE(metadata::Repository::Open(repo_.root, clock_).ok());

  std::vector<std::string> notes;
  ASSERT_TRUE(RecoverUnpublishedMetadata(repo_, notes).ok());
  EXPECT_EQ(notes.size(), 2u);
  EXPECT_EQ(Read("targets.json"), published_targets);
  auto repo = metadata::Repository::Open(repo_.root, clock_);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  EXPECT_FALSE((*repo)->targets().targets.contains("half.txt"));

  // The refresher recovers the same way on its own.
  PublishWithoutTimestamp();
  RepositoryRefresher refresher(repo_, clock_);
  clock_.Advance(hours(13));
  ASSERT_TRUE(refresher.Refresh(clock_.Now()).ok());
  EXPECT_FALSE(ReadPublishedMetadata(repo_).value().targets.targets.contains("half.txt"));
}

TEST_F(RefresherTest, NoRefresherWithoutATimestampKey) {
  EXPECT_NE(MakeRepositoryRefresher(repo_.root, clock_), nullptr);
  fs::remove(RoleKeyPath(repo_, RoleType::kTimestamp));
  EXPECT_EQ(MakeRepositoryRefresher(repo_.root, clock_), nullptr);
}

TEST_F(RefresherTest, InitRefusesANonEmptyDirectory) {
  Status again = InitRepository(repo_.root, InitOptions{}, clock_);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  const std::string other = base_ + "/other";
  fs::create_directories(other);
  ASSERT_TRUE(WriteFileAtomic(other + "/precious", std::string("x")).ok());
  EXPECT_EQ(InitRepository(other, InitOptions{}, clock_).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::exists(other + "/precious"));
  // An empty directory is fine.
  const std::string empty = base_ + "/empty";
  fs::create_directories(empty);
  EXPECT_TRUE(InitRepository(empty, InitOptions{}, clock_).ok());
}

}  // namespace
}  // namespace flotilla::tracker
