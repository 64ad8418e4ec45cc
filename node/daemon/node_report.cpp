// Reports to the tracker (POST /api/v1/devices/ID/report, docs/tracker.md).
#include <spdlog/spdlog.h>

#include "core/canonical_json.h"
#include "node/daemon/http_call.h"
#include "node/daemon/node_daemon.h"

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
      return a.failed_release > a.running_release ? "rolled_back" : "running";
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

}  // namespace

void NodeDaemon::AddError(const std::string& error) {
  if (pending_errors_.size() == kMaxPendingErrors) pending_errors_.pop_front();
  pending_errors_.push_back(error.substr(0, kMaxErrorBytes));
  report_due_ = true;
}

Status NodeDaemon::SendReport(const std::string& app) {
  const AppState& a = state_.apps[app];
  uint64_t release = a.target_release != 0           ? a.target_release
                     : a.phase == AppPhase::kRunning ? a.running_release
                                                     : a.ready_release;
  uint64_t done = 0, total = 0;
  if (auto t = transfers_.find(app); t != transfers_.end()) {
    done = std::min(t->second.done, t->second.total);
    total = t->second.total;
  }
  Json errors = Json::array();
  if (app == config_.apps.front()) {
    for (const auto& e : pending_errors_) errors.push_back(e);
  }
  Json report = {{"app", app},
                 {"release", release == 0 ? "" : std::to_string(release)},
                 {"state", ReportState(a)},
                 {"progress", {{"done", done}, {"total", total}}},
                 {"bytes_from_peers", a.bytes_from_peers},
                 {"bytes_from_origin", a.bytes_from_origin},
                 {"health", a.phase == AppPhase::kRunning ? "healthy" : "unknown"},
                 {"errors", errors}};
  HttpCall call;
  call.method = "POST";
  call.url = config_.tracker_url + "/api/v1/devices/" + credentials_->device_id + "/report";
  call.headers = {{"Authorization", "Bearer " + credentials_->credential}};
  call.body = report.dump();
  call.ca_file = config_.tls_ca_file;
  call.connect_timeout = std::chrono::seconds(5);
  call.read_timeout = std::chrono::seconds(15);
  call.max_body_bytes = 16 << 10;
  ASSIGN_OR_RETURN(HttpReply reply, PerformHttpCall(call, [](ByteSpan) { return Status::Ok(); }));
  return StatusOfReply(call, reply).WithContext("report");
}

void NodeDaemon::SendReports() {
  report_due_ = false;
  const auto interval = std::chrono::seconds(config_.report_interval_s);
  if (!credentials_) {
    next_report_ = clock_.MonotonicNow() + std::min<Duration>(interval, std::chrono::seconds(10));
    return;
  }
  for (const auto& app : config_.apps) {
    Status st = SendReport(app);
    if (!st.ok()) {
      spdlog::debug("{}", st.ToString());
      // Kept for later: the errors stay pending until a report carries them.
      next_report_ = clock_.MonotonicNow() + std::min<Duration>(interval, std::chrono::seconds(5));
      return;
    }
  }
  pending_errors_.clear();
  next_report_ = clock_.MonotonicNow() + interval;
}

}  // namespace flotilla::node
