// The fleet as the tracker knows it: enrolled devices with their latest
// reports, releases and recent failures. The database builds it, the
// dashboard renders it, GET /api/v1/fleet sends it in the one JSON form
// below (docs/tracker.md) and the client library reads it back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"
#include "tracker/api/device_report.h"

namespace flotilla::tracker {

struct DeviceIdentity {
  std::string device_id;
  std::string name;
  std::string site;
};

struct DeviceRow {
  DeviceIdentity identity;
  int64_t enrolled_at = 0;  // unix seconds
  int64_t last_seen = 0;    // unix seconds of the last report, 0 if none
  bool reported = false;
  DeviceReport report;  // errors left empty; see FleetSnapshot::failures
};

struct FailureRow {
  std::string device_name;
  std::string app;
  std::string release;
  std::string message;
  int64_t at = 0;
};

struct ReleaseRow {
  std::string app;
  std::string release;
  int64_t published_at = 0;  // 0: known only from device reports
  int64_t devices = 0;       // devices reporting this release
};

struct FleetSnapshot {
  std::vector<DeviceRow> devices;
  std::vector<ReleaseRow> releases;
  std::vector<FailureRow> failures;  // newest first
  uint64_t bytes_from_peers = 0;     // sum of the devices' latest reports
  uint64_t bytes_from_origin = 0;
};

Json FleetToJson(const FleetSnapshot& fleet);
// `max_bytes` bounds the document (a large fleet is a large answer).
Result<FleetSnapshot> ParseFleet(std::string_view body, size_t max_bytes);

}  // namespace flotilla::tracker
