// Parsing of a device report's JSON body (POST /api/v1/devices/<id>/report;
// the format is documented in docs/tracker.md).
#pragma once

#include <string_view>

#include "core/status.h"
#include "tracker/storage/device_report.h"

namespace flotilla::tracker {

// Parses and validates a report body: strict JSON, every member present with
// the right type, no unknown members, labels and enums checked, bounded sizes.
Result<DeviceReport> ParseDeviceReport(std::string_view body);

}  // namespace flotilla::tracker
