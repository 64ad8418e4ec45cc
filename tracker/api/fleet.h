// The fleet as the tracker knows it: enrolled devices with their latest
// reports and the release the fleet wants each to run, releases, recent
// failures and the rollouts. The database builds it, the dashboard renders
// it, GET /api/v1/fleet sends it in the one JSON form below (docs/tracker.md)
// and the client library reads it back.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
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

// The release of one app the fleet wants a device to run, and why
// (docs/fleet.md, "The desired release").
struct DesiredRow {
  std::string app;
  std::optional<uint64_t> release;  // nullopt: the device is sent nothing for the app
  std::string reason;               // "pinned by group g", "rollout 3: wave 2 of 3, waiting; ..."
};

// The latest report of one app of a device, as stored (device_status).
struct AppStatusRow {
  std::string app;
  std::string release;
  std::string state;
  std::string health;
  std::string failure;      // the report's failure kind; "": none
  int64_t reported_at = 0;  // unix seconds
};

struct DeviceRow {
  DeviceIdentity identity;
  int64_t enrolled_at = 0;  // unix seconds
  int64_t last_seen = 0;    // unix seconds of `report`, 0 if none
  bool reported = false;
  // The device's status where one is shown per device: its newest report of
  // an app other than its agent app, else its agent app's (docs/tracker.md,
  // "Version 14"). Errors left empty; see FleetSnapshot::failures.
  DeviceReport report;
  // The latest report of each app it reported, by app ("apps" in JSON; a
  // tracker before schema 14 sends none): what it runs of one app.
  std::vector<AppStatusRow> apps;
  // Per app the device's groups assign, by app; empty when none is (or the
  // tracker serves no fleet model).
  std::vector<DesiredRow> desired;
};

// One wave of a rollout as `rollout status` counts it.
struct RolloutWaveRow {
  std::string share;  // cumulative, "50%"
  bool started = false;
  uint64_t size = 0;
  uint64_t healthy = 0;  // ran the release healthy for the soak time
  uint64_t soaking = 0;  // healthy, not yet for the soak time
  uint64_t failed = 0;
  uint64_t pending = 0;  // no verdict yet
  uint64_t silent = 0;   // of pending: no report since the wave started
};

struct RolloutFailedDevice {
  std::string device;  // name
  uint64_t wave = 0;   // 1-based
  std::string failure;
};

// A rollout in the form `rollout status --json` prints (docs/fleet.md).
struct RolloutRow {
  int64_t id = 0;
  std::string app;
  uint64_t release = 0;
  std::string group;  // "": the whole fleet
  std::string state;  // running, paused, halted, aborted, completed
  std::string reason;
  uint64_t current_wave = 1;  // 1-based
  int64_t soak_s = 0;
  std::string max_failures;  // "5%"
  int64_t wave_timeout_s = 0;
  int64_t created_at = 0;  // unix seconds (RFC 3339 UTC in JSON)
  int64_t wave_started_at = 0;
  int64_t updated_at = 0;
  std::vector<RolloutWaveRow> waves;
  std::vector<RolloutFailedDevice> failed_devices;
};

Json RolloutToJson(const RolloutRow& rollout);
// Ignores members it does not know, as ParseFleet.
Result<RolloutRow> RolloutFromJson(const Json& json, const std::string& path);

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

// A group as operators defined it (docs/fleet.md, "The model"), with the
// number of devices its selector matches when the model was read.
struct GroupRow {
  std::string name;
  std::string selector;                  // canonical form: "site=shop-12,tag=kiosk"
  std::vector<std::string> apps;         // assigned to the group
  std::map<std::string, uint64_t> pins;  // app -> release
  std::vector<std::string> windows;      // "mon-fri 22:00-06:00 Europe/Berlin"
  uint64_t devices = 0;
};

// Which devices a snapshot holds: `limit` of them (0: every one) after the
// first `offset`, by name.
struct DevicePage {
  uint64_t offset = 0;
  uint64_t limit = 0;
};

struct FleetSnapshot {
  std::vector<DeviceRow> devices;  // the page asked for, by name
  uint64_t devices_total = 0;      // enrolled devices, on every page
  uint64_t devices_offset = 0;     // of devices[0] among them
  std::vector<ReleaseRow> releases;
  std::vector<FailureRow> failures;  // newest first
  uint64_t bytes_from_peers = 0;     // sum of all the devices' latest reports
  uint64_t bytes_from_origin = 0;
  std::vector<RolloutRow> rollouts;  // the newest first, at most a bounded number
  uint64_t rollouts_total = 0;       // rollouts in the database
  std::vector<GroupRow> groups;      // by name
  // When the rollouts and desired releases were read (unix seconds; they
  // are read apart from the request); 0: not (yet) available.
  int64_t fleet_model_at = 0;
};

Json FleetToJson(const FleetSnapshot& fleet);
// `max_bytes` bounds the document (a large fleet is a large answer).
// Members this version does not know are ignored (a newer tracker may add
// some), except in a device's report, which has the form of POST .../report.
Result<FleetSnapshot> ParseFleet(std::string_view body, size_t max_bytes);

}  // namespace flotilla::tracker
