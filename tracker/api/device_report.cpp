#include "tracker/api/device_report.h"

#include <algorithm>

#include "core/json_object_reader.h"
#include "tracker/api/labels.h"

namespace flotilla::tracker {
namespace {

// Stored as SQLite INTEGER (signed 64-bit).
constexpr uint64_t kMaxCount = INT64_MAX;

void ReadLabels(JsonObjectReader& r, DeviceReport& report) {
  r.String("app", report.app);
  r.String("release", report.release);
  r.String("state", report.state);
  r.String("health", report.health);
  r.Check(report.app.empty() || IsValidLabel(report.app), "app", "is not a valid label");
  r.Check(report.release.empty() || IsValidLabel(report.release), "release",
          "is not a valid label");
  const auto& states = ReportStates();
  r.Check(std::find(states.begin(), states.end(), report.state) != states.end(), "state",
          "is not a known state");
  r.Check(report.health == "healthy" || report.health == "unhealthy" || report.health == "unknown",
          "health", "must be healthy, unhealthy or unknown");
}

// Returns the verdict on the nested progress object.
Status ReadCounts(JsonObjectReader& r, DeviceReport& report) {
  r.Unsigned("bytes_from_peers", report.bytes_from_peers, 0, kMaxCount);
  r.Unsigned("bytes_from_origin", report.bytes_from_origin, 0, kMaxCount);
  const Json* progress = r.Object("progress");
  if (progress == nullptr) return Status::Ok();  // r holds the error
  JsonObjectReader p(*progress, r.PathOf("progress"));
  p.Require({"done", "total"});
  p.Unsigned("done", report.progress_done, 0, kMaxCount);
  p.Unsigned("total", report.progress_total, 0, kMaxCount);
  p.Check(report.progress_done <= report.progress_total, "done", "exceeds total");
  return p.Finish();
}

void ReadErrors(JsonObjectReader& r, DeviceReport& report) {
  r.Strings("errors", report.errors);
  r.Check(report.errors.size() <= kMaxReportErrors, "errors", "has too many entries");
  for (const auto& e : report.errors) {
    r.Check(!e.empty() && e.size() <= kMaxReportErrorBytes, "errors",
            "holds an empty or too long message");
  }
}

}  // namespace

Result<DeviceReport> DeviceReportFromJson(const Json& json, const std::string& path) {
  JsonObjectReader r(json, path);
  r.Require({"app", "release", "state", "progress", "bytes_from_peers", "bytes_from_origin",
             "health", "errors"});
  DeviceReport report;
  ReadLabels(r, report);
  Status progress = ReadCounts(r, report);
  ReadErrors(r, report);
  RETURN_IF_ERROR(r.Finish());
  RETURN_IF_ERROR(progress);
  return report;
}

Result<DeviceReport> ParseDeviceReport(std::string_view body) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(body, JsonLimits{.max_bytes = 64 << 10, .max_depth = 4}));
  return DeviceReportFromJson(json, "");
}

Json DeviceReportToJson(const DeviceReport& report) {
  return Json{{"app", report.app},
              {"release", report.release},
              {"state", report.state},
              {"progress", {{"done", report.progress_done}, {"total", report.progress_total}}},
              {"bytes_from_peers", report.bytes_from_peers},
              {"bytes_from_origin", report.bytes_from_origin},
              {"health", report.health},
              {"errors", report.errors}};
}

}  // namespace flotilla::tracker
