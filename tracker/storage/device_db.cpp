#include "tracker/storage/device_db.h"

#include <openssl/rand.h>

#include "core/bytes.h"
#include "core/digest.h"
#include "tracker/storage/identity_store.h"

namespace flotilla::tracker {

// The schema, one numbered step per change (docs/tracker.md). Version 1 is
// what 0.1.0 created; SQLite keeps its exact text, PostgreSQL gets 64-bit
// integers and byte-order ("C") collation for the text it sorts, so both
// engines answer alike.
const std::vector<SqlMigration>& TrackerMigrations() {
  static const std::vector<SqlMigration> migrations = {
      {1,
       R"sql(
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
)sql",
       R"sql(
CREATE TABLE devices(
  device_id TEXT PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  site TEXT NOT NULL DEFAULT '',
  credential_sha256 TEXT NOT NULL UNIQUE,
  passkey_sha256 TEXT NOT NULL UNIQUE,
  enrolled_at BIGINT NOT NULL);
CREATE TABLE device_status(
  device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
  app TEXT COLLATE "C" NOT NULL,
  release TEXT COLLATE "C" NOT NULL,
  state TEXT NOT NULL,
  progress_done BIGINT NOT NULL,
  progress_total BIGINT NOT NULL,
  bytes_from_peers BIGINT NOT NULL,
  bytes_from_origin BIGINT NOT NULL,
  health TEXT NOT NULL,
  reported_at BIGINT NOT NULL);
CREATE TABLE failures(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  app TEXT NOT NULL,
  release TEXT NOT NULL,
  message TEXT NOT NULL,
  at BIGINT NOT NULL);
CREATE TABLE releases(
  app TEXT COLLATE "C" NOT NULL,
  release TEXT COLLATE "C" NOT NULL,
  published_at BIGINT NOT NULL,
  PRIMARY KEY(app, release));
)sql"},
      // The fleet model (docs/fleet.md): device tags, groups and their
      // selectors, app assignments, pins, recalls.
      {2,
       R"sql(
CREATE TABLE device_tags(
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  tag TEXT NOT NULL,
  PRIMARY KEY(device_id, tag));
CREATE TABLE fleet_groups(
  name TEXT PRIMARY KEY,
  selector TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE app_assignments(
  group_name TEXT NOT NULL REFERENCES fleet_groups(name),
  app TEXT NOT NULL,
  PRIMARY KEY(group_name, app));
CREATE TABLE device_pins(
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  app TEXT NOT NULL,
  release INTEGER NOT NULL,
  PRIMARY KEY(device_id, app));
CREATE TABLE group_pins(
  group_name TEXT NOT NULL REFERENCES fleet_groups(name),
  app TEXT NOT NULL,
  release INTEGER NOT NULL,
  PRIMARY KEY(group_name, app));
CREATE TABLE recalls(
  app TEXT NOT NULL,
  release INTEGER NOT NULL,
  recalled_at INTEGER NOT NULL,
  PRIMARY KEY(app, release));
)sql",
       R"sql(
CREATE TABLE device_tags(
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  tag TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY(device_id, tag));
CREATE TABLE fleet_groups(
  name TEXT COLLATE "C" PRIMARY KEY,
  selector TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE app_assignments(
  group_name TEXT COLLATE "C" NOT NULL REFERENCES fleet_groups(name),
  app TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY(group_name, app));
CREATE TABLE device_pins(
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  app TEXT COLLATE "C" NOT NULL,
  release BIGINT NOT NULL,
  PRIMARY KEY(device_id, app));
CREATE TABLE group_pins(
  group_name TEXT COLLATE "C" NOT NULL REFERENCES fleet_groups(name),
  app TEXT COLLATE "C" NOT NULL,
  release BIGINT NOT NULL,
  PRIMARY KEY(group_name, app));
CREATE TABLE recalls(
  app TEXT COLLATE "C" NOT NULL,
  release BIGINT NOT NULL,
  recalled_at BIGINT NOT NULL,
  PRIMARY KEY(app, release));
)sql"},
      // Replicas: the signing lease, the metadata versions published under
      // it, and each device's last stored report sequence number
      // (signing_lease.h, DeviceDb::RecordReport).
      {3,
       R"sql(
CREATE TABLE signing_lease(
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL);
CREATE TABLE metadata_versions(
  role TEXT NOT NULL,
  version INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  published_at INTEGER NOT NULL,
  PRIMARY KEY(role, version));
CREATE TABLE report_sequence(
  device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
  last_seq INTEGER NOT NULL);
)sql",
       R"sql(
CREATE TABLE signing_lease(
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL);
CREATE TABLE metadata_versions(
  role TEXT NOT NULL,
  version BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  published_at BIGINT NOT NULL,
  PRIMARY KEY(role, version));
CREATE TABLE report_sequence(
  device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
  last_seq BIGINT NOT NULL);
)sql"},
      // Rollouts (docs/fleet.md, "Rollouts"): each rollout and the wave of
      // each of its devices, with what the device's reports showed of it.
      {4,
       R"sql(
CREATE TABLE rollouts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app TEXT NOT NULL,
  release INTEGER NOT NULL,
  group_name TEXT NOT NULL,
  waves TEXT NOT NULL,
  soak_s INTEGER NOT NULL,
  max_failures INTEGER NOT NULL,
  wave_timeout_s INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  current_wave INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  wave_started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE TABLE rollout_devices(
  rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  wave INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  healthy_since INTEGER NOT NULL,
  failure TEXT NOT NULL,
  last_report_at INTEGER NOT NULL,
  PRIMARY KEY(rollout_id, device_id));
)sql",
       R"sql(
CREATE TABLE rollouts(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  app TEXT COLLATE "C" NOT NULL,
  release BIGINT NOT NULL,
  group_name TEXT COLLATE "C" NOT NULL,
  waves TEXT NOT NULL,
  soak_s BIGINT NOT NULL,
  max_failures BIGINT NOT NULL,
  wave_timeout_s BIGINT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  current_wave BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  wave_started_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL);
CREATE TABLE rollout_devices(
  rollout_id BIGINT NOT NULL REFERENCES rollouts(id),
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(device_id),
  wave BIGINT NOT NULL,
  sent_at BIGINT NOT NULL,
  healthy_since BIGINT NOT NULL,
  failure TEXT NOT NULL,
  last_report_at BIGINT NOT NULL,
  PRIMARY KEY(rollout_id, device_id));
)sql"},
      // Maintenance windows (docs/fleet.md, "Maintenance windows"): a
      // group's windows in the order they were added; days a bit set (bit 0
      // Monday), from/to minutes after local midnight, an IANA zone.
      {5,
       R"sql(
CREATE TABLE group_windows(
  group_name TEXT NOT NULL REFERENCES fleet_groups(name),
  position INTEGER NOT NULL,
  days INTEGER NOT NULL,
  from_minute INTEGER NOT NULL,
  to_minute INTEGER NOT NULL,
  zone TEXT NOT NULL,
  PRIMARY KEY(group_name, position));
)sql",
       R"sql(
CREATE TABLE group_windows(
  group_name TEXT COLLATE "C" NOT NULL REFERENCES fleet_groups(name),
  position BIGINT NOT NULL,
  days BIGINT NOT NULL,
  from_minute BIGINT NOT NULL,
  to_minute BIGINT NOT NULL,
  zone TEXT NOT NULL,
  PRIMARY KEY(group_name, position));
)sql"},
      // Notifications (docs/fleet.md, "Notifications"): the webhook outbox.
      // An event is written in the transaction of the change it tells of,
      // with the exact body every delivery sends; each webhook URL's
      // attempts at it. dedup_key (NULL: none) makes an event that must be
      // told once (a wave's stall) a no-op the second time.
      {6,
       R"sql(
CREATE TABLE webhook_events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  event TEXT NOT NULL,
  dedup_key TEXT UNIQUE,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE webhook_deliveries(
  event_seq INTEGER NOT NULL REFERENCES webhook_events(id),
  url TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(event_seq, url));
)sql",
       R"sql(
