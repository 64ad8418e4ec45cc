#include "tracker/storage/device_db.h"

#include <openssl/rand.h>

#include "core/bytes.h"
#include "core/digest.h"

namespace flotilla::tracker {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE devices(
  device_id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  site TEXT NOT NULL DEFAULT '',
  credential_sha256 TEXT NOT NULL UNIQUE,
  passkey_sha256 TEXT NOT NULL UNIQUE,
  enrolled_at INTEGER NOT NULL);
CREATE TABLE device_status(
  device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
  app TEXT NOT NULL,
  release TEXT NOT NULL,
  state TEXT NOT NULL,
  progress_done INTEGER NOT NULL,
  progress_total INTEGER NOT NULL,
  bytes_from_peers INTEGER NOT NULL,
  bytes_from_origin INTEGER NOT NULL,
  health TEXT NOT NULL,
  reported_at INTEGER NOT NULL);
CREATE TABLE failures(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  app TEXT NOT NULL,
  release TEXT NOT NULL,
  message TEXT NOT NULL,
  at INTEGER NOT NULL);
CREATE TABLE releases(
  app TEXT NOT NULL,
  release TEXT NOT NULL,
  published_at INTEGER NOT NULL,
  PRIMARY KEY(app, release));
PRAGMA user_version = 1;
)sql";

}  // namespace

std::string HashSecret(std::string_view secret) { return Digest::Of(secret).Hex(); }

Result<std::string> RandomHex(size_t bytes) {
  Bytes buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    return Internal("the system random generator failed");
  }
  return HexEncode(buf);
}

Result<std::unique_ptr<DeviceDb>> DeviceDb::Open(const std::string& path, const Clock& clock) {
  ASSIGN_OR_RETURN(auto sqlite, SqliteDb::Open(path));
  std::unique_ptr<DeviceDb> db(new DeviceDb(std::move(sqlite), clock));
  RETURN_IF_ERROR(db->Migrate().WithContext("open " + path));
  RETURN_IF_ERROR(db->LoadSecrets());
  return db;
}

Status DeviceDb::Migrate() {
  auto stmt = db_->Prepare("PRAGMA user_version");
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  const int64_t version = row ? stmt.Int(0) : 0;
  if (version == kSchemaVersion) return Status::Ok();
  if (version != 0) {
    return FailedPrecondition("database schema version " + std::to_string(version) +
                              " is not one this tracker knows");
  }
  ASSIGN_OR_RETURN(SqliteTransaction transaction, SqliteTransaction::Begin(*db_));
  RETURN_IF_ERROR(db_->Exec(kSchema));
  return transaction.Commit();
}

Status DeviceDb::LoadSecrets() {
  auto stmt = db_->Prepare(
      "SELECT device_id, name, site, credential_sha256, "
      "passkey_sha256 FROM devices");
  by_credential_hash_.clear();
  by_passkey_hash_.clear();
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Status::Ok();
    DeviceIdentity id{stmt.Text(0), stmt.Text(1), stmt.Text(2)};
    by_credential_hash_[stmt.Text(3)] = id;
    by_passkey_hash_[stmt.Text(4)] = id;
  }
}

int64_t DeviceDb::NowSeconds() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
}

Result<DeviceCredentials> DeviceDb::Enroll(std::string_view name, std::string_view site) {
  DeviceCredentials e;
  ASSIGN_OR_RETURN(e.device_id, RandomHex(8));
  e.device_id = "dev-" + e.device_id;
  ASSIGN_OR_RETURN(e.credential, RandomHex(32));
  ASSIGN_OR_RETURN(e.passkey, RandomHex(32));
  auto stmt = db_->Prepare(
      "INSERT INTO devices(device_id, name, site, credential_sha256, "
      "passkey_sha256, enrolled_at) VALUES(?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(name) DO UPDATE SET site = excluded.site, "
      "credential_sha256 = excluded.credential_sha256, "
      "passkey_sha256 = excluded.passkey_sha256, "
      "enrolled_at = excluded.enrolled_at "
      "RETURNING device_id");
  stmt.Bind(e.device_id).Bind(name).Bind(site).Bind(HashSecret(e.credential));
  stmt.Bind(HashSecret(e.passkey)).Bind(NowSeconds());
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Internal("enrol returned no device id");
  e.device_id = stmt.Text(0);
  RETURN_IF_ERROR(stmt.Run());
  RETURN_IF_ERROR(LoadSecrets());  // drops the replaced secrets of a re-enrolled device
  return e;
}

Result<DeviceIdentity> DeviceDb::AuthenticateCredential(std::string_view credential) const {
  auto it = by_credential_hash_.find(HashSecret(credential));
  if (it == by_credential_hash_.end()) return PermissionDenied("unknown device credential");
  return it->second;
}

Result<DeviceIdentity> DeviceDb::AuthenticatePasskey(std::string_view passkey) const {
  auto it = by_passkey_hash_.find(HashSecret(passkey));
  if (it == by_passkey_hash_.end()) return PermissionDenied("unknown passkey");
  return it->second;
}

Status DeviceDb::RecordRelease(std::string_view app, std::string_view release) {
  auto stmt = db_->Prepare(
      "INSERT OR IGNORE INTO releases(app, release, published_at) "
      "VALUES(?, ?, ?)");
  return stmt.Bind(app).Bind(release).Bind(NowSeconds()).Run();
}

}  // namespace flotilla::tracker
