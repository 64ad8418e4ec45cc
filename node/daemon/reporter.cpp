#include "node/daemon/reporter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "core/canonical_json.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::node {
namespace {

constexpr size_t kMaxPendingErrors = 16;
constexpr size_t kMaxErrorBytes = 1024;

// The tracker's report states. Without deployment (deploy: false) a
// fetched, verified release is "idle": nothing left to do.
std::string ReportState(const AppState& a) {
  switch (a.phase) {
    case AppPhase::kDeploying:
      return "deploying";
    case AppPhase::kRunning:
      // A release, or a configuration of the running one, was rolled back.
      return a.failed_release > a.running_release || !a.failed_config_id.empty() ? "rolled_back"
                                                                                 : "running";
    case AppPhase::kDownloading:
      return "downloading";
    case AppPhase::kVerifying:
      return "verifying";
    case AppPhase::kFailed:
      return "failed";
    case AppPhase::kIdle:
    case AppPhase::kReady:
      return "idle";
  }
  return "idle";
}

class TrackerReportSink final : public ReportSink {
 public:
  TrackerReportSink(std::string tracker_url, http::ClientOptions options,
                    DeviceCredentials credentials, std::function<void(uint64_t)> log_requests)
      : tracker_(std::move(tracker_url), std::move(options)),
        credentials_(std::move(credentials)),
        log_requests_(std::move(log_requests)) {}

  Status Send(const AppReport& r, const std::vector<std::string>& errors) override {
    tracker::DeviceReport report{.app = r.app,
                                 .release = r.release == 0 ? "" : std::to_string(r.release),
                                 .state = r.state,
                                 .progress_done = r.done,
                                 .progress_total = r.total,
                                 .bytes_from_peers = r.bytes_from_peers,
                                 .bytes_from_origin = r.bytes_from_origin,
                                 .health = r.health,
                                 .errors = errors,
                                 .seq = r.seq,
                                 .failure = r.failure,
                                 .platform = r.platform};
    for (const auto& bad : r.bad_peers) {
      if (report.bad_peers.size() == tracker::kMaxReportBadPeers) break;
      report.bad_peers.push_back(tracker::BadPeer{
          .swarm = bad.swarm, .ip = bad.ip, .port = bad.port, .hash_failures = bad.hash_failures});
    }
    uint64_t newest_log_request = 0;
    Status st = tracker_.Report(credentials_, report, &newest_log_request);
    if (st.ok() && newest_log_request != 0 && log_requests_) log_requests_(newest_log_request);
    return st.WithContext("report");
  }

 private:
  tracker::TrackerClient tracker_;
  DeviceCredentials credentials_;
  std::function<void(uint64_t)> log_requests_;
};

}  // namespace

AppReport ReportOf(const std::string& app, const AppState& a, uint64_t done, uint64_t total) {
  AppReport r;
  r.app = app;
  r.release = a.target_release != 0           ? a.target_release
              : a.phase == AppPhase::kRunning ? a.running_release
                                              : a.ready_release;
  r.state = ReportState(a);
  r.done = done;
  r.total = total;
  r.bytes_from_peers = a.bytes_from_peers;
  r.bytes_from_origin = a.bytes_from_origin;
  r.health = a.phase == AppPhase::kRunning ? "healthy" : "unknown";
  // The tracker takes a kind only with the states it explains.
  if (r.state == "failed" || r.state == "rolled_back") r.failure = a.failure;
  return r;
}

Reporter::Reporter(uint32_t report_interval_s, const Clock& clock, Executor& loop,
                   std::function<std::vector<AppReport>()> reports)
    : interval_(std::chrono::seconds(report_interval_s)),
      clock_(clock),
      reports_(std::move(reports)),
      timer_(loop) {}

void Reporter::MarkDue() {
  marked_due_ = true;
  if (timer_.pending() && next_round_ <= clock_.MonotonicNow()) return;
  next_round_ = clock_.MonotonicNow();
  timer_.Schedule(Duration::zero(), [this] { SendRound(); });
}

void Reporter::AddError(const std::string& error, std::function<void()> acknowledged) {
  if (errors_.size() == kMaxPendingErrors) errors_.pop_front();
  errors_.push_back({error.substr(0, kMaxErrorBytes), std::move(acknowledged)});
  MarkDue();
}

size_t Reporter::pending_bad_peers(const std::string& app) const {
  auto it = bad_peers_.find(app);
  return it == bad_peers_.end() ? 0 : it->second.size();
}

void Reporter::CarryPendingBadPeers(AppReport& report) {
  std::vector<BadPeer>& pending = bad_peers_[report.app];
  for (BadPeer& bad : report.bad_peers) {
    const bool known = std::any_of(pending.begin(), pending.end(), [&](const BadPeer& p) {
      return p.swarm == bad.swarm && p.ip == bad.ip && p.port == bad.port;
    });
    if (!known && pending.size() < kMaxPendingBadPeers) pending.push_back(std::move(bad));
  }
  report.bad_peers = pending;
}

