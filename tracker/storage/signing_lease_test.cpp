// The signing lease on both engines: two replicas (two SigningLease
// connections) over one database, with a fake clock so that expiry needs no
// sleeping.
#include "tracker/storage/signing_lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "tests/support/engine_test.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

constexpr Duration kTtl = std::chrono::seconds(3);

class SigningLeaseTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("lease"));
    a_ = Open("replica-a");
    b_ = Open("replica-b");
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }
  std::unique_ptr<SigningLease> Open(const std::string& holder) {
    auto lease = SigningLease::Open(url_, clock_, holder, kTtl);
    EXPECT_TRUE(lease.ok()) << lease.status().ToString();
    return lease.ok() ? std::move(*lease) : nullptr;
  }
  bool Renew(SigningLease& lease) {
    auto held = lease.Renew();
    EXPECT_TRUE(held.ok()) << held.status().ToString();
    return held.ok() && *held;
  }
  // A turn that publishes `publications`; counts the turns that signed.
  Status Turn(SigningLease& lease, std::vector<Publication> publications) {
    return lease.RunSigningTurn([&](const auto&) -> Result<std::vector<Publication>> {
      ++signed_turns_;
      return publications;
    });
  }

  // b takes the lease over (it waits on the row lock meanwhile, up to 30 s).
  bool WaitForTakeover() {
    for (int i = 0; i < 60; ++i) {
      auto held = b_->Renew();
      if (held.ok() && *held) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return false;
  }

  FakeClock clock_;
  std::unique_ptr<SigningLease> a_, b_;
  int signed_turns_ = 0;
};

TEST_P(SigningLeaseTest, OneHolderAtATimeAndEveryTakeoverBumpsTheEpoch) {
  EXPECT_TRUE(Renew(*a_));
  EXPECT_EQ(a_->epoch(), 1);
  EXPECT_FALSE(Renew(*b_)) << "an unexpired lease of another replica is not taken";
  EXPECT_FALSE(b_->held());

  // Renewals keep it (and the epoch) for as long as they come within the TTL.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(kTtl / 3);
    EXPECT_TRUE(Renew(*a_));
    EXPECT_FALSE(Renew(*b_));
  }
  EXPECT_EQ(a_->epoch(), 1);

  clock_.Advance(kTtl);  // the holder stops renewing: its lease expires
  EXPECT_TRUE(Renew(*b_));
  EXPECT_EQ(b_->epoch(), 2);
  EXPECT_FALSE(Renew(*a_)) << "the old holder has lost it";
  EXPECT_FALSE(a_->held());

  clock_.Advance(kTtl + std::chrono::seconds(1));
  EXPECT_TRUE(Renew(*a_));
  EXPECT_EQ(a_->epoch(), 3) << "taking it back is a takeover too";
}

TEST_P(SigningLeaseTest, ReleaseLetsAnotherReplicaTakeOverAtOnce) {
  ASSERT_TRUE(Renew(*a_));
  ASSERT_TRUE(a_->Release().ok());
  EXPECT_FALSE(a_->held());
  EXPECT_TRUE(Renew(*b_));
  EXPECT_EQ(b_->epoch(), 2);
}

