#include "tracker/api/fleet.h"

#include <cstdio>
#include <ctime>

#include "core/clock.h"
#include "core/json_object_reader.h"

namespace flotilla::tracker {
namespace {

// Reads a time UtcText wrote back into Unix seconds.
void UtcTime(JsonObjectReader& r, std::string_view key, int64_t& out) {
  std::string text;
  r.String(key, text);
  if (text.empty()) return;
  std::tm tm{};
  char z = 0;
  int end = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &end) != 7 ||
      z != 'Z' || static_cast<size_t>(end) != text.size()) {
    return r.Fail(key, "must be a UTC time such as 2026-12-07T01:02:03Z");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  out = static_cast<int64_t>(timegm(&tm));
}

Json DesiredToJson(const DesiredRow& d) {
  return Json{{"app", d.app},
              {"release", d.release ? Json(*d.release) : Json(nullptr)},
              {"reason", d.reason}};
}

Status ReadDesired(JsonObjectReader& r, DesiredRow& d) {
  r.Require({"app", "reason"});
  r.String("app", d.app);
  uint64_t release = 0;
  if (r.Find("release") != nullptr) {
    r.Unsigned("release", release, 1, uint64_t{INT64_MAX});
    d.release = release;
  }
  r.String("reason", d.reason);
  return r.status();
}

Json AppStatusToJson(const AppStatusRow& a) {
  return Json{{"app", a.app},       {"release", a.release}, {"state", a.state},
              {"health", a.health}, {"failure", a.failure}, {"reported_at", a.reported_at}};
}

Status ReadAppStatus(JsonObjectReader& r, AppStatusRow& a) {
  r.Require({"app", "release", "state"});
  r.String("app", a.app);
  r.String("release", a.release);
  r.String("state", a.state);
  r.String("health", a.health);
  r.String("failure", a.failure);
  r.Int("reported_at", a.reported_at);
  return r.status();
}

Json DeviceToJson(const DeviceRow& d) {
  Json desired = Json::array();
  for (const DesiredRow& row : d.desired) desired.push_back(DesiredToJson(row));
  Json apps = Json::array();
  for (const AppStatusRow& a : d.apps) apps.push_back(AppStatusToJson(a));
  return Json{{"device_id", d.identity.device_id},
              {"name", d.identity.name},
              {"site", d.identity.site},
              {"enrolled_at", d.enrolled_at},
              {"last_seen", d.last_seen},
              {"report", d.reported ? DeviceReportToJson(d.report) : Json()},
              {"apps", apps},
              {"desired", desired}};
}

Status ReadDevice(const Json& json, const std::string& path, DeviceRow& d) {
  JsonObjectReader r(json, path, UnknownKeys::kIgnore);
  r.Require({"device_id", "name", "site", "enrolled_at", "last_seen"});
  r.String("device_id", d.identity.device_id);
  r.String("name", d.identity.name);
  r.String("site", d.identity.site);
  r.Int("enrolled_at", d.enrolled_at);
  r.Int("last_seen", d.last_seen);
  r.Objects("desired",
            [&](JsonObjectReader& e) { return ReadDesired(e, d.desired.emplace_back()); });
  r.Objects("apps", [&](JsonObjectReader& e) { return ReadAppStatus(e, d.apps.emplace_back()); });
  const Json* report = r.Object("report");
  RETURN_IF_ERROR(r.Finish());
  if (report == nullptr) return Status::Ok();
  d.reported = true;
  ASSIGN_OR_RETURN(d.report, DeviceReportFromJson(*report, r.PathOf("report")));
  return Status::Ok();
}

Status ReadRelease(const Json& json, const std::string& path, ReleaseRow& row) {
  JsonObjectReader r(json, path, UnknownKeys::kIgnore);
  r.Require({"app", "release", "published_at", "devices"});
  r.String("app", row.app);
  r.String("release", row.release);
  r.Int("published_at", row.published_at);
  r.Int("devices", row.devices);
  return r.Finish();
}

Status ReadGroup(const Json& json, const std::string& path, GroupRow& row) {
  JsonObjectReader r(json, path, UnknownKeys::kIgnore);
  r.Require({"name", "selector", "apps", "pins", "windows", "devices"});
  r.String("name", row.name);
  r.String("selector", row.selector);
  r.Strings("apps", row.apps);
  if (const Json* pins = r.Object("pins")) {
    for (const auto& [app, release] : pins->items()) {
      r.Check(release.is_number_unsigned(), "pins", "must map apps to releases");
      if (release.is_number_unsigned()) row.pins[app] = release.get<uint64_t>();
    }
  }
  r.Strings("windows", row.windows);
  r.Unsigned("devices", row.devices);
  return r.Finish();
}

Status ReadFailureRow(const Json& json, const std::string& path, FailureRow& row) {
  JsonObjectReader r(json, path, UnknownKeys::kIgnore);
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

Json RolloutToJson(const RolloutRow& r) {
  Json waves = Json::array();
  for (size_t w = 0; w < r.waves.size(); ++w) {
    const RolloutWaveRow& c = r.waves[w];
    waves.push_back({{"wave", w + 1},
                     {"share", c.share},
                     {"size", c.size},
                     {"started", c.started},
                     {"healthy", c.healthy},
                     {"soaking", c.soaking},
                     {"failed", c.failed},
                     {"pending", c.pending},
                     {"silent", c.silent}});
  }
  Json failed = Json::array();
  for (const RolloutFailedDevice& f : r.failed_devices) {
    failed.push_back({{"device", f.device}, {"wave", f.wave}, {"failure", f.failure}});
  }
  return Json{{"id", r.id},
              {"app", r.app},
              {"release", r.release},
              {"group", r.group.empty() ? Json(nullptr) : Json(r.group)},
              {"state", r.state},
              {"reason", r.reason},
              {"current_wave", r.current_wave},
              {"soak_s", r.soak_s},
              {"max_failures", r.max_failures},
              {"wave_timeout_s", r.wave_timeout_s},
              {"created_at", UtcText(r.created_at)},
              {"wave_started_at", UtcText(r.wave_started_at)},
              {"updated_at", UtcText(r.updated_at)},
              {"waves", waves},
              {"failed_devices", failed}};
}

Result<RolloutRow> RolloutFromJson(const Json& json, const std::string& path) {
  RolloutRow row;
  JsonObjectReader r(json, path, UnknownKeys::kIgnore);
  r.Require({"id", "app", "release", "state", "current_wave", "waves", "failed_devices"});
  r.Int("id", row.id, 1);
  r.String("app", row.app);
  r.Unsigned("release", row.release, 1, uint64_t{INT64_MAX});
  r.String("group", row.group);
  r.String("state", row.state);
  r.String("reason", row.reason);
  r.Unsigned("current_wave", row.current_wave, 1);
  r.Int("soak_s", row.soak_s, 0);
  r.String("max_failures", row.max_failures);
  r.Int("wave_timeout_s", row.wave_timeout_s, 0);
  UtcTime(r, "created_at", row.created_at);
  UtcTime(r, "wave_started_at", row.wave_started_at);
  UtcTime(r, "updated_at", row.updated_at);
  r.Objects("waves", [&](JsonObjectReader& w) {
    RolloutWaveRow& c = row.waves.emplace_back();
    uint64_t number = 0;
    w.Require({"wave", "share", "size", "started"});
    w.Unsigned("wave", number, row.waves.size(), row.waves.size());  // in order
    w.String("share", c.share);
    w.Bool("started", c.started);
    w.Unsigned("size", c.size);
    w.Unsigned("healthy", c.healthy);
    w.Unsigned("soaking", c.soaking);
    w.Unsigned("failed", c.failed);
    w.Unsigned("pending", c.pending);
    w.Unsigned("silent", c.silent);
  });
  r.Objects("failed_devices", [&](JsonObjectReader& f) {
    RolloutFailedDevice& d = row.failed_devices.emplace_back();
    f.Require({"device", "wave", "failure"});
    f.String("device", d.device);
    f.Unsigned("wave", d.wave, 1);
    f.String("failure", d.failure);
  });
  RETURN_IF_ERROR(r.Finish());
  if (row.current_wave > row.waves.size()) {
    return InvalidArgument(r.PathOf("current_wave") + ": beyond the last wave");
  }
  return row;
}

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
  Json rollouts = Json::array();
  for (const RolloutRow& r : fleet.rollouts) rollouts.push_back(RolloutToJson(r));
  Json groups = Json::array();
  for (const GroupRow& g : fleet.groups) {
    groups.push_back({{"name", g.name},
                      {"selector", g.selector},
                      {"apps", g.apps},
                      {"pins", g.pins},
                      {"windows", g.windows},
                      {"devices", g.devices}});
  }
  return Json{{"devices", devices},
              {"devices_total", fleet.devices_total},
              {"devices_offset", fleet.devices_offset},
              {"releases", releases},
              {"failures", failures},
              {"bytes_from_peers", fleet.bytes_from_peers},
              {"bytes_from_origin", fleet.bytes_from_origin},
              {"rollouts", rollouts},
              {"rollouts_total", fleet.rollouts_total},
              {"groups", groups},
              {"fleet_model_at", fleet.fleet_model_at}};
}

Result<FleetSnapshot> ParseFleet(std::string_view body, size_t max_bytes) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(body, JsonLimits{.max_bytes = max_bytes, .max_depth = 6}));
  JsonObjectReader r(json, "", UnknownKeys::kIgnore);
  FleetSnapshot fleet;
  r.Require({"devices", "releases", "failures", "bytes_from_peers", "bytes_from_origin"});
  r.Unsigned("bytes_from_peers", fleet.bytes_from_peers);
  r.Unsigned("bytes_from_origin", fleet.bytes_from_origin);
  RETURN_IF_ERROR(ReadRows(r, "devices", fleet.devices, ReadDevice));
  RETURN_IF_ERROR(ReadRows(r, "releases", fleet.releases, ReadRelease));
  RETURN_IF_ERROR(ReadRows(r, "failures", fleet.failures, ReadFailureRow));
  // A tracker from before rollouts and pages sends none of these: every
  // device, no rollout.
  fleet.devices_total = fleet.devices.size();
  r.Unsigned("devices_total", fleet.devices_total);
  r.Unsigned("devices_offset", fleet.devices_offset);
  if (const Json* rollouts = r.Array("rollouts")) {
    for (size_t i = 0; i < rollouts->size(); ++i) {
      ASSIGN_OR_RETURN(
          RolloutRow row,
          RolloutFromJson((*rollouts)[i], r.PathOf("rollouts") + "[" + std::to_string(i) + "]"));
      fleet.rollouts.push_back(std::move(row));
    }
  }
  r.Unsigned("rollouts_total", fleet.rollouts_total);
  RETURN_IF_ERROR(ReadRows(r, "groups", fleet.groups, ReadGroup));
  r.Int("fleet_model_at", fleet.fleet_model_at, 0);
  RETURN_IF_ERROR(r.Finish());
  return fleet;
}

}  // namespace flotilla::tracker