void Reporter::SetSequenceStore(uint64_t reserved, std::function<Status(uint64_t)> reserve) {
  reserve_seq_ = std::move(reserve);
  reserved_seq_ = reserved;
  next_seq_ = reserved + 1;
}

uint64_t Reporter::SequenceFor(const std::string& app) {
  if (auto it = unanswered_seq_.find(app); it != unanswered_seq_.end()) return it->second;
  if (!reserve_seq_) return 0;
  if (next_seq_ > reserved_seq_) {
    if (Status st = reserve_seq_(reserved_seq_ + kSeqBlock); !st.ok()) {
      spdlog::warn("report sequence numbers not reserved (reports go without): {}", st.ToString());
      return 0;
    }
    reserved_seq_ += kSeqBlock;
  }
  return unanswered_seq_[app] = next_seq_++;
}

bool Reporter::SaysNothingNew(const std::vector<AppReport>& reports) const {
  auto fields = [](const AppReport& r) {
    return std::tie(r.app, r.release, r.state, r.done, r.total, r.bytes_from_peers,
                    r.bytes_from_origin, r.health, r.failure);
  };
  if (reports.empty() || reports.size() != last_accepted_.size() || !platform_.empty() ||
      !errors_.empty()) {
    return false;
  }
  for (size_t i = 0; i < reports.size(); ++i) {
    if (!reports[i].bad_peers.empty() || fields(reports[i]) != fields(last_accepted_[i])) {
      return false;
    }
  }
  return true;
}

// The errors the round's first report carried were accepted: each one's
// callback runs once (the error itself stays pending until the round is
// accepted whole, so a later report's failure sends it again).
void Reporter::TellAcknowledged() {
  std::vector<std::function<void()>> told;
  for (PendingError& e : errors_) {
    if (e.acknowledged) told.push_back(std::exchange(e.acknowledged, {}));
  }
  for (auto& tell : told) tell();
}

void Reporter::SendRound() {
  Duration next = interval_;
  const bool marked_due = std::exchange(marked_due_, false);
  if (!sink_) {
    next = std::min<Duration>(interval_, std::chrono::seconds(10));
  } else {
    std::vector<std::string> errors;
    for (const PendingError& e : errors_) errors.push_back(e.text);
    std::vector<AppReport> reports = reports_();
    // A device that follows no app yet still tells its platform: the
    // tracker tags it, and a group on that tag may be what assigns its app.
    if (reports.empty() && !platform_.empty()) {
      reports.push_back(AppReport{.state = "idle", .health = "unknown"});
    }
    for (AppReport& report : reports) CarryPendingBadPeers(report);
    if (marked_due && SaysNothingNew(reports)) {
      next_round_ = clock_.MonotonicNow() + next;
      timer_.Schedule(next, [this] { SendRound(); });
      return;
    }
    for (AppReport& report : reports) report.seq = SequenceFor(report.app);
    // The tracker stores a number only above the last it stored: reports
    // sent again go before newer ones.
    std::stable_sort(reports.begin(), reports.end(),
                     [](const AppReport& a, const AppReport& b) { return a.seq < b.seq; });
    if (!reports.empty()) reports.front().platform = platform_;
    bool sent = true;
    for (size_t i = 0; i < reports.size(); ++i) {
      // The round's first report carries the errors.
      Status st = sink_->Send(reports[i], i == 0 ? errors : std::vector<std::string>{});
      if (!st.ok()) {
        spdlog::debug("{}", st.ToString());
        // Kept for later: the errors and bad peers stay pending until a
        // report carrying them is accepted.
        next = std::min<Duration>(interval_, std::chrono::seconds(5));
        sent = false;
        // Bad peers the tracker refused (a 400 naming them) are not sent
        // again: the app's state must still get through. A 429 keeps them.
        if (st.code() == StatusCode::kInvalidArgument &&
            st.message().find("bad_peers") != std::string::npos) {
          bad_peers_.erase(reports[i].app);
        }
        break;
      }
      bad_peers_.erase(reports[i].app);
      unanswered_seq_.erase(reports[i].app);
      if (i == 0) {
        platform_.clear();  // told once per run
        TellAcknowledged();
      }
    }
    if (sent) {
      errors_.clear();
      last_accepted_ = reports;
    } else {
      last_accepted_.clear();
    }
  }
  next_round_ = clock_.MonotonicNow() + next;
  timer_.Schedule(next, [this] { SendRound(); });
}

std::unique_ptr<ReportSink> MakeTrackerReportSink(std::string tracker_url,
                                                  http::ClientOptions options,
                                                  DeviceCredentials credentials,
                                                  std::function<void(uint64_t)> log_requests) {
  return std::make_unique<TrackerReportSink>(std::move(tracker_url), std::move(options),
                                             std::move(credentials), std::move(log_requests));
}

}  // namespace flotilla::node
