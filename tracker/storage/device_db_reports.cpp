// DeviceDb: writing reports and reading the fleet for the dashboard and metrics.
#include <algorithm>
#include <map>
#include <string>

#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

// Failures kept in the database; older ones are deleted as new ones arrive.
constexpr int64_t kMaxStoredFailures = 1000;

Status UpsertStatus(SqlEngine& db, const std::string& device_id, const DeviceReport& r,
                    int64_t now) {
  return db
      .Query(
          "INSERT INTO device_status(device_id, app, release, state, progress_done, "
          "progress_total, bytes_from_peers, bytes_from_origin, health, failure, reported_at) "
          "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_id, app) DO UPDATE SET "
          "release = excluded.release, state = excluded.state, "
          "progress_done = excluded.progress_done, progress_total = excluded.progress_total, "
          "bytes_from_peers = excluded.bytes_from_peers, "
          "bytes_from_origin = excluded.bytes_from_origin, health = excluded.health, "
          "failure = excluded.failure, reported_at = excluded.reported_at",
          {device_id, r.app, r.release, r.state, static_cast<int64_t>(r.progress_done),
           static_cast<int64_t>(r.progress_total), static_cast<int64_t>(r.bytes_from_peers),
           static_cast<int64_t>(r.bytes_from_origin), r.health, r.failure, now})
      .status();
}

// A report of an app replaces the device's idle report (no app: it
// followed none); an idle report replaces every app's, since the device
// follows none of them any more.
Status DropOutdatedStatus(SqlEngine& db, const std::string& device_id, const DeviceReport& r) {
  return db
      .Query(r.app.empty() ? "DELETE FROM device_status WHERE device_id = ? AND app <> ''"
                           : "DELETE FROM device_status WHERE device_id = ? AND app = ''",
             {device_id})
      .status();
}

// Each device's status as one row (`n` = 1), where a page means the device
// and not one app: its newest report of an app other than its agent app,
// else its agent app's (docs/tracker.md, "Version 14"). Prefixes a query
// that reads `latest`.
constexpr char kLatestStatusPerDevice[] =
    "WITH latest AS (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.device_id ORDER BY "
    "CASE WHEN s.app LIKE 'flotilla-agent-%' THEN 1 ELSE 0 END, s.reported_at DESC, s.app) AS n "
    "FROM device_status s) ";

Status AppendFailures(SqlEngine& db, const std::string& device_id, const DeviceReport& r,
                      int64_t now, int64_t keep) {
  for (const auto& message : r.errors) {
    RETURN_IF_ERROR(db.Query("INSERT INTO failures(device_id, app, release, message, at) "
                             "VALUES(?, ?, ?, ?, ?)",
                             {device_id, r.app, r.release, message, now})
                        .status());
  }
  if (r.errors.empty()) return Status::Ok();
  return db.Query("DELETE FROM failures WHERE id <= (SELECT MAX(id) FROM failures) - ?", {keep})
      .status();
}

// Claims report `seq` of the device: false when a report with this or a
// higher number is already stored. On PostgreSQL the row lock makes a
// concurrent claim of the same number wait, then see it taken.
Result<bool> ClaimSequence(SqlEngine& db, const std::string& device_id, uint64_t seq) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("INSERT INTO report_sequence(device_id, last_seq) VALUES(?, ?) "
                            "ON CONFLICT(device_id) DO UPDATE SET last_seq = excluded.last_seq "
                            "WHERE report_sequence.last_seq < excluded.last_seq "
                            "RETURNING last_seq",
                            {device_id, static_cast<int64_t>(seq)}));
  return !rows.empty();
}