CREATE TABLE webhook_events(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id TEXT COLLATE "C" NOT NULL UNIQUE,
  event TEXT COLLATE "C" NOT NULL,
  dedup_key TEXT COLLATE "C" UNIQUE,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE webhook_deliveries(
  event_seq BIGINT NOT NULL REFERENCES webhook_events(id),
  url TEXT COLLATE "C" NOT NULL,
  state TEXT NOT NULL,
  attempts BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  last_error TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY(event_seq, url));
)sql"},
      // Failure kinds (docs/tracker.md, the report's `failure`): what kind
      // of failure the device's latest report named; '' for none.
      {7, "ALTER TABLE device_status ADD COLUMN failure TEXT NOT NULL DEFAULT '';",
       "ALTER TABLE device_status ADD COLUMN failure TEXT NOT NULL DEFAULT '';"},
      // Device identity (docs/identity.md): each device's bound key, its
      // newest accepted signed statement, an operator's approval of a
      // replacement, the token that admitted it; batch enrolment tokens.
      {8,
       R"sql(
ALTER TABLE devices ADD COLUMN public_key TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN signed_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN replace_approved_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN enrol_token TEXT NOT NULL DEFAULT '';
CREATE TABLE enrol_tokens(
  name TEXT PRIMARY KEY,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  max_uses INTEGER NOT NULL,
  uses INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL);
)sql",
       R"sql(
