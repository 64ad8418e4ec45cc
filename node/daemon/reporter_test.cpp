// The reporter on the fake clock: its cadence (every interval, soon after a
// change), retries of a failed round, and errors that stay queued until a
// round carrying them was accepted.
#include "node/daemon/reporter.h"

#include <gtest/gtest.h>

namespace flotilla::node {
namespace {

using std::chrono::seconds;

struct Sent {
  double at_s;  // since the test began
  AppReport report;
  std::vector<std::string> errors;
};

class RecordingSink final : public ReportSink {
 public:
  RecordingSink(const Clock& clock, MonoTime start, std::vector<Sent>& sent, bool& fail)
      : clock_(clock), start_(start), sent_(sent), fail_(fail) {}
  Status Send(const AppReport& report, const std::vector<std::string>& errors) override {
    if (fail_) return Unavailable("tracker down");
    sent_.push_back(
        {std::chrono::duration<double>(clock_.MonotonicNow() - start_).count(), report, errors});
    return Status::Ok();
  }

 private:
  const Clock& clock_;
  MonoTime start_;
  std::vector<Sent>& sent_;
  bool& fail_;
};

class ReporterTest : public ::testing::Test {
 protected:
  ReporterTest()
      : reporter_(60, clock_, loop_, [this] {
          return std::vector<AppReport>{ReportOf("signage", signage_, 0, 0),
                                        ReportOf("clock", AppState{}, 0, 0)};
        }) {}
  void Enrol() { reporter_.SetSink(std::make_unique<RecordingSink>(clock_, start_, sent_, fail_)); }
  std::vector<double> Rounds() const {  // times of the first app's reports
    std::vector<double> at;
    for (const auto& s : sent_) {
      if (s.report.app == "signage") at.push_back(s.at_s);
    }
    return at;
  }

  FakeClock clock_;
  ManualExecutor loop_{clock_};
  const MonoTime start_ = clock_.MonotonicNow();
  AppState signage_;
  std::vector<Sent> sent_;
  bool fail_ = false;
  Reporter reporter_;
};

TEST_F(ReporterTest, ReportsEveryIntervalAndAtOnceAfterAChange) {
  Enrol();
  signage_.phase = AppPhase::kRunning;
  signage_.running_release = 3;
  reporter_.Start();
  loop_.AdvanceBy(seconds(150));
  EXPECT_EQ(Rounds(), (std::vector<double>{0, 60, 120}));
  ASSERT_EQ(sent_.size(), 6u);  // one report per app per round
  EXPECT_EQ(sent_[0].report.state, "running");
  EXPECT_EQ(sent_[0].report.release, 3u);
  EXPECT_EQ(sent_[0].report.health, "healthy");
  EXPECT_EQ(sent_[1].report.app, "clock");
  EXPECT_EQ(sent_[1].report.state, "idle");

  reporter_.MarkDue();  // at 150 s
  reporter_.MarkDue();  // coalesced
  loop_.AdvanceBy(seconds(100));
  EXPECT_EQ(Rounds(), (std::vector<double>{0, 60, 120, 150, 210}));
}

TEST_F(ReporterTest, AFailedRoundIsRetriedSoonAndItsErrorsWaitUntilOneIsAccepted) {
  Enrol();
  fail_ = true;
  reporter_.Start();
  reporter_.AddError("cannot update: tracker down");
  loop_.AdvanceBy(seconds(12));  // rounds at 0, 5, 10 fail
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(reporter_.pending_errors(), 1u);
  fail_ = false;
  loop_.AdvanceBy(seconds(5));
  ASSERT_EQ(Rounds(), std::vector<double>{15});
  EXPECT_EQ(sent_[0].errors, std::vector<std::string>{"cannot update: tracker down"});
  EXPECT_TRUE(sent_[1].errors.empty());  // the round's first report carries them
  EXPECT_EQ(reporter_.pending_errors(), 0u);
  loop_.AdvanceBy(seconds(60));
  ASSERT_EQ(Rounds(), (std::vector<double>{15, 75}));
  EXPECT_TRUE(sent_[2].errors.empty());
}

TEST_F(ReporterTest, BeforeEnrolmentRoundsWaitTenSecondsThenGoOutOnceEnrolled) {
  reporter_.Start();
  loop_.AdvanceBy(seconds(25));
  EXPECT_TRUE(sent_.empty());
  Enrol();
  loop_.AdvanceBy(seconds(10));
  EXPECT_EQ(Rounds(), std::vector<double>{30});
}

TEST_F(ReporterTest, AtMost16ErrorsOfAtMost1024BytesWait) {
  Enrol();
  fail_ = true;
  reporter_.Start();
  for (int i = 0; i < 20; ++i) reporter_.AddError("error " + std::to_string(i));
  reporter_.AddError(std::string(5000, 'x'));
  EXPECT_EQ(reporter_.pending_errors(), 16u);
  fail_ = false;
  loop_.AdvanceBy(seconds(5));
  ASSERT_FALSE(sent_.empty());
  const auto& errors = sent_[0].errors;
  ASSERT_EQ(errors.size(), 16u);
  EXPECT_EQ(errors.front(), "error 5");  // the oldest went first
  EXPECT_EQ(errors.back().size(), 1024u);
}

}  // namespace
}  // namespace flotilla::node