// The latest report of each app of the page's devices (`devices`, by name).
Status ReadAppStatuses(SqlEngine& db, DevicePage page, std::vector<DeviceRow>& devices) {
  constexpr uint64_t kMax = INT64_MAX;
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db.Query("SELECT s.device_id, s.app, s.release, s.state, s.health, s.failure, s.reported_at "
               "FROM device_status s JOIN (SELECT device_id FROM devices ORDER BY name "
               "LIMIT ? OFFSET ?) p ON p.device_id = s.device_id WHERE s.app <> '' "
               "ORDER BY s.device_id, s.app",
               {static_cast<int64_t>(page.limit == 0 ? kMax : std::min(page.limit, kMax)),
                static_cast<int64_t>(std::min(page.offset, kMax))}));
  std::map<std::string, DeviceRow*> by_id;
  for (DeviceRow& d : devices) by_id[d.identity.device_id] = &d;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto it = by_id.find(rows.Text(i, 0));
    if (it == by_id.end()) continue;  // enrolled between the two reads
    it->second->apps.push_back({rows.Text(i, 1), rows.Text(i, 2), rows.Text(i, 3), rows.Text(i, 4),
                                rows.Text(i, 5), rows.Int(i, 6)});
  }
  return Status::Ok();
}

Result<std::vector<DeviceRow>> ReadDevices(SqlEngine& db, DevicePage page) {
  constexpr uint64_t kMax = INT64_MAX;
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db.Query(
          std::string(kLatestStatusPerDevice) +
              "SELECT d.device_id, d.name, d.site, d.enrolled_at, "
              "CASE WHEN s.device_id IS NULL THEN 0 ELSE 1 END, "
              "s.app, s.release, s.state, s.progress_done, s.progress_total, s.bytes_from_peers, "
              "s.bytes_from_origin, s.health, COALESCE(s.reported_at, 0), "
              "COALESCE(s.failure, '') "
              "FROM devices d LEFT JOIN latest s ON s.device_id = d.device_id AND s.n = 1 "
              "ORDER BY d.name LIMIT ? OFFSET ?",
          {static_cast<int64_t>(page.limit == 0 ? kMax : std::min(page.limit, kMax)),
           static_cast<int64_t>(std::min(page.offset, kMax))}));
  std::vector<DeviceRow> devices;
  for (size_t i = 0; i < rows.size(); ++i) {
    DeviceRow row;
    row.identity = {rows.Text(i, 0), rows.Text(i, 1), rows.Text(i, 2)};
    row.enrolled_at = rows.Int(i, 3);
    row.reported = rows.Int(i, 4) != 0;
    row.report.app = rows.Text(i, 5);
    row.report.release = rows.Text(i, 6);
    row.report.state = row.reported ? rows.Text(i, 7) : "enrolled";
    row.report.progress_done = static_cast<uint64_t>(rows.Int(i, 8));
    row.report.progress_total = static_cast<uint64_t>(rows.Int(i, 9));
    row.report.bytes_from_peers = static_cast<uint64_t>(rows.Int(i, 10));
    row.report.bytes_from_origin = static_cast<uint64_t>(rows.Int(i, 11));
    row.report.health = rows.Text(i, 12);
    row.last_seen = rows.Int(i, 13);
    row.report.failure = rows.Text(i, 14);
    devices.push_back(std::move(row));
  }
  RETURN_IF_ERROR(ReadAppStatuses(db, page, devices));
  return devices;
}

Result<std::vector<ReleaseRow>> ReadReleases(SqlEngine& db) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("WITH known(app, release, published_at) AS ("
                            "  SELECT app, release, published_at FROM releases"
                            "  UNION ALL SELECT app, release, 0 FROM device_status"
                            "  WHERE app != '' AND release != ''"
                            ") SELECT k.app, k.release, MAX(k.published_at), "
                            "  (SELECT COUNT(*) FROM device_status s"
                            "   WHERE s.app = k.app AND s.release = k.release) "
                            "FROM known k GROUP BY k.app, k.release "
                            "ORDER BY k.app, MAX(k.published_at) DESC, k.release DESC"));
  std::vector<ReleaseRow> releases;
  for (size_t i = 0; i < rows.size(); ++i) {
    releases.push_back({rows.Text(i, 0), rows.Text(i, 1), rows.Int(i, 2), rows.Int(i, 3)});
  }
  return releases;
}

Result<std::vector<FailureRow>> ReadFailures(SqlEngine& db, int limit) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("SELECT d.name, f.app, f.release, f.message, f.at FROM failures f "
                            "JOIN devices d ON d.device_id = f.device_id "
                            "ORDER BY f.id DESC LIMIT ?",
                            {int64_t{limit}}));
  std::vector<FailureRow> failures;
  for (size_t i = 0; i < rows.size(); ++i) {
    failures.push_back(
        {rows.Text(i, 0), rows.Text(i, 1), rows.Text(i, 2), rows.Text(i, 3), rows.Int(i, 4)});
  }
  return failures;
}

