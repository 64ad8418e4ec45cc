// The reporter on the fake clock: its cadence (every interval, soon after a
// change), retries of a failed round, and errors and bad peers that stay
// queued until a report carrying them was accepted.
#include "node/daemon/reporter.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <thread>
#include <utility>

#include "core/file_io.h"
#include "http/http_server.h"

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
  RecordingSink(const Clock& clock, MonoTime start, std::vector<Sent>& sent, bool& fail,
                const std::string& fail_app, const std::string& refusal)
      : clock_(clock),
        start_(start),
        sent_(sent),
        fail_(fail),
        fail_app_(fail_app),
        refusal_(refusal) {}
  Status Send(const AppReport& report, const std::vector<std::string>& errors) override {
    if (fail_ || report.app == fail_app_) return Unavailable("tracker down");
    if (!refusal_.empty()) return InvalidArgument(refusal_);
    sent_.push_back(
        {std::chrono::duration<double>(clock_.MonotonicNow() - start_).count(), report, errors});
    return Status::Ok();
  }

 private:
  const Clock& clock_;
  MonoTime start_;
  std::vector<Sent>& sent_;
  bool& fail_;
  const std::string& fail_app_;
  const std::string& refusal_;
};

class ReporterTest : public ::testing::Test {
 protected:
  ReporterTest()
      : reporter_(60, clock_, loop_, [this] {
          std::vector<AppReport> reports{ReportOf("signage", signage_, 0, 0),
                                         ReportOf("clock", AppState{}, 0, 0)};
          // Taken once, as ReleasePipeline::TakeBadPeers gives them.
          reports[0].bad_peers = std::exchange(new_signage_bad_peers_, {});
          reports[1].bad_peers = std::exchange(new_clock_bad_peers_, {});
          return reports;
        }) {}
  void Enrol() {
    reporter_.SetSink(
        std::make_unique<RecordingSink>(clock_, start_, sent_, fail_, fail_app_, refusal_));
  }
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
  std::vector<BadPeer> new_signage_bad_peers_, new_clock_bad_peers_;
  std::vector<Sent> sent_;
  bool fail_ = false;
  std::string fail_app_;  // fail only this app's reports
  std::string refusal_;   // refuse every report (a 4xx) with this message
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

  signage_.running_release = 4;
  reporter_.MarkDue();  // at 150 s
  reporter_.MarkDue();  // coalesced
  loop_.AdvanceBy(seconds(100));
  EXPECT_EQ(Rounds(), (std::vector<double>{0, 60, 120, 150, 210}));
}

// A change that changes nothing a report says (a configuration switch that
// succeeded): no round until the interval's.
TEST_F(ReporterTest, AChangeThatChangesNoReportSendsNothingBeforeTheInterval) {
  Enrol();
  signage_.phase = AppPhase::kRunning;
  signage_.running_release = 3;
  reporter_.Start();
  loop_.AdvanceBy(seconds(30));
  reporter_.MarkDue();
  loop_.AdvanceBy(seconds(20));
  EXPECT_EQ(Rounds(), (std::vector<double>{0}));
  loop_.AdvanceBy(seconds(60));
  EXPECT_EQ(Rounds(), (std::vector<double>{0, 90})) << "the interval counts from the skip";
  signage_.phase = AppPhase::kDeploying;
  reporter_.MarkDue();  // at 110 s
  loop_.AdvanceBy(seconds(1));
  EXPECT_EQ(Rounds(), (std::vector<double>{0, 90, 110}));
  reporter_.AddError("something to say");
  loop_.AdvanceBy(seconds(1));
  EXPECT_EQ(Rounds(), (std::vector<double>{0, 90, 110, 111})) << "an error is news";
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

// An error's acknowledgement (the agent's rollback marked reported) runs
// once the tracker accepted the report carrying it: not while it is down,
// not when only a later report of the round fails, and only once.
TEST_F(ReporterTest, AnErrorIsAcknowledgedOnceTheTrackerAcceptedItsReport) {
  Enrol();
  int acknowledged = 0;
  fail_ = true;
  reporter_.Start();
  reporter_.AddError("agent release 6 rolled back", [&] { ++acknowledged; });
  loop_.AdvanceBy(seconds(7));  // rounds at 0 and 5 fail
  EXPECT_EQ(acknowledged, 0);
  fail_ = false;
  fail_app_ = "clock";  // the round's first report (signage) is accepted, the second not
  loop_.AdvanceBy(seconds(5));
  ASSERT_EQ(Rounds(), std::vector<double>{10});
  EXPECT_EQ(sent_[0].errors, std::vector<std::string>{"agent release 6 rolled back"});
  EXPECT_EQ(acknowledged, 1);
  EXPECT_EQ(reporter_.pending_errors(), 1u) << "sent again with the next round";
  fail_app_.clear();
  loop_.AdvanceBy(seconds(5));
  ASSERT_EQ(Rounds(), (std::vector<double>{10, 15}));
  EXPECT_EQ(sent_.back().report.app, "clock");
  EXPECT_EQ(acknowledged, 1) << "once";
  EXPECT_EQ(reporter_.pending_errors(), 0u);
}

TEST_F(ReporterTest, ThePlatformRidesOnTheFirstReportUntilOneIsAccepted) {
  Enrol();
  reporter_.SetPlatform("linux/arm/v7");
  fail_ = true;
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  EXPECT_TRUE(sent_.empty());
  fail_ = false;
  loop_.AdvanceBy(seconds(5));  // the retry
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].report.platform, "linux/arm/v7");
  EXPECT_EQ(sent_[1].report.platform, "") << "one report of the round carries it";
  loop_.AdvanceBy(seconds(60));
  ASSERT_EQ(sent_.size(), 4u);
  EXPECT_EQ(sent_[2].report.platform, "") << "told once per run";
}

