// DeviceDb: writing reports and reading the fleet for the dashboard and metrics.
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

// Failures kept in the database; older ones are deleted as new ones arrive.
constexpr int64_t kMaxStoredFailures = 1000;

Status UpsertStatus(SqliteDb& db, const std::string& device_id, const DeviceReport& r,
                    int64_t now) {
  auto stmt = db.Prepare(
      "INSERT OR REPLACE INTO device_status(device_id, app, release, state, "
      "progress_done, progress_total, bytes_from_peers, bytes_from_origin, "
      "health, reported_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(device_id).Bind(r.app).Bind(r.release).Bind(r.state);
  stmt.Bind(static_cast<int64_t>(r.progress_done)).Bind(static_cast<int64_t>(r.progress_total));
  stmt.Bind(static_cast<int64_t>(r.bytes_from_peers));
  stmt.Bind(static_cast<int64_t>(r.bytes_from_origin)).Bind(r.health).Bind(now);
  return stmt.Run();
}

Status AppendFailures(SqliteDb& db, const std::string& device_id, const DeviceReport& r,
                      int64_t now, int64_t keep) {
  for (const auto& message : r.errors) {
    auto stmt = db.Prepare(
        "INSERT INTO failures(device_id, app, release, message, "
        "at) VALUES(?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(stmt.Bind(device_id).Bind(r.app).Bind(r.release).Bind(message).Bind(now).Run());
  }
  if (r.errors.empty()) return Status::Ok();
  auto trim = db.Prepare(
      "DELETE FROM failures WHERE id <= "
      "(SELECT MAX(id) FROM failures) - ?");
  return trim.Bind(keep).Run();
}

Result<std::vector<DeviceRow>> ReadDevices(SqliteDb& db) {
  auto stmt = db.Prepare(
      "SELECT d.device_id, d.name, d.site, d.enrolled_at, s.device_id IS NOT NULL, "
      "s.app, s.release, s.state, s.progress_done, s.progress_total, s.bytes_from_peers, "
      "s.bytes_from_origin, s.health, COALESCE(s.reported_at, 0) "
      "FROM devices d LEFT JOIN device_status s ON s.device_id = d.device_id "
      "ORDER BY d.name");
  std::vector<DeviceRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool more, stmt.Step());
    if (!more) return rows;
    DeviceRow row;
    row.identity = {stmt.Text(0), stmt.Text(1), stmt.Text(2)};
    row.enrolled_at = stmt.Int(3);
    row.reported = stmt.Int(4) != 0;
    row.report.app = stmt.Text(5);
    row.report.release = stmt.Text(6);
    row.report.state = row.reported ? stmt.Text(7) : "enrolled";
    row.report.progress_done = static_cast<uint64_t>(stmt.Int(8));
    row.report.progress_total = static_cast<uint64_t>(stmt.Int(9));
    row.report.bytes_from_peers = static_cast<uint64_t>(stmt.Int(10));
    row.report.bytes_from_origin = static_cast<uint64_t>(stmt.Int(11));
    row.report.health = stmt.Text(12);
    row.last_seen = stmt.Int(13);
    rows.push_back(std::move(row));
  }
}

Result<std::vector<ReleaseRow>> ReadReleases(SqliteDb& db) {
  auto stmt = db.Prepare(
      "WITH known(app, release, published_at) AS ("
      "  SELECT app, release, published_at FROM releases"
      "  UNION ALL SELECT app, release, 0 FROM device_status WHERE app != '' AND release != ''"
      ") SELECT k.app, k.release, MAX(k.published_at), "
      "  (SELECT COUNT(*) FROM device_status s WHERE s.app = k.app AND s.release = k.release) "
      "FROM known k GROUP BY k.app, k.release ORDER BY k.app, MAX(k.published_at) DESC, "
      "k.release DESC");
  std::vector<ReleaseRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool more, stmt.Step());
    if (!more) return rows;
    rows.push_back({stmt.Text(0), stmt.Text(1), stmt.Int(2), stmt.Int(3)});
  }
}

Result<std::vector<FailureRow>> ReadFailures(SqliteDb& db, int limit) {
  auto stmt = db.Prepare(
      "SELECT d.name, f.app, f.release, f.message, f.at FROM failures f "
      "JOIN devices d ON d.device_id = f.device_id ORDER BY f.id DESC LIMIT ?");
  stmt.Bind(int64_t{limit});
  std::vector<FailureRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool more, stmt.Step());
    if (!more) return rows;
    rows.push_back({stmt.Text(0), stmt.Text(1), stmt.Text(2), stmt.Text(3), stmt.Int(4)});
  }
}

}  // namespace

Status DeviceDb::RecordReport(const std::string& device_id, const DeviceReport& report) {
  ASSIGN_OR_RETURN(SqliteTransaction transaction, SqliteTransaction::Begin(*db_));
  const int64_t now = NowSeconds();
  RETURN_IF_ERROR(UpsertStatus(*db_, device_id, report, now).WithContext("record report"));
  RETURN_IF_ERROR(AppendFailures(*db_, device_id, report, now, kMaxStoredFailures)
                      .WithContext("record report"));
  return transaction.Commit();
}

Result<FleetSnapshot> DeviceDb::Snapshot(int max_failures) const {
  FleetSnapshot snap;
  ASSIGN_OR_RETURN(snap.devices, ReadDevices(*db_));
  ASSIGN_OR_RETURN(snap.releases, ReadReleases(*db_));
  ASSIGN_OR_RETURN(snap.failures, ReadFailures(*db_, max_failures));
  for (const auto& d : snap.devices) {
    snap.bytes_from_peers += d.report.bytes_from_peers;
    snap.bytes_from_origin += d.report.bytes_from_origin;
  }
  return snap;
}

Result<std::map<std::string, int64_t>> DeviceDb::DevicesPerState() const {
  auto stmt = db_->Prepare(
      "SELECT COALESCE(s.state, 'enrolled'), COUNT(*) "
      "FROM devices d LEFT JOIN device_status s "
      "ON s.device_id = d.device_id GROUP BY 1");
  std::map<std::string, int64_t> counts;
  while (true) {
    ASSIGN_OR_RETURN(bool more, stmt.Step());
    if (!more) return counts;
    counts[stmt.Text(0)] = stmt.Int(1);
  }
}

}  // namespace flotilla::tracker
