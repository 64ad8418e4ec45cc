// What a device reports about itself (POST /api/v1/devices/<id>/report) and
// its one JSON form (docs/tracker.md), read by the tracker and written by the
// client library; the database stores it as it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla::tracker {

inline constexpr size_t kMaxReportErrors = 16;
inline constexpr size_t kMaxReportErrorBytes = 1024;
inline constexpr size_t kMaxReportBadPeers = 64;

// A peer that sent the device data failing its hash check.
struct BadPeer {
  std::string swarm;  // the announce's info_hash as 40 lowercase hex digits
  std::string ip;     // IPv4 or IPv6 literal, as the device connected to it
  uint16_t port = 0;
  uint32_t hash_failures = 0;  // pieces from it that failed, >= 1
  friend bool operator==(const BadPeer&, const BadPeer&) = default;
};

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
  // Optional: absent from the JSON when empty, so a report without bad peers
  // reads the same to trackers that do not know the member.
  std::vector<BadPeer> bad_peers;
  // Optional: the device's report sequence number (>= 1, growing with each
  // new report, the same when a report is sent again); 0 when absent.
  uint64_t seq = 0;
  // Optional, with state "failed" or "rolled_back" only: what kind of
  // failure it was, one of ReportFailureKinds(); "" when absent (a 0.1.0
  // node, or a kind the node does not know).
  std::string failure;
  // Optional: the OCI platform the device runs ("linux/arm64", "linux/arm/v7");
  // the tracker tags the device with PlatformTag() of it. "" when absent.
  std::string platform;
};

// The tag a device reporting `platform` carries: "platform.linux.arm.v7" for
// "linux/arm/v7". Tags starting "platform." are the devices' own: a report
// naming a platform replaces any other such tag of its device.
std::string PlatformTag(std::string_view platform);
inline constexpr std::string_view kPlatformTagPrefix = "platform.";

// The kinds of failure a report may name (docs/tracker.md): the release was
// refused ("verification"), could not be started ("deploy"), or did not run
// healthy after its switch ("health"); or the node will try again: a fetch
// that failed ("transfer"), a full disk ("disk"). An agent release that was
// rolled back in its probation ("agent-probation", docs/agent-update.md).
inline const std::vector<std::string>& ReportFailureKinds() {
  static const std::vector<std::string> kKinds = {"verification", "deploy", "health",
                                                  "transfer",     "disk",   "agent-probation"};
  return kKinds;
}

// The states a device may report, in the order the dashboard lists them.
inline const std::vector<std::string>& ReportStates() {
  static const std::vector<std::string> kStates = {
      "idle", "downloading", "verifying", "deploying", "running", "failed", "rolled_back"};
  return kStates;
}

// Parses and validates a report body: strict JSON, every member present with
// the right type, no unknown members, labels and enums checked, bounded sizes;
// `bad_peers`, `seq`, `failure` and `platform` are optional; a `failure` of an unknown
// kind, or with a state other than failed or rolled_back, is refused.
Result<DeviceReport> ParseDeviceReport(std::string_view body);
// The same for a report inside another document; `path` names it in errors.
Result<DeviceReport> DeviceReportFromJson(const Json& json, const std::string& path);
Json DeviceReportToJson(const DeviceReport& report);

}  // namespace flotilla::tracker