TEST_F(ReporterTest, ADeviceFollowingNoAppSendsOneIdleReportForItsPlatform) {
  fail_app_ = "none";  // the sink fails reports of this app ("" by default)
  Reporter idle(60, clock_, loop_, [] { return std::vector<AppReport>{}; });
  idle.SetSink(std::make_unique<RecordingSink>(clock_, start_, sent_, fail_, fail_app_, refusal_));
  idle.SetPlatform("linux/amd64");
  idle.Start();
  loop_.AdvanceBy(seconds(130));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].report.app, "");
  EXPECT_EQ(sent_[0].report.release, 0u);
  EXPECT_EQ(sent_[0].report.state, "idle");
  EXPECT_EQ(sent_[0].report.health, "unknown");
  EXPECT_EQ(sent_[0].report.platform, "linux/amd64");
  idle.Stop();
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

BadPeer Bad(const std::string& ip) {
  return BadPeer{.swarm = std::string(40, 'a'), .ip = ip, .port = 6881, .hash_failures = 1};
}

std::vector<std::string> Ips(const AppReport& report) {
  std::vector<std::string> ips;
  for (const auto& bad : report.bad_peers) ips.push_back(bad.ip);
  return ips;
}

TEST_F(ReporterTest, BadPeersOfAFailedReportRideOnTheNextUntilOneIsAccepted) {
  Enrol();
  fail_ = true;
  new_signage_bad_peers_ = {Bad("203.0.113.7")};
  reporter_.Start();
  loop_.AdvanceBy(seconds(7));  // rounds at 0 and 5 fail
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(reporter_.pending_bad_peers("signage"), 1u);
  new_signage_bad_peers_ = {Bad("203.0.113.8")};
  fail_ = false;
  loop_.AdvanceBy(seconds(5));
  ASSERT_EQ(Rounds(), std::vector<double>{10});
  EXPECT_EQ(Ips(sent_[0].report), (std::vector<std::string>{"203.0.113.7", "203.0.113.8"}));
  EXPECT_EQ(reporter_.pending_bad_peers("signage"), 0u);
  loop_.AdvanceBy(seconds(60));
  ASSERT_EQ(Rounds(), (std::vector<double>{10, 70}));
  EXPECT_TRUE(sent_[2].report.bad_peers.empty());  // accepted once: not sent again
}

TEST_F(ReporterTest, AnAcceptedReportClearsOnlyItsOwnAppsBadPeers) {
  Enrol();
  fail_app_ = "clock";  // the round's second report fails
  new_signage_bad_peers_ = {Bad("203.0.113.7")};
  new_clock_bad_peers_ = {Bad("198.51.100.3")};
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(Ips(sent_[0].report), std::vector<std::string>{"203.0.113.7"});
  EXPECT_EQ(reporter_.pending_bad_peers("signage"), 0u);
  EXPECT_EQ(reporter_.pending_bad_peers("clock"), 1u);
  fail_app_.clear();
  loop_.AdvanceBy(seconds(5));  // the failed round is retried after 5 s
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_TRUE(sent_[1].report.bad_peers.empty());
  EXPECT_EQ(sent_[2].report.app, "clock");
  EXPECT_EQ(Ips(sent_[2].report), std::vector<std::string>{"198.51.100.3"});
  EXPECT_EQ(reporter_.pending_bad_peers("clock"), 0u);
}

