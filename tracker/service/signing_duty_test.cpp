// SigningDuty on both engines: two replicas' duties over one database and
// one repository directory (or each its own copy); only the lease holder
// re-signs, what it signs is recorded, and versions come from the database.
#include "tracker/service/signing_duty.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/postgres_cluster.h"
#include "tracker/publish/publish_refresher.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"

namespace flotilla::tracker {
namespace {

constexpr Duration kTtl = std::chrono::seconds(3);

// Stands in for the repository's re-signing: writes the three documents at
// the next version (or at `version` again when `rewrite`), as `name`.
class WritingRefresher final : public MetadataRefresher {
 public:
  WritingRefresher(std::string dir, std::string name, int& version)
      : dir_(std::move(dir)), name_(std::move(name)), version_(version) {}
  Result<Duration> Refresh(WallTime) override {
    ++calls;
    if (!rewrite) ++version_;
    for (const char* role : {"timestamp", "snapshot", "targets"}) {
      const std::string doc = R"({"signed":{"version":)" + std::to_string(version_) + R"(,"by":")" +
                              name_ + R"("},"signatures":[]})";
      RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/" + role + ".json", doc));
    }
    return Duration(std::chrono::hours(1));
  }
  int calls = 0;
  bool rewrite = false;

 private:
  std::string dir_, name_;
  int& version_;
};