// Tags the device with its reported platform, replacing any other platform
// tag of it (a device re-flashed for another architecture). Groups select
// on it (docs/registry.md, "Platforms"); nothing is written when it is there.
Status TagPlatform(SqlEngine& db, const std::string& device_id, const std::string& platform) {
  const std::string tag = PlatformTag(platform);
  static_assert(kPlatformTagPrefix == "platform.");  // the LIKE pattern below
  RETURN_IF_ERROR(db.Query("DELETE FROM device_tags WHERE device_id = ? AND tag <> ? AND "
                           "tag LIKE 'platform.%'",
                           {device_id, tag})
                      .status());
  return db
      .Query("INSERT INTO device_tags(device_id, tag) VALUES(?, ?) ON CONFLICT DO NOTHING",
             {device_id, tag})
      .status();
}

}  // namespace

Status DeviceDb::RecordReport(const std::string& device_id, const DeviceReport& report) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(SqlRows enrolled,
                   db_->Query("SELECT 1 FROM devices WHERE device_id = ?", {device_id}));
  if (enrolled.empty()) {
    // Decommissioned since its secret was cached: no replica takes it again.
    ForgetDevice(device_id);
    return NotFound("record report: device " + device_id + " is not enrolled");
  }
  if (report.seq != 0) {
    auto claimed = ClaimSequence(*db_, device_id, report.seq);
    RETURN_IF_ERROR(claimed.status().WithContext("record report"));
    if (!*claimed) return Status::Ok();  // stored before: the transaction rolls back
  }
  RETURN_IF_ERROR(DropOutdatedStatus(*db_, device_id, report).WithContext("record report"));
  RETURN_IF_ERROR(UpsertStatus(*db_, device_id, report, now).WithContext("record report"));
  RETURN_IF_ERROR(AppendFailures(*db_, device_id, report, now, kMaxStoredFailures)
                      .WithContext("record report"));
  if (!report.platform.empty()) {
    RETURN_IF_ERROR(TagPlatform(*db_, device_id, report.platform).WithContext("record report"));
  }
  return transaction.Commit();
}

void DeviceDb::ForgetDevice(const std::string& device_id) const {
  for (SecretCache* cache : {&by_credential_hash_, &by_passkey_hash_}) {
    std::erase_if(*cache,
                  [&](const auto& entry) { return entry.second.identity.device_id == device_id; });
  }
}

Result<FleetSnapshot> DeviceDb::Snapshot(int max_failures, DevicePage page) const {
  FleetSnapshot snap;
  ASSIGN_OR_RETURN(snap.devices, ReadDevices(*db_, page));
  snap.devices_offset = page.offset;
  ASSIGN_OR_RETURN(snap.releases, ReadReleases(*db_));
  ASSIGN_OR_RETURN(snap.failures, ReadFailures(*db_, max_failures));
  ASSIGN_OR_RETURN(SqlRows totals,
                   db_->Query("SELECT (SELECT COUNT(*) FROM devices), "
                              "(SELECT COALESCE(SUM(bytes_from_peers), 0) FROM device_status), "
                              "(SELECT COALESCE(SUM(bytes_from_origin), 0) FROM device_status)"));
  snap.devices_total = static_cast<uint64_t>(totals.Int(0, 0));
  snap.bytes_from_peers = static_cast<uint64_t>(totals.Int(0, 1));
  snap.bytes_from_origin = static_cast<uint64_t>(totals.Int(0, 2));
  return snap;
}

Status DeviceDb::Ping() const { return db_->Query("SELECT 1").status(); }

Result<std::map<std::string, int64_t>> DeviceDb::DevicesPerState() const {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query(std::string(kLatestStatusPerDevice) +
                                            "SELECT COALESCE(s.state, 'enrolled'), COUNT(*) "
                                            "FROM devices d LEFT JOIN latest s "
                                            "ON s.device_id = d.device_id AND s.n = 1 GROUP BY 1"));
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < rows.size(); ++i) counts[rows.Text(i, 0)] = rows.Int(i, 1);
  return counts;
}

}  // namespace flotilla::tracker
