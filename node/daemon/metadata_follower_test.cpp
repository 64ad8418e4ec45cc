// The metadata follower on the fake clock: the refresh schedule (interval,
// backoff, jitter), enrolment retries and the LAN fallback, against a
// scripted metadata source.
#include "node/daemon/metadata_follower.h"

#include <gtest/gtest.h>

#include <deque>

namespace flotilla::node {
namespace {

using std::chrono::seconds;

class ScriptedSource final : public MetadataSource {
 public:
  explicit ScriptedSource(const Clock& clock) : clock_(clock) {}

  Result<DeviceCredentials> Enrol() override {
    ++enrolments;
    if (enrol_failures > 0) {
      --enrol_failures;
      return enrol_error;
    }
    return DeviceCredentials{"dev-1", std::string(64, 'c'), std::string(64, 'p'), ""};
  }
  Result<std::map<std::string, metadata::Release>> Refresh(const std::string& base_url) override {
    refreshes.push_back({base_url, clock_.MonotonicNow()});
    auto answer = answers.count(base_url) ? answers.at(base_url) : Status(fallback);
    if (!answer.ok()) return answer;
    metadata::Release release;
    release.app = "signage";
    release.version = 7;
    return std::map<std::string, metadata::Release>{{"signage", release}};
  }
  uint64_t TrustedTimestampVersion() override { return timestamp_version; }
  std::vector<Neighbour> Neighbours() override { return neighbours; }

  struct Call {
    std::string url;
    MonoTime at;
  };
  std::vector<Call> refreshes;
  std::map<std::string, Status> answers;  // by base URL
  Status fallback = Status::Ok();         // for other URLs
  int enrol_failures = 0;
  Status enrol_error = PermissionDenied("enrol: the tracker refused the fleet token");
  int enrolments = 0;
  uint64_t timestamp_version = 3;
  std::vector<Neighbour> neighbours;

 private:
  const Clock& clock_;
};

class MetadataFollowerTest : public ::testing::Test {
 protected:
  MetadataFollowerTest() : loop_(clock_), source_(clock_) {}

  std::unique_ptr<MetadataFollower> Make(uint64_t seed = 1) {
    return std::make_unique<MetadataFollower>(
        FollowerOptions{"http://tracker/metadata", 300, 60, seed}, source_, clock_, loop_,
        FollowerEvents{.enrolled = [this](const DeviceCredentials&) { ++enrolled_; },
                       .releases =
                           [this](const std::map<std::string, metadata::Release>& r) {
                             released_.push_back(r.at("signage").version);
                           },
                       .error = [this](const std::string& e) { errors_.push_back(e); }});
  }
  // Seconds between consecutive refreshes.
  std::vector<double> Gaps() const {
    std::vector<double> gaps;
    for (size_t i = 1; i < source_.refreshes.size(); ++i) {
      gaps.push_back(
          std::chrono::duration<double>(source_.refreshes[i].at - source_.refreshes[i - 1].at)
              .count());
    }
    return gaps;
  }

  FakeClock clock_;
  ManualExecutor loop_;
  ScriptedSource source_;
  int enrolled_ = 0;
  std::vector<uint64_t> released_;
  std::vector<std::string> errors_;
};

TEST_F(MetadataFollowerTest, FailedRefreshesBackOffFrom5sDoublingToTheCapThenTheIntervalResumes) {
  source_.fallback = Unavailable("connect: refused");
  auto follower = Make();
  follower->SetCredentials(DeviceCredentials{"dev-1", "", "", ""});
  follower->Start();
  loop_.AdvanceBy(seconds(600));
  // 5, 10, 20, 40, then the 60 s cap, each within +-10%.
  const std::vector<double> expected = {5, 10, 20, 40, 60, 60, 60};
  std::vector<double> gaps = Gaps();
  ASSERT_GE(gaps.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_GE(gaps[i], 0.9 * expected[i]) << "gap " << i;
    EXPECT_LE(gaps[i], 1.1 * expected[i]) << "gap " << i;
  }
  EXPECT_EQ(follower->status().refreshes_ok, 0u);
  EXPECT_EQ(follower->status().refreshes_failed, source_.refreshes.size());
  // The same error is reported once, not at every attempt.
  EXPECT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("cannot update: "), std::string::npos) << errors_[0];

  // The tracker is back: the next refresh works and the interval resumes.
  source_.fallback = Status::Ok();
  const size_t before = source_.refreshes.size();
  loop_.AdvanceBy(seconds(70));
  ASSERT_EQ(source_.refreshes.size(), before + 1);
  EXPECT_EQ(released_, std::vector<uint64_t>{7});
  EXPECT_TRUE(follower->status().last_refresh_error.empty());
  EXPECT_GT(follower->status().last_refresh_unix, 0);
  const size_t ok_at = source_.refreshes.size();
  loop_.AdvanceBy(seconds(3000));
  gaps = Gaps();
  for (size_t i = ok_at - 1; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], 270) << "gap " << i;
    EXPECT_LE(gaps[i], 330) << "gap " << i;
  }
  EXPECT_GE(source_.refreshes.size() - ok_at, 9u);
}