class SigningDutyTest : public ::testing::TestWithParam<SqlEngineKind> {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "/signing-duty-" + name.substr(0, name.find('/')) +
           (GetParam() == SqlEngineKind::kSqlite ? "-sqlite" : "-postgresql");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/metadata");
    for (const char* role : {"timestamp", "snapshot", "targets"}) {  // as init left them
      ASSERT_TRUE(
          WriteFileAtomic(dir_ + "/metadata/" + role + ".json", R"({"signed":{"version":0}})")
              .ok());
    }
    std::string url = dir_ + "/t.db";
    if (GetParam() == SqlEngineKind::kPostgresql) {
      auto cluster = testing::PostgresCluster::Shared();
      ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
      auto created = (*cluster)->CreateDatabase("duty");
      ASSERT_TRUE(created.ok()) << created.status().ToString();
      url = *created;
    }
    url_ = url;
    for (auto* lease : {&lease_a_, &lease_b_}) {
      auto opened = SigningLease::Open(url, clock_, lease == &lease_a_ ? "a" : "b", kTtl);
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      *lease = std::move(*opened);
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Duration Run(SigningDuty& duty) {
    auto wait = duty.Refresh(clock_.Now());
    EXPECT_TRUE(wait.ok()) << wait.status().ToString();
    EXPECT_LE(*wait, kTtl / 3) << "the lease is renewed every TTL/3";
    return *wait;
  }

  std::string dir_;
  std::string url_;  // the database the leases are in
  FakeClock clock_;
  std::unique_ptr<SigningLease> lease_a_, lease_b_;
  int version_ = 0;
};

TEST_P(SigningDutyTest, OnlyTheHolderSignsAndATakeoverSignsAtOnce) {
  WritingRefresher inner_a(dir_ + "/metadata", "a", version_);
  WritingRefresher inner_b(dir_ + "/metadata", "b", version_);
  TrackerMetrics metrics_a, metrics_b;
  SigningDuty a(*lease_a_, inner_a, dir_ + "/metadata", &metrics_a);
  SigningDuty b(*lease_b_, inner_b, dir_ + "/metadata", &metrics_b);
  auto shows = [](const TrackerMetrics& m, const std::string& line) {
    return m.Render({}).find(line + "\n") != std::string::npos;
  };

  Run(a);
  Run(b);
  EXPECT_TRUE(shows(metrics_a, "flotilla_signing_lease_held 1"));
  EXPECT_TRUE(shows(metrics_b, "flotilla_signing_lease_held 0"));
  EXPECT_EQ(inner_a.calls, 1);
  EXPECT_EQ(inner_b.calls, 0) << "not the holder";
  EXPECT_EQ(lease_a_->LatestVersion("timestamp").value(), 1u);
  EXPECT_EQ(lease_a_->LatestVersion("targets").value(), 1u);

  for (int i = 0; i < 4; ++i) {  // renewals only: nothing is due for an hour
    clock_.Advance(kTtl / 3);
    Run(a);
    Run(b);
  }
  EXPECT_EQ(inner_a.calls, 1);
  EXPECT_EQ(inner_b.calls, 0);

  clock_.Advance(kTtl);  // a stops (killed): b takes over and checks at once
  Run(b);
  EXPECT_EQ(inner_b.calls, 1);
  EXPECT_EQ(lease_b_->epoch(), 2);
  EXPECT_EQ(lease_b_->LatestVersion("timestamp").value(), 2u);
  Run(a);
  EXPECT_EQ(inner_a.calls, 1) << "the old holder signs nothing";
  EXPECT_FALSE(lease_a_->held());
  EXPECT_TRUE(shows(metrics_a, "flotilla_signing_lease_held 0"));
  EXPECT_TRUE(shows(metrics_b, "flotilla_signing_lease_held 1"));
  EXPECT_TRUE(shows(metrics_b, "flotilla_signing_lease_epoch 2"));
}

TEST_P(SigningDutyTest, ADocumentConflictingWithARecordedVersionIsRefusedAndTheLeaseKept) {
  WritingRefresher inner_a(dir_ + "/metadata", "a", version_);
  SigningDuty a(*lease_a_, inner_a, dir_ + "/metadata");
  Run(a);
  inner_a.rewrite = true;  // the same version with other bytes
  clock_.Advance(std::chrono::hours(1));
  Run(a);
  EXPECT_EQ(inner_a.calls, 2);
  EXPECT_TRUE(lease_a_->held());
  auto wait = a.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(inner_a.calls, 2) << "retried after a minute, not at once";
}

TEST_P(SigningDutyTest, ARepositoryBehindTheDatabaseIsNotSigned) {
  WritingRefresher inner_a(dir_ + "/metadata", "a", version_);
  SigningDuty a(*lease_a_, inner_a, dir_ + "/metadata");
  Run(a);
  Run(a);  // nothing due: not signed again
  ASSERT_EQ(inner_a.calls, 1);
  // Another copy of the repository (version 0 of everything) under the same database.
  version_ = -1;
  inner_a.Refresh(clock_.Now()).value();
  inner_a.calls = 0;
  clock_.Advance(std::chrono::hours(1));
  Run(a);
  EXPECT_EQ(inner_a.calls, 0) << "versions devices already went past are not signed again";
  EXPECT_TRUE(lease_a_->held());
  EXPECT_EQ(lease_a_->LatestVersion("timestamp").value(), 1u);
}

// Each replica with its own copy of a real repository (same keys, same
// snapshot and targets): the copy of the replica taking over has an old
// timestamp. Its versions come from the database: it signs above the
// versions the other replica published, and never one of them again.
TEST_P(SigningDutyTest, AReplicaWhoseTimestampIsBehindSignsAboveTheDatabase) {
  const RepositoryLayout repo_a{dir_ + "/repo-a"}, repo_b{dir_ + "/repo-b"};
  ASSERT_TRUE(InitRepository(repo_a.root, InitOptions{}, clock_).ok());
  std::filesystem::copy(repo_a.root, repo_b.root, std::filesystem::copy_options::recursive);
  metadata::RepositoryOptions options;
  options.timestamp_expiry = std::chrono::minutes(2);
  RepositoryRefresher refresher_a(repo_a, clock_, options), refresher_b(repo_b, clock_, options);
  SigningDuty a(*lease_a_, refresher_a, repo_a.metadata_dir());
  SigningDuty b(*lease_b_, refresher_b, repo_b.metadata_dir());
  auto timestamp_version = [](const RepositoryLayout& repo) {
    return ReadPublishedMetadata(repo).value().timestamp.common.version;
  };
  const uint64_t initial = timestamp_version(repo_a);

  Run(a);  // init's day-long timestamp is re-signed for two minutes at once
  Run(b);
  for (int i = 0; i < 9; ++i) {  // 3 minutes: re-signed every minute
    clock_.Advance(std::chrono::seconds(20));
    Run(a);
    Run(b);
  }
  const uint64_t signed_by_a = timestamp_version(repo_a);
  EXPECT_GE(signed_by_a, initial + 3);
  EXPECT_EQ(lease_a_->LatestVersion("timestamp").value(), signed_by_a);
  EXPECT_EQ(timestamp_version(repo_b), initial) << "b signed nothing";

  clock_.Advance(kTtl);  // a stops: b takes over with its old timestamp.json
  Run(b);
  EXPECT_EQ(lease_b_->epoch(), 2);
  EXPECT_EQ(timestamp_version(repo_b), signed_by_a + 1) << "above a's, not " << initial + 1;
  EXPECT_EQ(lease_b_->LatestVersion("timestamp").value(), signed_by_a + 1);
  EXPECT_TRUE(metadata::Repository::Open(repo_b.root, clock_).ok());
  // The snapshot behind in b's copy would roll devices back: not signed.
  clock_.Advance(std::chrono::minutes(2));
  ASSERT_TRUE(lease_b_->Release().ok());
  Run(a);  // a takes the lease back and re-signs its snapshot
  ASSERT_TRUE(lease_a_->held());
  auto repo = metadata::Repository::Open(repo_a.root, clock_).value();
  ASSERT_TRUE(repo->ResignSnapshot(
                      LoadRoleKeys(repo_a, repo->root(),
                                   {metadata::RoleType::kSnapshot, metadata::RoleType::kTimestamp})
                          .value())
                  .ok());
  clock_.Advance(std::chrono::minutes(2));
  Run(a);  // records the snapshot a's publish left
  ASSERT_TRUE(lease_a_->Release().ok());
  const uint64_t recorded = lease_b_->LatestVersion("timestamp").value();
  clock_.Advance(std::chrono::minutes(2));
  Run(b);
  ASSERT_TRUE(lease_b_->held());
  EXPECT_EQ(lease_b_->LatestVersion("timestamp").value(), recorded) << "b signs nothing";
  EXPECT_LT(timestamp_version(repo_b), recorded);
}

INSTANTIATE_TEST_SUITE_P(Engines, SigningDutyTest,
                         ::testing::Values(SqlEngineKind::kSqlite, SqlEngineKind::kPostgresql),
                         [](const ::testing::TestParamInfo<SqlEngineKind>& info) {
                           return info.param == SqlEngineKind::kSqlite ? "sqlite" : "postgresql";
                         });

TEST(CurrentPublicationsTest, ReadsVersionsAndHashesAndRefusesMalformedDocuments) {
  const std::string dir = ::testing::TempDir() + "/publications";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* role : {"timestamp", "snapshot", "targets"}) {
    ASSERT_TRUE(WriteFileAtomic(dir + "/" + role + ".json", R"({"signed":{"version":4}})").ok());
  }
  auto current = CurrentPublications(dir);
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  ASSERT_EQ(current->size(), 3u);
  EXPECT_EQ((*current)[0].role, "timestamp");
  EXPECT_EQ((*current)[0].version, 4u);
  EXPECT_EQ((*current)[0].sha256, Digest::Of(std::string(R"({"signed":{"version":4}})")).Hex());
  ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot.json", R"({"signed":{"version":-1}})").ok());
  EXPECT_FALSE(CurrentPublications(dir).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker

namespace flotilla::tracker {
namespace {

// Counts its calls and takes what a signing turn's transaction holds: the
// write lock (SQLite), the lease row (PostgreSQL), without waiting.
class HolderDuty final : public MetadataRefresher {
 public:
  explicit HolderDuty(std::string db) : db_(std::move(db)) {}
  Result<Duration> Refresh(WallTime) override {
    ++calls;
    ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(db_));
    RETURN_IF_ERROR(
        engine->ExecScript(engine->kind() == SqlEngineKind::kSqlite
                               ? "BEGIN IMMEDIATE; COMMIT;"
                               : "BEGIN; SELECT 1 FROM signing_lease FOR UPDATE NOWAIT; COMMIT;"));
    ++writes;
    return Duration(std::chrono::milliseconds(500));
  }
  int calls = 0;
  int writes = 0;  // calls that could take the write lock

 private:
  std::string db_;
};

// The holder's own duty (the rollouts' evaluation in serve) runs on the
// holder alone, outside the signing turn (it can write to the database), and
// its wait bounds the duty's next call.
TEST_P(SigningDutyTest, TheHolderDutyRunsOnTheHolderOutsideTheTurn) {
  WritingRefresher inner_a(dir_ + "/metadata", "a", version_);
  WritingRefresher inner_b(dir_ + "/metadata", "b", version_);
  SigningDuty a(*lease_a_, inner_a, dir_ + "/metadata");
  SigningDuty b(*lease_b_, inner_b, dir_ + "/metadata");
  HolderDuty duty_a(url_);
  HolderDuty duty_b(url_);
  a.SetHolderDuty(&duty_a);
  b.SetHolderDuty(&duty_b);
  EXPECT_LE(Run(a), std::chrono::milliseconds(500));
  Run(b);
  EXPECT_EQ(duty_a.calls, 1);
  EXPECT_EQ(duty_b.calls, 0) << "b does not hold the lease";
  Run(a);
  EXPECT_EQ(duty_a.calls, 1) << "not before the wait it asked for";
  clock_.Advance(std::chrono::milliseconds(600));
  Run(a);
  EXPECT_EQ(duty_a.calls, 2);
  EXPECT_EQ(duty_a.writes, 2) << "no signing turn's transaction held the database";
  EXPECT_EQ(inner_a.calls, 1) << "the repository's re-signing keeps its own hour";
}

// Stands in for a duty: returns `wait`, or an error when `fail`.
class CountingDuty final : public MetadataRefresher {
 public:
  explicit CountingDuty(Duration wait) : wait_(wait) {}
  Result<Duration> Refresh(WallTime) override {
    ++calls;
    if (fail) return Internal("injected");
    return wait_;
  }
  int calls = 0;
  bool fail = false;

 private:
  Duration wait_;
};

// The holder's duties (rollouts, the fleet metadata's re-signing) each keep
// their own wait; one that fails is retried a minute later, the others run on.
TEST(HolderDutiesTest, EachDutyRunsOnItsOwnWaitAndAFailureDelaysOnlyIt) {
  FakeClock clock;
  CountingDuty often(std::chrono::seconds(5));
  CountingDuty seldom(std::chrono::hours(1));
  HolderDuties duties({&often, &seldom});
  auto wait = duties.Refresh(clock.Now());
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(*wait, std::chrono::seconds(5));
  EXPECT_EQ(often.calls, 1);
  EXPECT_EQ(seldom.calls, 1);
  clock.Advance(std::chrono::seconds(5));
  often.fail = true;
  wait = duties.Refresh(clock.Now());
  ASSERT_TRUE(wait.ok()) << "a duty's error is logged, not returned";
  EXPECT_EQ(often.calls, 2);
  EXPECT_EQ(seldom.calls, 1) << "not before its hour";
  EXPECT_EQ(*wait, std::chrono::minutes(1)) << "the failed duty again in a minute";
}

}  // namespace
}  // namespace flotilla::tracker
