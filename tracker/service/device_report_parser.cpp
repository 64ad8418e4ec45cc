#include "tracker/service/device_report_parser.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "core/canonical_json.h"
#include "tracker/announce/announce_request.h"

namespace flotilla::tracker {
namespace {

Result<std::string> GetString(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return InvalidArgument(std::string(key) + " must be a string");
  }
  return it->get<std::string>();
}

Result<uint64_t> GetCount(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned()) {
    return InvalidArgument(std::string(key) + " must be a non-negative integer");
  }
  // Stored as SQLite INTEGER (signed 64-bit).
  if (it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgument(std::string(key) + " is too large");
  }
  return it->get<uint64_t>();
}

Status CheckMembers(const Json& obj) {
  static const std::set<std::string> kAllowed = {
      "app",    "release", "state", "progress", "bytes_from_peers", "bytes_from_origin",
      "health", "errors"};
  for (const auto& [key, value] : obj.items()) {
    if (!kAllowed.contains(key)) return InvalidArgument("unknown member " + key);
  }
  return Status::Ok();
}

Status ParseLabels(const Json& obj, DeviceReport& r) {
  ASSIGN_OR_RETURN(r.app, GetString(obj, "app"));
  ASSIGN_OR_RETURN(r.release, GetString(obj, "release"));
  if (!r.app.empty() && !IsValidLabel(r.app)) return InvalidArgument("app is not a valid label");
  if (!r.release.empty() && !IsValidLabel(r.release)) {
    return InvalidArgument("release is not a valid label");
  }
  ASSIGN_OR_RETURN(r.state, GetString(obj, "state"));
  const auto& states = ReportStates();
  if (std::find(states.begin(), states.end(), r.state) == states.end()) {
    return InvalidArgument("unknown state");
  }
  ASSIGN_OR_RETURN(r.health, GetString(obj, "health"));
  if (r.health != "healthy" && r.health != "unhealthy" && r.health != "unknown") {
    return InvalidArgument("health must be healthy, unhealthy or unknown");
  }
  return Status::Ok();
}

Status ParseCounts(const Json& obj, DeviceReport& r) {
  auto progress = obj.find("progress");
  if (progress == obj.end() || !progress->is_object() || progress->size() != 2) {
    return InvalidArgument("progress must be {\"done\": n, \"total\": n}");
  }
  ASSIGN_OR_RETURN(r.progress_done, GetCount(*progress, "done"));
  ASSIGN_OR_RETURN(r.progress_total, GetCount(*progress, "total"));
  if (r.progress_done > r.progress_total) return InvalidArgument("progress done exceeds total");
  ASSIGN_OR_RETURN(r.bytes_from_peers, GetCount(obj, "bytes_from_peers"));
  ASSIGN_OR_RETURN(r.bytes_from_origin, GetCount(obj, "bytes_from_origin"));
  return Status::Ok();
}

Status ParseErrors(const Json& obj, DeviceReport& r) {
  auto errors = obj.find("errors");
  if (errors == obj.end() || !errors->is_array()) return InvalidArgument("errors must be a list");
  if (errors->size() > kMaxReportErrors) return InvalidArgument("too many errors");
  for (const auto& e : *errors) {
    if (!e.is_string()) return InvalidArgument("errors must be strings");
    const auto& text = e.get_ref<const std::string&>();
    if (text.empty() || text.size() > kMaxReportErrorBytes) {
      return InvalidArgument("an error message is empty or too long");
    }
    r.errors.push_back(text);
  }
  return Status::Ok();
}

}  // namespace

Result<DeviceReport> ParseDeviceReport(std::string_view body) {
  ASSIGN_OR_RETURN(Json obj,
                   ParseJsonStrict(body, JsonLimits{.max_bytes = 64 << 10, .max_depth = 4}));
  if (!obj.is_object()) return InvalidArgument("a report is a JSON object");
  RETURN_IF_ERROR(CheckMembers(obj));
  DeviceReport r;
  RETURN_IF_ERROR(ParseLabels(obj, r));
  RETURN_IF_ERROR(ParseCounts(obj, r));
  RETURN_IF_ERROR(ParseErrors(obj, r));
  return r;
}

}  // namespace flotilla::tracker