TEST_F(MetadataFollowerTest, JitterSpreadsTheRefreshesOfAFleet) {
  std::vector<std::vector<double>> fleets;
  for (uint64_t seed : {11, 12}) {
    source_.refreshes.clear();
    auto follower = Make(seed);
    follower->Start();
    loop_.AdvanceBy(seconds(3600));
    follower->Stop();
    fleets.push_back(Gaps());
  }
  ASSERT_GE(fleets[0].size(), 10u);
  // Not every gap the same, and two devices not in step.
  EXPECT_NE(*std::min_element(fleets[0].begin(), fleets[0].end()),
            *std::max_element(fleets[0].begin(), fleets[0].end()));
  EXPECT_NE(fleets[0][0], fleets[1][0]);
  for (const auto& gaps : fleets) {
    for (double gap : gaps) {
      EXPECT_GE(gap, 270);
      EXPECT_LE(gap, 330);
    }
  }
}

TEST_F(MetadataFollowerTest, RefreshNowForgetsTheBackoff) {
  source_.fallback = Unavailable("connect: refused");
  auto follower = Make();
  follower->Start();
  loop_.AdvanceBy(seconds(200));  // deep in the backoff: the next try is a minute away
  const size_t before = source_.refreshes.size();
  source_.fallback = Status::Ok();
  follower->RefreshNow();
  loop_.RunUntilIdle();
  ASSERT_EQ(source_.refreshes.size(), before + 1);
  EXPECT_EQ(source_.refreshes.back().at, clock_.MonotonicNow());
  EXPECT_EQ(released_.size(), 1u);
}

TEST_F(MetadataFollowerTest, EnrolmentIsTriedAtEachRefreshUntilItWorks) {
  source_.enrol_failures = 2;
  auto follower = Make();
  follower->Start();
  loop_.RunUntilIdle();
  EXPECT_FALSE(follower->credentials().has_value());
  EXPECT_EQ(released_.size(), 1u);  // metadata needs no credentials
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_EQ(errors_[0].rfind("enrolment: ", 0), 0u) << errors_[0];
  loop_.AdvanceBy(seconds(700));  // two more refreshes
  EXPECT_EQ(source_.enrolments, 3);
  ASSERT_TRUE(follower->credentials().has_value());
  EXPECT_EQ(follower->credentials()->device_id, "dev-1");
  EXPECT_EQ(enrolled_, 1);
  loop_.AdvanceBy(seconds(700));
  EXPECT_EQ(source_.enrolments, 3);  // enrolled: never again
}

TEST_F(MetadataFollowerTest, ATrackerUnreachableForEnrolmentIsNotAskedForMetadataToo) {
  source_.enrol_failures = 1;
  source_.enrol_error = DeadlineExceeded("enrol: timed out");
  source_.neighbours = {{"kiosk-2", "http://10.0.0.2:4000", 1, 9, {}}};
  auto follower = Make();
  follower->Start();
  loop_.RunUntilIdle();
  ASSERT_EQ(source_.refreshes.size(), 1u);  // the neighbour only
  EXPECT_EQ(source_.refreshes[0].url, "http://10.0.0.2:4000/metadata");
  EXPECT_EQ(released_.size(), 1u);
}

TEST_F(MetadataFollowerTest, AnUnreachableTrackerIsReplacedByANeighbourWithNewerMetadata) {
  source_.answers["http://tracker/metadata"] = DeadlineExceeded("read timed out");
  source_.neighbours = {{"kiosk-2", "http://10.0.0.2:4000", 1, 9, {}},
                        {"kiosk-3", "http://10.0.0.3:4000", 1, 3, {}}};  // not newer than ours
  auto follower = Make();
  follower->SetCredentials(DeviceCredentials{"dev-1", "", "", ""});
  follower->Start();
  loop_.RunUntilIdle();
  ASSERT_EQ(source_.refreshes.size(), 2u);
  EXPECT_EQ(source_.refreshes[1].url, "http://10.0.0.2:4000/metadata");
  EXPECT_EQ(released_, std::vector<uint64_t>{7});
  EXPECT_EQ(follower->status().refreshes_ok, 1u);

  // A tracker that answers wrongly (not unreachable) is not bypassed.
  source_.answers["http://tracker/metadata"] = Corruption("bad signature");
  follower->RefreshNow();
  loop_.RunUntilIdle();
  EXPECT_EQ(source_.refreshes.size(), 3u);
  EXPECT_EQ(follower->status().refreshes_failed, 1u);
  EXPECT_NE(follower->status().last_refresh_error.find("bad signature"), std::string::npos);
}

}  // namespace
}  // namespace flotilla::node
