// SigningDuty: two replicas' duties over one database and one repository
// directory; only the lease holder re-signs, and what it signs is recorded.
#include "tracker/service/signing_duty.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/digest.h"
#include "core/file_io.h"

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

class SigningDutyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/signing-duty-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/metadata");
    for (const char* role : {"timestamp", "snapshot", "targets"}) {  // as init left them
      ASSERT_TRUE(
          WriteFileAtomic(dir_ + "/metadata/" + role + ".json", R"({"signed":{"version":0}})")
              .ok());
    }
    for (auto* lease : {&lease_a_, &lease_b_}) {
      auto opened =
          SigningLease::Open(dir_ + "/t.db", clock_, lease == &lease_a_ ? "a" : "b", kTtl);
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
  FakeClock clock_;
  std::unique_ptr<SigningLease> lease_a_, lease_b_;
  int version_ = 0;
};

TEST_F(SigningDutyTest, OnlyTheHolderSignsAndATakeoverSignsAtOnce) {
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

TEST_F(SigningDutyTest, ADocumentConflictingWithARecordedVersionIsRefusedAndTheLeaseKept) {
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

TEST_F(SigningDutyTest, ARepositoryBehindTheDatabaseIsNotSigned) {
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

// Counts its calls and opens a write transaction on the database, which
// the signing turn's transaction would block on SQLite.
class HolderDuty final : public MetadataRefresher {
 public:
  explicit HolderDuty(std::string db) : db_(std::move(db)) {}
  Result<Duration> Refresh(WallTime) override {
    ++calls;
    ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(db_));
    RETURN_IF_ERROR(engine->ExecScript("BEGIN IMMEDIATE; COMMIT;"));
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
TEST_F(SigningDutyTest, TheHolderDutyRunsOnTheHolderOutsideTheTurn) {
  WritingRefresher inner_a(dir_ + "/metadata", "a", version_);
  WritingRefresher inner_b(dir_ + "/metadata", "b", version_);
  SigningDuty a(*lease_a_, inner_a, dir_ + "/metadata");
  SigningDuty b(*lease_b_, inner_b, dir_ + "/metadata");
  HolderDuty duty_a(dir_ + "/t.db");
  HolderDuty duty_b(dir_ + "/t.db");
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

}  // namespace
}  // namespace flotilla::tracker
