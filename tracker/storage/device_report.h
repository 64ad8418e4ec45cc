// What a device reports about itself (POST /api/v1/devices/<id>/report), as
// the database stores it. The JSON form (docs/tracker.md) is parsed by
// tracker/service/device_report_parser.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flotilla::tracker {

inline constexpr size_t kMaxReportErrors = 16;
inline constexpr size_t kMaxReportErrorBytes = 1024;

struct DeviceReport {
  std::string app;      // label, may be empty before the first release
  std::string release;  // label, may be empty before the first release
  std::string state;    // one of ReportStates()
  uint64_t progress_done = 0;
  uint64_t progress_total = 0;
  uint64_t bytes_from_peers = 0;
  uint64_t bytes_from_origin = 0;
  std::string health;  // "healthy", "unhealthy" or "unknown"
  std::vector<std::string> errors;
};

// The states a device may report, in the order the dashboard lists them.
inline const std::vector<std::string>& ReportStates() {
  static const std::vector<std::string> kStates = {
      "idle", "downloading", "verifying", "deploying", "running", "failed", "rolled_back"};
  return kStates;
}

}  // namespace flotilla::tracker
