// The result of a scenario run: JSON report, terminal summary, plots.
//
// Ground truth first: bytes per site and from the origin come from the
// routers' and the cloud's interface counters, per-device bytes from the
// device accounting counters (sim/device_accounting.h); what the nodes
// reported to the tracker is kept beside it, labelled as such. The JSON
// format is in docs/sim.md.
#pragma once

#include <cstdint>
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
};

struct ReportSummary {
  size_t devices = 0;
  size_t completed = 0;
  double p50_s = -1, p95_s = -1, max_s = -1;  // over completed devices; -1 when undefined
  double time_to_95pct_s = -1;                // when 95% of ALL devices had completed
  uint64_t wan_rx_bytes = 0;                  // all sites
  double origin_copies = 0;                   // origin egress / release_bytes
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
