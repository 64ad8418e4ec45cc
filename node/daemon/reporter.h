// The reporter: tells the tracker what the node does (docs/node.md, "Reports").
//
// A round sends one report per followed app, every report_interval_s and
// soon after any state change (MarkDue); errors queued with AddError (at
// most 16, each at most 1024 bytes) ride on the round's first report and are
// dropped only once a round was accepted whole, so a node whose tracker was
// down says why once it is back. The bad peers a round's reports carry
// (AppReport::bad_peers, taken from the transfers once) are kept per app and
// sent again with every report of that app until one is accepted (2xx), at
// most kMaxPendingBadPeers per app: a peer banned while the tracker is
// unreachable still counts for its reputation. Bad peers a report was
// refused for (InvalidArgument naming "bad_peers") are dropped. A round that
// fails is tried again after min(report_interval_s, 5 s); before the device
// has credentials (no sink) after min(report_interval_s, 10 s).
//
// A round made due (MarkDue) whose reports would tell the tracker exactly
// what the last round it accepted whole told it (the same fields, no error,
// bad peer or platform to carry) is not sent: e.g. a configuration switch
// that succeeded changes nothing a report says. Rounds on the interval are
// always sent.
//
// The device's platform (SetPlatform) rides on the first report of each
// round until one such report is accepted, once per run of the node; a
// device that follows no app sends an `idle` report (no app) to carry it.
// The tracker tags the device with it (docs/tracker.md, the report's
// `platform`); a tracker that refuses the member gets the report without it.
//
// Sequence numbers (SetSequenceStore): every new report gets the next
// number of the device; a report that was not answered 2xx keeps its number
// for the app's next report, so that a report the tracker stored but whose
// answer was lost is not stored twice; a round sends those first (the
// tracker stores a number only when above the device's last). Numbers are reserved in blocks of
// kSeqBlock in the node's state file before use, so they keep growing across
// restarts at one state write per block. Without a store (or when reserving
// fails) reports go without a number, as 0.1.0's did.
//
// Thread-safety: none; the loop's only. A round holds the loop for its HTTP
// exchanges (bounded by the client's timeouts).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/http_client.h"
#include "node/daemon/enrolment.h"
#include "node/daemon/node_state.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

// One app's report (POST /api/v1/devices/<id>/report, docs/tracker.md).
struct AppReport {
  std::string app;
  uint64_t release = 0;  // 0: none
  std::string state;     // downloading|verifying|deploying|running|rolled_back|failed|idle
  uint64_t done = 0, total = 0;
  uint64_t bytes_from_peers = 0, bytes_from_origin = 0;
  std::string health;  // healthy|unknown
  // Banned since the previous round; the Reporter adds those that no
  // accepted report of the app carried yet.
  std::vector<BadPeer> bad_peers;
  // The report's sequence number (set by the Reporter; 0: none).
  uint64_t seq = 0;
  // With state failed or rolled_back: the failure's kind (AppState::failure), else "".
  std::string failure;
  // The device's OCI platform, on a round's first report until one is accepted (else "").
  std::string platform;
};

// What an app's state and transfer (done/total) are reported as.
AppReport ReportOf(const std::string& app, const AppState& state, uint64_t done, uint64_t total);

// Where reports go: the tracker (reporter.cpp's TrackerReportSink), a recorder in tests.
class ReportSink {
 public:
  virtual ~ReportSink() = default;
  virtual Status Send(const AppReport& report, const std::vector<std::string>& errors) = 0;
};

class Reporter {
 public:
  // `reports` gives the round's reports, one per followed app, in order.
  Reporter(uint32_t report_interval_s, const Clock& clock, Executor& loop,
           std::function<std::vector<AppReport>()> reports);

  // The first round now.
  void Start() {
    timer_.Schedule(Duration::zero(), [this] { SendRound(); });
  }
  void Stop() { timer_.Cancel(); }
  // Where rounds go from now on (null: nowhere yet, the device is not enrolled).
  void SetSink(std::unique_ptr<ReportSink> sink) { sink_ = std::move(sink); }
  // A state change: a round soon (at once, unless one is due sooner).
  void MarkDue();
  // `acknowledged` (optional) runs once, on the loop, when the tracker
  // answered 2xx to the report that carried the error; never when the error
  // is dropped (16 newer ones) or the process ends first.
  void AddError(const std::string& error, std::function<void()> acknowledged = {});
  // The platform ("linux/arm64") to tell the tracker once.
  void SetPlatform(std::string platform) { platform_ = std::move(platform); }
  // Numbers up to `reserved` may have been used before; `reserve(n)` stores
  // n durably before numbers up to n are used.
  void SetSequenceStore(uint64_t reserved, std::function<Status(uint64_t)> reserve);
  size_t pending_errors() const { return errors_.size(); }
  // The bad peers of `app` no accepted report has carried yet.
  size_t pending_bad_peers(const std::string& app) const;

  static constexpr size_t kMaxPendingBadPeers = 64;
  static constexpr uint64_t kSeqBlock = 64;

 private:
  void SendRound();
  void TellAcknowledged();
  // Whether `reports` say what the last round accepted whole said.
  bool SaysNothingNew(const std::vector<AppReport>& reports) const;
  // Adds `report`'s new bad peers to its app's pending ones, and gives the
  // report all of them.
  void CarryPendingBadPeers(AppReport& report);
  // The app's unanswered number, else the next one (0 when none can be reserved).
  uint64_t SequenceFor(const std::string& app);

  const Duration interval_;
  const Clock& clock_;
  std::function<std::vector<AppReport>()> reports_;
  TimerSlot timer_;
  MonoTime next_round_{};
  std::unique_ptr<ReportSink> sink_;
  struct PendingError {
    std::string text;
    std::function<void()> acknowledged;  // emptied once run
  };
  std::deque<PendingError> errors_;
  std::map<std::string, std::vector<BadPeer>> bad_peers_;  // per app, not yet accepted
  std::function<Status(uint64_t)> reserve_seq_;
  uint64_t reserved_seq_ = 0;
  uint64_t next_seq_ = 1;
  std::map<std::string, uint64_t> unanswered_seq_;  // per app
  std::string platform_;                            // not yet accepted; "" once it was
  bool marked_due_ = false;                         // the next round is a MarkDue one
  std::vector<AppReport> last_accepted_;            // the last round accepted whole
};

// Reports to the tracker with the device's credentials. `log_requests`
// (optional) is called with the newest log request open for the device
// when an accepted report's answer names one (docs/logs.md).
std::unique_ptr<ReportSink> MakeTrackerReportSink(std::string tracker_url,
                                                  http::ClientOptions options,
                                                  DeviceCredentials credentials,
                                                  std::function<void(uint64_t)> log_requests = {});

}  // namespace flotilla::node