TEST_P(SigningLeaseTest, AHolderPastItsTtlSignsNothing) {
  ASSERT_TRUE(Renew(*a_));
  ASSERT_TRUE(Turn(*a_, {{"timestamp", 2, "aa"}}).ok());
  EXPECT_EQ(signed_turns_, 1);

  // Its TTL passes without a renewal (a paused process): no turn, even
  // before anyone else took over.
  clock_.Advance(kTtl);
  Status st = Turn(*a_, {{"timestamp", 3, "a3"}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_FALSE(a_->held());
  EXPECT_EQ(signed_turns_, 1) << "the stale holder did not sign";
  EXPECT_EQ(a_->LatestVersion("timestamp").value(), 2u);
}

TEST_P(SigningLeaseTest, AHolderTakenOverSignsNothingEvenWithALaggingClock) {
  ASSERT_TRUE(Renew(*a_));
  clock_.Advance(kTtl);
  ASSERT_TRUE(Renew(*b_));
  ASSERT_TRUE(Turn(*b_, {{"timestamp", 3, "b3"}}).ok());
  EXPECT_EQ(signed_turns_, 1);

  // a still believes it holds epoch 1, and its clock says the lease has
  // not expired: the epoch check alone refuses it.
  EXPECT_TRUE(a_->held());
  clock_.SetWallTime(clock_.Now() - kTtl);
  Status st = Turn(*a_, {{"timestamp", 3, "a3"}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_FALSE(a_->held());
  EXPECT_EQ(signed_turns_, 1);
  EXPECT_FALSE(Renew(*a_));
}

TEST_P(SigningLeaseTest, AVersionIsRecordedWithOneDocumentOnly) {
  ASSERT_TRUE(Renew(*a_));
  ASSERT_TRUE(Turn(*a_, {{"snapshot", 4, "s4"}, {"timestamp", 7, "t7"}}).ok());
  EXPECT_TRUE(Turn(*a_, {{"snapshot", 4, "s4"}, {"timestamp", 7, "t7"}}).ok())
      << "recording the current documents again is a no-op";

  Status st = Turn(*a_, {{"snapshot", 5, "s5"}, {"timestamp", 7, "other"}});
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists) << st.ToString();
  EXPECT_EQ(a_->LatestVersion("snapshot").value(), 4u) << "the failed turn recorded nothing";
  EXPECT_EQ(a_->LatestVersion("timestamp").value(), 7u);
  EXPECT_EQ(a_->LatestVersion("targets").value(), 0u);

  // Under a later epoch the same rule holds.
  clock_.Advance(kTtl);
  ASSERT_TRUE(Renew(*b_));
  EXPECT_EQ(Turn(*b_, {{"timestamp", 7, "b7"}}).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Turn(*b_, {{"timestamp", 8, "b8"}}).ok());
}

TEST_P(SigningLeaseTest, ATurnIsGivenTheHighestVersionsRecorded) {
  ASSERT_TRUE(Renew(*a_));
  SigningLease::PublishedVersions seen;
  auto turn = [&](SigningLease& lease, std::vector<Publication> publications) {
    return lease.RunSigningTurn(
        [&](const SigningLease::PublishedVersions& latest) -> Result<std::vector<Publication>> {
          seen = latest;
          return publications;
        });
  };
  ASSERT_TRUE(turn(*a_, {{"timestamp", 3, "t3"}, {"snapshot", 2, "s2"}}).ok());
  EXPECT_TRUE(seen.empty()) << "nothing recorded yet";
  ASSERT_TRUE(turn(*a_, {{"timestamp", 9, "t9"}, {"snapshot", 2, "s2"}}).ok());
  EXPECT_EQ(seen, (SigningLease::PublishedVersions{{"timestamp", 3}, {"snapshot", 2}}));
  // The next holder is given what the previous one recorded.
  clock_.Advance(kTtl);
  ASSERT_TRUE(Renew(*b_));
  ASSERT_TRUE(turn(*b_, {{"timestamp", 10, "t10"}}).ok());
  EXPECT_EQ(seen, (SigningLease::PublishedVersions{{"timestamp", 9}, {"snapshot", 2}}));
  EXPECT_EQ(b_->LatestVersions().value(),
            (SigningLease::PublishedVersions{{"timestamp", 10}, {"snapshot", 2}}));
}

// Replicas share PostgreSQL only (SQLite is one process per file): the
// cases of a turn held open while another replica takes over.
using PostgresqlSigningLeaseTest = SigningLeaseTest;

TEST_P(PostgresqlSigningLeaseTest, ATakeoverWaitsForTheTurnInProgress) {
  ASSERT_TRUE(Renew(*a_));
  std::atomic<bool> b_done{false};
  bool b_held = false;
  std::thread b_thread;
  Status st = a_->RunSigningTurn([&](const auto&) -> Result<std::vector<Publication>> {
    clock_.Advance(kTtl);  // the lease expires while the turn runs
    b_thread = std::thread([&] {
      auto held = b_->Renew();
      b_held = held.ok() && *held;
      b_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_FALSE(b_done) << "the takeover must wait for the turn's commit";
    return std::vector<Publication>{{"timestamp", 2, "a2"}};
  });
  b_thread.join();
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(b_held);
  EXPECT_EQ(b_->epoch(), 2);
  EXPECT_EQ(b_->LatestVersion("timestamp").value(), 2u);
  EXPECT_EQ(Turn(*a_, {{"timestamp", 3, "a3"}}).code(), StatusCode::kFailedPrecondition);
}

TEST_P(PostgresqlSigningLeaseTest, AHolderStoppedMidTurnDoesNotBlockATakeover) {
  auto stopped = SigningLease::Open(url_, clock_, "replica-c", std::chrono::seconds(1));
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  ASSERT_TRUE(Renew(**stopped));
  Status st = (*stopped)->RunSigningTurn([&](const auto&) -> Result<std::vector<Publication>> {
    // Stopped past its TTL: the server ends the session and its lock.
    clock_.Advance(std::chrono::seconds(2));
    EXPECT_TRUE(WaitForTakeover());
    return std::vector<Publication>{{"timestamp", 2, "c2"}};
  });
  EXPECT_FALSE(st.ok()) << "its commit fails";
  EXPECT_EQ(b_->epoch(), 2);
  EXPECT_EQ(b_->LatestVersion("timestamp").value(), 0u) << "nothing of the stopped turn";
}

TEST_P(SigningLeaseTest, TtlIsBounded) {
  EXPECT_EQ(SigningLease::Open(url_, clock_, "x", std::chrono::seconds(31)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningLease::Open(url_, clock_, "x", Duration::zero()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_NE(DefaultLeaseHolder(), DefaultLeaseHolder());
}

FLOTILLA_ON_BOTH_ENGINES(SigningLeaseTest);
INSTANTIATE_TEST_SUITE_P(Engines, PostgresqlSigningLeaseTest,
                         ::testing::Values(SqlEngineKind::kPostgresql),
                         [](const auto&) { return "postgresql"; });

}  // namespace
}  // namespace flotilla::tracker