TEST_F(ReporterTest, BadPeersOfAReportItsRoundNeverSentWaitForTheNextRound) {
  Enrol();
  fail_app_ = "signage";  // the round's first report fails: the second is not sent
  new_clock_bad_peers_ = {Bad("198.51.100.3")};
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(reporter_.pending_bad_peers("clock"), 1u) << "taken from the transfers, not sent";
  fail_app_.clear();
  loop_.AdvanceBy(seconds(5));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].report.app, "clock");
  EXPECT_EQ(Ips(sent_[1].report), std::vector<std::string>{"198.51.100.3"});
  EXPECT_EQ(reporter_.pending_bad_peers("clock"), 0u);
}

TEST_F(ReporterTest, AReportRefusedForItsBadPeersIsRetriedWithoutThem) {
  Enrol();
  refusal_ = "report: HTTP 429 rate limited";  // not for its bad peers: they wait
  new_signage_bad_peers_ = {Bad("203.0.113.7")};
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  EXPECT_EQ(reporter_.pending_bad_peers("signage"), 1u);
  refusal_ = "report: HTTP 400 report.bad_peers[0].ip: must be an IPv4 or IPv6 address";
  loop_.AdvanceBy(seconds(5));
  EXPECT_EQ(reporter_.pending_bad_peers("signage"), 0u);
  refusal_.clear();
  loop_.AdvanceBy(seconds(5));
  ASSERT_EQ(Rounds(), std::vector<double>{10});
  EXPECT_TRUE(sent_[0].report.bad_peers.empty());
}

TEST_F(ReporterTest, AtMost64BadPeersWaitPerApp) {
  Enrol();
  fail_ = true;
  for (int i = 0; i < 70; ++i) new_signage_bad_peers_.push_back(Bad("10.0.0." + std::to_string(i)));
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  EXPECT_EQ(reporter_.pending_bad_peers("signage"), Reporter::kMaxPendingBadPeers);
}

TEST_F(ReporterTest, ReportsCarryGrowingSequenceNumbersReservedInBlocks) {
  std::vector<uint64_t> reservations;
  reporter_.SetSequenceStore(0, [&](uint64_t n) {
    reservations.push_back(n);
    return Status::Ok();
  });
  Enrol();
  reporter_.Start();
  loop_.AdvanceBy(seconds(60 * 40 - 1));  // 40 rounds of two reports
  ASSERT_EQ(sent_.size(), 80u);
  for (size_t i = 0; i < sent_.size(); ++i) EXPECT_EQ(sent_[i].report.seq, i + 1);
  EXPECT_EQ(reservations, (std::vector<uint64_t>{64, 128})) << "one state write per block";
}

TEST_F(ReporterTest, AnUnansweredReportKeepsItsNumberAndGoesFirst) {
  reporter_.SetSequenceStore(0, [](uint64_t) { return Status::Ok(); });
  Enrol();
  fail_app_ = "clock";  // signage (1) is answered, clock (2) is not
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].report.seq, 1u);
  fail_app_.clear();
  loop_.AdvanceBy(seconds(5));  // the retry round
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[1].report.app, "clock") << "sent again before anything newer";
  EXPECT_EQ(sent_[1].report.seq, 2u);
  EXPECT_EQ(sent_[2].report.app, "signage");
  EXPECT_EQ(sent_[2].report.seq, 3u);
}

TEST_F(ReporterTest, NumbersGoOnAboveTheReservationAfterARestartAndStopWhenItFails) {
  std::vector<uint64_t> reservations;
  reporter_.SetSequenceStore(128, [&](uint64_t n) {
    reservations.push_back(n);
    return Status::Ok();
  });
  Enrol();
  reporter_.Start();
  loop_.AdvanceBy(seconds(1));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].report.seq, 129u) << "numbers a previous run may have used are skipped";
  EXPECT_EQ(reservations, std::vector<uint64_t>{192});

  Reporter unreserved(60, clock_, loop_, [] { return std::vector<AppReport>{AppReport{"a"}}; });
  unreserved.SetSequenceStore(0, [&](uint64_t) { return IOErrorFromErrno("save state", EIO); });
  unreserved.SetSink(
      std::make_unique<RecordingSink>(clock_, start_, sent_, fail_, fail_app_, refusal_));
  unreserved.Start();
  loop_.AdvanceBy(seconds(1));
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[2].report.seq, 0u) << "without a durable reservation, no number";
  unreserved.Stop();
}