ALTER TABLE devices ADD COLUMN public_key TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN signed_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN replace_approved_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN enrol_token TEXT NOT NULL DEFAULT '';
CREATE TABLE enrol_tokens(
  name TEXT COLLATE "C" PRIMARY KEY,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  max_uses BIGINT NOT NULL,
  uses BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL);
)sql"},
      // Operators (docs/operators.md): accounts with a role and a password
      // hash, their API tokens and dashboard sessions (secrets as SHA-256),
      // and the audit log.
      {9,
       R"sql(
CREATE TABLE operators(
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE operator_tokens(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  operator TEXT NOT NULL REFERENCES operators(name),
  label TEXT NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL);
CREATE TABLE operator_sessions(
  session_sha256 TEXT PRIMARY KEY,
  operator TEXT NOT NULL REFERENCES operators(name),
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL);
CREATE TABLE audit_log(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL,
  outcome TEXT NOT NULL);
CREATE INDEX audit_log_at ON audit_log(at);
)sql",
       R"sql(
CREATE TABLE operators(
  name TEXT COLLATE "C" PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  disabled BIGINT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE operator_tokens(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  operator TEXT COLLATE "C" NOT NULL REFERENCES operators(name),
  label TEXT NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL);
CREATE TABLE operator_sessions(
  session_sha256 TEXT PRIMARY KEY,
  operator TEXT COLLATE "C" NOT NULL REFERENCES operators(name),
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL);
CREATE TABLE audit_log(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT COLLATE "C" NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL,
  outcome TEXT NOT NULL);
CREATE INDEX audit_log_at ON audit_log(at);
)sql"},
      // Decommissioned devices (docs/identity.md, "Decommission"): the key
      // and name of each device taken out of the fleet. The key never
      // enrols again; the name waits for an operator's approval.
      {10,
       R"sql(
CREATE TABLE decommissioned_devices(
  device_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  public_key TEXT NOT NULL,
  decommissioned_at INTEGER NOT NULL,
  name_released_at INTEGER NOT NULL);
CREATE INDEX decommissioned_devices_name ON decommissioned_devices(name);
)sql",
       R"sql(
CREATE TABLE decommissioned_devices(
  device_id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL,
  public_key TEXT NOT NULL,
  decommissioned_at BIGINT NOT NULL,
  name_released_at BIGINT NOT NULL);
CREATE INDEX decommissioned_devices_name ON decommissioned_devices(name);
)sql"},
      // Per-device configuration (docs/config.md, "Storage"): values at the
      // fleet ('' app), app, site, group and device (its id) levels.
      {11,
       R"sql(
CREATE TABLE config_values(
  app TEXT NOT NULL,
  level TEXT NOT NULL,
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(app, level, scope, name));
)sql",
       R"sql(
CREATE TABLE config_values(
  app TEXT COLLATE "C" NOT NULL,
  level TEXT COLLATE "C" NOT NULL,
  scope TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY(app, level, scope, name));
)sql"},
      // Remote log requests (docs/logs.md): an operator's request for one
      // app's log of one device, and the device's newest upload for it.
      {12,
       R"sql(
CREATE TABLE log_requests(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id TEXT NOT NULL,
  app TEXT NOT NULL,
  since_s INTEGER NOT NULL,
  requested_by TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  uploaded_at INTEGER NOT NULL,
  log TEXT NOT NULL);
CREATE INDEX log_requests_device ON log_requests(device_id, uploaded_at);
CREATE INDEX log_requests_expires ON log_requests(expires_at);
)sql",
       R"sql(
