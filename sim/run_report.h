// The result of a scenario run: JSON report, terminal summary, plots.
//
// Ground truth first: bytes per site and from the origin come from the
// routers' and the cloud's interface counters, per-device bytes from the
// device accounting counters (sim/device_accounting.h); what the nodes
// reported to the tracker is kept beside it, labelled as such. The JSON
// format is in docs/sim.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"
#include "sim/device_accounting.h"

namespace flotilla::sim {

struct DeviceResult {
  std::string name;  // "<site>/d<j>"
  std::string site;
  bool completed = false;
  double completion_s = 0;  // since the release was published; valid when completed
  std::string state;        // the last state the node reported ("" if it never did)
  DeviceTraffic traffic;    // ground truth, over the measured phase
  uint64_t reported_from_peers = 0;
  uint64_t reported_from_origin = 0;
  std::vector<std::string> errors;  // what the node reported, and harness failures
  // With a rollout (else 0, false, 0, ""):
  int wave = 0;                 // the device's wave, 1-based
  bool ran_release = false;     // ever started the measured release (its log, its reports)
  uint64_t final_release = 0;   // the release its runtime runs at the end (node status)
  std::string final_container;  // that container's state at the end ("running", ...)
  std::string final_health;     // the last report's health ("healthy", "unknown", ...)
};

// A staged rollout of the measured release, as the run saw it.
struct RolloutResult {
  int64_t id = 0;
  std::string waves;         // "10%,50%,100%"
  std::string max_failures;  // "25%"
  uint32_t soak_s = 0, wave_timeout_s = 0;
  std::string state;                   // the rollout's last state: running, completed, halted, ...
  std::string reason;                  // why halted
  double ended_s = -1;                 // when the run first saw it halted or completed; -1: never
  std::vector<double> wave_started_s;  // per wave, since publish; -1: not started
  Json status = nullptr;               // the last `rollout status --json`
};

// One wave of a rollout: its devices and when they had the release.
struct WaveSummary {
  int wave = 0;  // 1-based
  size_t size = 0, completed = 0;
  double started_s = -1;  // since publish; -1: not started
  double t95_s = -1;      // since publish, when 95% of the wave had it; -1: never
  uint64_t rx_origin = 0, rx_lan = 0, rx_wan_peers = 0;  // its devices' ground truth
};

struct SiteResult {
  std::string name;
  uint64_t wan_rx_bytes = 0;  // down the site's WAN link: what the SIMs bill
  uint64_t wan_tx_bytes = 0;
};

struct RunReport {
  std::string scenario;
  std::string strategy;
  uint64_t seed = 0;
  uint32_t time_limit_s = 0;
  uint32_t origin_wait_s = 0;  // the nodes' origin_wait_s; 0: the node's default
  std::string release;         // the measured release's label
  uint64_t release_bytes = 0;  // sum of its layers' full artifacts (what one http-full copy costs)
  double duration_s = 0;       // from publish to the end of the run
  std::string ended_by;        // "all devices completed", "time limit", "interrupted", ...
  std::vector<DeviceResult> devices;
  std::vector<SiteResult> sites;
  uint64_t origin_egress_bytes = 0;
  std::vector<std::pair<double, uint64_t>> origin_timeline;  // (s, cumulative egress bytes)
  // a T95LowerBound as JSON (sim/lower_bound.h), null when not computed.
  Json lower_bound = nullptr;
  std::optional<RolloutResult> rollout;  // none: all at once
};

struct ReportSummary {
  size_t devices = 0;
  size_t completed = 0;
  double p50_s = -1, p95_s = -1, max_s = -1;  // over completed devices; -1 when undefined
  double time_to_95pct_s = -1;                // when 95% of ALL devices had completed
  uint64_t wan_rx_bytes = 0;                  // all sites
  double origin_copies = 0;                   // origin egress / release_bytes
  // With a rollout:
  std::vector<WaveSummary> waves;
  std::vector<std::string> ran_release;  // devices that ever started the measured release
  size_t healthy_at_end = 0;             // devices whose container runs and that report healthy
};

ReportSummary Summarize(const RunReport& report);
Json RunReportToJson(const RunReport& report);
Result<RunReport> RunReportFromJson(const Json& json);

// The human summary printed at the end of a run.
std::string SummaryTable(const RunReport& report);

// Writes completion-cdf.png (one curve per report: compare strategies) and
// origin-egress.png into `out_dir` with gnuplot, plus the .dat and .gp files
// it used (so a plot can be redrawn by hand).
Status WritePlots(const std::vector<RunReport>& reports, const std::string& out_dir);

}  // namespace flotilla::sim
