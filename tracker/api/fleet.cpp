#include "tracker/api/fleet.h"

#include "core/json_object_reader.h"

namespace flotilla::tracker {
namespace {

Json DeviceToJson(const DeviceRow& d) {
  return Json{{"device_id", d.identity.device_id},
              {"name", d.identity.name},
              {"site", d.identity.site},
              {"enrolled_at", d.enrolled_at},
              {"last_seen", d.last_seen},
              {"report", d.reported ? DeviceReportToJson(d.report) : Json()}};
}

Status ReadDevice(const Json& json, const std::string& path, DeviceRow& d) {
  JsonObjectReader r(json, path);
  r.Require({"device_id", "name", "site", "enrolled_at", "last_seen"});
  r.String("device_id", d.identity.device_id);
  r.String("name", d.identity.name);
  r.String("site", d.identity.site);
  r.Int("enrolled_at", d.enrolled_at);
  r.Int("last_seen", d.last_seen);
  const Json* report = r.Object("report");
  RETURN_IF_ERROR(r.Finish());
  if (report == nullptr) return Status::Ok();
  d.reported = true;
  ASSIGN_OR_RETURN(d.report, DeviceReportFromJson(*report, r.PathOf("report")));
  return Status::Ok();
}

Status ReadRelease(const Json& json, const std::string& path, ReleaseRow& row) {
  JsonObjectReader r(json, path);
  r.Require({"app", "release", "published_at", "devices"});
  r.String("app", row.app);
  r.String("release", row.release);
  r.Int("published_at", row.published_at);
  r.Int("devices", row.devices);
  return r.Finish();
}

Status ReadFailure(const Json& json, const std::string& path, FailureRow& row) {
  JsonObjectReader r(json, path);
  r.Require({"device", "app", "release", "message", "at"});
  r.String("device", row.device_name);
  r.String("app", row.app);
  r.String("release", row.release);
  r.String("message", row.message);
  r.Int("at", row.at);
  return r.Finish();
}

// Reads every element of the array member `key` with `read`.
template <typename Row, typename Read>
Status ReadRows(JsonObjectReader& r, std::string_view key, std::vector<Row>& rows, Read read) {
  const Json* array = r.Array(key);
  if (array == nullptr) return r.status();
  for (size_t i = 0; i < array->size(); ++i) {
    RETURN_IF_ERROR(
        read((*array)[i], r.PathOf(key) + "[" + std::to_string(i) + "]", rows.emplace_back()));
  }
  return Status::Ok();
}

}  // namespace

Json FleetToJson(const FleetSnapshot& fleet) {
  Json devices = Json::array(), releases = Json::array(), failures = Json::array();
  for (const DeviceRow& d : fleet.devices) devices.push_back(DeviceToJson(d));
  for (const ReleaseRow& r : fleet.releases) {
    releases.push_back({{"app", r.app},
                        {"release", r.release},
                        {"published_at", r.published_at},
                        {"devices", r.devices}});
  }
  for (const FailureRow& f : fleet.failures) {
    failures.push_back({{"device", f.device_name},
                        {"app", f.app},
                        {"release", f.release},
                        {"message", f.message},
                        {"at", f.at}});
  }
  return Json{{"devices", devices},
              {"releases", releases},
              {"failures", failures},
              {"bytes_from_peers", fleet.bytes_from_peers},
              {"bytes_from_origin", fleet.bytes_from_origin}};
}

Result<FleetSnapshot> ParseFleet(std::string_view body, size_t max_bytes) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(body, JsonLimits{.max_bytes = max_bytes, .max_depth = 6}));
  JsonObjectReader r(json, "");
  FleetSnapshot fleet;
  r.Require({"devices", "releases", "failures", "bytes_from_peers", "bytes_from_origin"});
  r.Unsigned("bytes_from_peers", fleet.bytes_from_peers);
  r.Unsigned("bytes_from_origin", fleet.bytes_from_origin);
  RETURN_IF_ERROR(ReadRows(r, "devices", fleet.devices, ReadDevice));
  RETURN_IF_ERROR(ReadRows(r, "releases", fleet.releases, ReadRelease));
  RETURN_IF_ERROR(ReadRows(r, "failures", fleet.failures, ReadFailure));
  RETURN_IF_ERROR(r.Finish());
  return fleet;
}

}  // namespace flotilla::tracker