CREATE TABLE log_requests(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id TEXT COLLATE "C" NOT NULL,
  app TEXT COLLATE "C" NOT NULL,
  since_s BIGINT NOT NULL,
  requested_by TEXT COLLATE "C" NOT NULL,
  requested_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  uploaded_at BIGINT NOT NULL,
  log TEXT NOT NULL);
CREATE INDEX log_requests_device ON log_requests(device_id, uploaded_at);
CREATE INDEX log_requests_expires ON log_requests(expires_at);
)sql"},
      // Secrets (docs/config.md, "Secrets"): per device, the value sealed
      // to its key; never the value itself.
      {13,
       R"sql(
CREATE TABLE secret_boxes(
  app TEXT NOT NULL,
  level TEXT NOT NULL,
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  device_id TEXT NOT NULL,
  public_key TEXT NOT NULL,
  box TEXT NOT NULL,
  sealed_at INTEGER NOT NULL,
  PRIMARY KEY(app, level, scope, name, device_id));
CREATE INDEX secret_boxes_device ON secret_boxes(device_id);
)sql",
       R"sql(
CREATE TABLE secret_boxes(
  app TEXT COLLATE "C" NOT NULL,
  level TEXT COLLATE "C" NOT NULL,
  scope TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  device_id TEXT COLLATE "C" NOT NULL,
  public_key TEXT COLLATE "C" NOT NULL,
  box TEXT NOT NULL,
  sealed_at BIGINT NOT NULL,
  PRIMARY KEY(app, level, scope, name, device_id));
CREATE INDEX secret_boxes_device ON secret_boxes(device_id);
)sql"},
      // A status per (device, app) (docs/tracker.md, "Version 14"): a device
      // following several apps (its apps and its agent app) keeps the latest
      // report of each. The one row each device had is kept as its app's.
      // SQLite cannot change a primary key: the table is copied into its new
      // form, with the same columns in the same order.
      {14,
       R"sql(
CREATE TABLE device_status_by_app(
  device_id TEXT NOT NULL REFERENCES devices(device_id),
  app TEXT NOT NULL,
  release TEXT NOT NULL,
  state TEXT NOT NULL,
  progress_done INTEGER NOT NULL,
  progress_total INTEGER NOT NULL,
  bytes_from_peers INTEGER NOT NULL,
  bytes_from_origin INTEGER NOT NULL,
  health TEXT NOT NULL,
  reported_at INTEGER NOT NULL,
  failure TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(device_id, app));
INSERT INTO device_status_by_app SELECT device_id, app, release, state, progress_done,
  progress_total, bytes_from_peers, bytes_from_origin, health, reported_at, failure
  FROM device_status;
DROP TABLE device_status;
ALTER TABLE device_status_by_app RENAME TO device_status;
)sql",
       R"sql(
ALTER TABLE device_status DROP CONSTRAINT device_status_pkey;
ALTER TABLE device_status ADD PRIMARY KEY(device_id, app);
)sql"},
  };
  return migrations;
}

Status MigrateTrackerSchema(SqlEngine& engine) {
  return MigrateSchema(engine, TrackerMigrations());
}

std::string HashSecret(std::string_view secret) { return Digest::Of(secret).Hex(); }

Result<std::string> RandomHex(size_t bytes) {
  Bytes buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    return Internal("the system random generator failed");
  }
  return HexEncode(buf);
}

Result<std::unique_ptr<DeviceDb>> DeviceDb::Open(const std::string& url, const Clock& clock) {
  const std::string redacted = RedactDatabaseUrl(url);
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateSchema(*engine, TrackerMigrations()), "open " + redacted);
  std::unique_ptr<DeviceDb> db(new DeviceDb(std::move(engine), clock));
  RETURN_IF_ERROR_CTX(db->LoadSecrets(), "open " + redacted);
  return db;
}

Status DeviceDb::LoadSecrets() {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT device_id, name, site, credential_sha256, "
                                            "passkey_sha256 FROM devices"));
  by_credential_hash_.clear();
  by_passkey_hash_.clear();
  const MonoTime now = clock_.MonotonicNow();
  for (size_t i = 0; i < rows.size(); ++i) {
    DeviceIdentity id{rows.Text(i, 0), rows.Text(i, 1), rows.Text(i, 2)};
    by_credential_hash_[rows.Text(i, 3)] = {id, now};
    by_passkey_hash_[rows.Text(i, 4)] = {id, now};
  }
  return Status::Ok();
}