// A report names its failure's kind only with the states it explains, and
// the tracker sink sends it as the report's `failure` member.
TEST(ReportFailureKind, GoesWithAFailedOrRolledBackReportToTheTracker) {
  AppState a;
  a.target_release = 4;
  a.phase = AppPhase::kFailed;
  a.failure = "transfer";
  EXPECT_EQ(ReportOf("signage", a, 0, 0).failure, "transfer");
  a.phase = AppPhase::kDownloading;  // a stale kind says nothing of a fetch
  EXPECT_EQ(ReportOf("signage", a, 0, 0).failure, "");
  a = AppState{};
  a.phase = AppPhase::kRunning;
  a.running_release = 3;
  a.failed_release = 4;
  a.failure = "health";
  AppReport rolled_back = ReportOf("signage", a, 0, 0);
  EXPECT_EQ(rolled_back.state, "rolled_back");
  EXPECT_EQ(rolled_back.failure, "health");

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::string> bodies;
  auto server =
      http::Server::Start(io, {}, [&](const http::Request& request, const http::RequestContext&) {
        bodies.push_back(request.body());
        return http::Reply::Typed(http::status::no_content, "application/json", "");
      });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::thread loop([&] { io.run(); });
  auto sink = MakeTrackerReportSink("http://127.0.0.1:" + std::to_string((*server)->port()), {},
                                    DeviceCredentials{.device_id = "d1", .credential = "c1"});
  Status sent = sink->Send(rolled_back, {});
  work.reset();
  io.stop();
  loop.join();
  EXPECT_TRUE(sent.ok()) << sent.ToString();
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find(R"("failure":"health")"), std::string::npos) << bodies[0];
  EXPECT_NE(bodies[0].find(R"("state":"rolled_back")"), std::string::npos) << bodies[0];
}

TEST(NodeStateReportSeq, A010StateFileLoadsWithoutOneAndTheNumberIsKept) {
  const std::string dir = ::testing::TempDir() + "/node-state-seq";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/state.json";
  // state.json as 0.1.0 wrote it: format 1, the apps, no report_seq.
  ASSERT_TRUE(WriteFileAtomic(path, R"({"format":1,"apps":{"signage":{"target_release":0,)"
                                    R"("ready_release":3,"failed_release":0,"phase":"ready",)"
                                    R"("bytes_from_peers":5,"bytes_from_origin":6,)"
                                    R"("last_error":""}}})")
                  .ok());
  auto state = StateFile::Open(path, {"signage"});
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ((*state)->state().report_seq, 0u);
  EXPECT_EQ((*state)->app("signage").ready_release, 3u);
  ASSERT_TRUE((*state)->SaveReportSeq(64).ok());
  auto reloaded = LoadNodeState(path);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ(reloaded->report_seq, 64u);
  EXPECT_EQ(reloaded->apps["signage"].ready_release, 3u);
  std::filesystem::remove_all(dir);
}

// Configuration ids (docs/config.md) round-trip; a file an older node wrote
// (none of them) loads as running no configuration; a rolled-back
// configuration reports the app rolled_back with the kind health.
TEST(NodeStateConfig, ConfigIdsRoundTripAndOldFilesLoad) {
  const std::string dir = ::testing::TempDir() + "/node-state-config";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, R"({"format":1,"apps":{"signage":{"target_release":0,)"
                                    R"("ready_release":3,"failed_release":0,"phase":"running",)"
                                    R"("bytes_from_peers":5,"bytes_from_origin":6,)"
                                    R"("last_error":"","running_release":3}}})")
                  .ok());
  auto state = StateFile::Open(path, {"signage"});
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  AppState& a = (*state)->app("signage");
  EXPECT_EQ(a.config_id, "");
  EXPECT_EQ(ReportOf("signage", a, 0, 0).state, "running");
  a.config_id = "0123456789ab";
  a.previous_config_id = "ba9876543210";
  a.failed_config_id = "ffffffffffff";
  a.failure = "health";
  (*state)->Save();
  auto reloaded = LoadNodeState(path);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  const AppState& b = reloaded->apps["signage"];
  EXPECT_EQ(b.config_id, "0123456789ab");
  EXPECT_EQ(b.previous_config_id, "ba9876543210");
  EXPECT_EQ(b.failed_config_id, "ffffffffffff");
  AppReport report = ReportOf("signage", b, 0, 0);
  EXPECT_EQ(report.state, "rolled_back");
  EXPECT_EQ(report.release, 3u);
  EXPECT_EQ(report.failure, "health");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::node