int64_t DeviceDb::NowSeconds() const { return UnixSeconds(clock_); }

Result<DeviceCredentials> DeviceDb::Enroll(std::string_view name, std::string_view site,
                                           const std::vector<std::string>& tags,
                                           const std::optional<EnrolAdmission>& admission) {
  DeviceCredentials e;
  ASSIGN_OR_RETURN(e.device_id, RandomHex(8));
  e.device_id = "dev-" + e.device_id;
  ASSIGN_OR_RETURN(e.credential, RandomHex(32));
  ASSIGN_OR_RETURN(e.passkey, RandomHex(32));
  const std::string credential_hash = HashSecret(e.credential);
  const std::string passkey_hash = HashSecret(e.passkey);
  const int64_t now = NowSeconds();
  // A re-enrolled name's old secrets leave the caches below; the rest of the
  // fleet's entries stay (rereading every device made an enrolment cost
  // O(fleet): 0.7 s of CPU at 100,000 devices).
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  // The name's row, locked on PostgreSQL until the commit (SQLite's
  // transaction holds the one writer lock already): two requests for one
  // name are decided one after the other.
  const std::string lock = db_->kind() == SqlEngineKind::kPostgresql ? " FOR UPDATE" : "";
  ASSIGN_OR_RETURN(SqlRows old_secrets,
                   db_->Query("SELECT credential_sha256, passkey_sha256, public_key, signed_at_ms, "
                              "replace_approved_until, enrol_token FROM devices WHERE name = ?" +
                                  lock,
                              {name}));
  std::string public_key = old_secrets.empty() ? "" : old_secrets.Text(0, 2);
  int64_t signed_at_ms = old_secrets.empty() ? 0 : old_secrets.Int(0, 3);
  std::string token_name = old_secrets.empty() ? "" : old_secrets.Text(0, 5);
  if (admission) {
    ASSIGN_OR_RETURN(EnrolDecision decision,
                     AdmitEnrolment(*db_, name, *admission, now,
                                    old_secrets.empty() ? std::optional<BoundIdentity>()
                                                        : BoundIdentity{old_secrets.Text(0, 2),
                                                                        old_secrets.Int(0, 3),
                                                                        old_secrets.Int(0, 4)}));
    if (decision.bind_key) public_key = admission->public_key;
    if (decision.bind_key || !admission->public_key.empty()) signed_at_ms = admission->signed_at_ms;
    if (decision.token_used) token_name = decision.token_name;
  }
  // A new name taken by a request committed since the SELECT above (another
  // replica) is not overwritten when admission rules apply.
  const std::string on_conflict = admission && old_secrets.empty()
                                      ? "ON CONFLICT(name) DO NOTHING "
                                      : "ON CONFLICT(name) DO UPDATE SET site = excluded.site, "
                                        "credential_sha256 = excluded.credential_sha256, "
                                        "passkey_sha256 = excluded.passkey_sha256, "
                                        "enrolled_at = excluded.enrolled_at, "
                                        "public_key = excluded.public_key, "
                                        "signed_at_ms = excluded.signed_at_ms, "
                                        "replace_approved_until = 0, "
                                        "enrol_token = excluded.enrol_token ";
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db_->Query("INSERT INTO devices(device_id, name, site, credential_sha256, "
                 "passkey_sha256, enrolled_at, public_key, signed_at_ms, replace_approved_until, "
                 "enrol_token) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 0, ?) " +
                     on_conflict + "RETURNING device_id",
                 {e.device_id, name, site, credential_hash, passkey_hash, now, public_key,
                  signed_at_ms, token_name}));
  if (rows.empty()) {
    return AlreadyExists("device name '" + std::string(name) +
                         "' was enrolled by another request at the same moment");
  }
  e.device_id = rows.Text(0, 0);
  // A key replaced (an approved replacement, or no key any more): the
  // secrets sealed to the old one are no use to the new device and must not
  // be offered to it (docs/config.md, "Secrets").
  RETURN_IF_ERROR(db_->Query("DELETE FROM secret_boxes WHERE device_id = ? AND public_key <> ?",
                             {e.device_id, public_key})
                      .status());
  // A re-enrolled device (a node whose state was wiped) counts reports from 1 again.
  RETURN_IF_ERROR(
      db_->Query("DELETE FROM report_sequence WHERE device_id = ?", {e.device_id}).status());
  if (old_secrets.empty()) {
    for (const std::string& tag : tags) {
      RETURN_IF_ERROR(db_->Query("INSERT INTO device_tags(device_id, tag) VALUES(?, ?) "
                                 "ON CONFLICT DO NOTHING",
                                 {e.device_id, tag})
                          .status());
    }
  }
  RETURN_IF_ERROR(transaction.Commit());
  for (size_t i = 0; i < old_secrets.size(); ++i) {
    by_credential_hash_.erase(old_secrets.Text(i, 0));
    by_passkey_hash_.erase(old_secrets.Text(i, 1));
  }
  const DeviceIdentity identity{e.device_id, std::string(name), std::string(site)};
  const MonoTime mono_now = clock_.MonotonicNow();
  by_credential_hash_[credential_hash] = {identity, mono_now};
  by_passkey_hash_[passkey_hash] = {identity, mono_now};
  return e;
}

Status DeviceDb::BindKey(const std::string& device_id, const std::string& public_key,
                         int64_t signed_at_ms) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows retired,
                   db_->Query("SELECT 1 FROM decommissioned_devices WHERE public_key = ? LIMIT 1",
                              {public_key}));
  if (!retired.empty()) return PermissionDenied("this key was decommissioned: it binds no device");
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT public_key FROM devices WHERE device_id = ?", {device_id}));
  if (rows.empty()) return NotFound("device " + device_id + " is not enrolled");
  const std::string bound = rows.Text(0, 0);
  if (bound == public_key) return Status::Ok();  // a retry whose answer was lost
  if (!bound.empty()) {
    return AlreadyExists(
        "the device is bound to another key: an operator's `device approve` "
        "and a new enrolment replace it");
  }
  RETURN_IF_ERROR(db_->Query("UPDATE devices SET public_key = ?, signed_at_ms = ? WHERE "
                             "device_id = ? AND public_key = ''",
                             {public_key, signed_at_ms, device_id})
                      .status());
  return transaction.Commit();
}

Result<bool> DeviceDb::IsEnrolToken(std::string_view token_sha256) const {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT 1 FROM enrol_tokens WHERE token_sha256 = ?", {token_sha256}));
  return !rows.empty();
}

Result<DeviceIdentity> DeviceDb::LookUpSecret(const char* column, const std::string& hash,
                                              SecretCache& cache) const {
  const MonoTime now = clock_.MonotonicNow();
  auto it = cache.find(hash);
  if (it != cache.end() && now - it->second.checked < kSecretRecheck) return it->second.identity;
  // `column` is one of two constants of this file, never input.
  auto rows = db_->Query(
      std::string("SELECT device_id, name, site FROM devices WHERE ") + column + " = ?", {hash});
  if (!rows.ok()) {  // a database outage: known devices go on (announces need no database)
    if (it != cache.end()) return it->second.identity;
    return rows.status();
  }
  if (rows->empty()) {
    if (it != cache.end()) cache.erase(it);
    return PermissionDenied("unknown secret");
  }
  DeviceIdentity id{rows->Text(0, 0), rows->Text(0, 1), rows->Text(0, 2)};
  cache[hash] = {id, now};
  return id;
}

Result<DeviceIdentity> DeviceDb::AuthenticateCredential(std::string_view credential) const {
  auto id = LookUpSecret("credential_sha256", HashSecret(credential), by_credential_hash_);
  if (id.status().code() == StatusCode::kPermissionDenied) {
    return PermissionDenied("unknown device credential");
  }
  return id;
}

Result<DeviceIdentity> DeviceDb::AuthenticatePasskey(std::string_view passkey) const {
  auto id = LookUpSecret("passkey_sha256", HashSecret(passkey), by_passkey_hash_);
  if (id.status().code() == StatusCode::kPermissionDenied)
    return PermissionDenied("unknown passkey");
  return id;
}

Status DeviceDb::RecordRelease(std::string_view app, std::string_view release) {
  return db_
      ->Query(
          "INSERT INTO releases(app, release, published_at) VALUES(?, ?, ?) "
          "ON CONFLICT DO NOTHING",
          {app, release, NowSeconds()})
      .status();
}

}  // namespace flotilla::tracker
