// Enrolled devices, their latest reports, recent failures and published
// releases, in one SQL database: a SQLite file (the default) or PostgreSQL,
// through SqlEngine. Schema and migrations: docs/tracker.md.
//
// Credentials and passkeys are 256-bit random secrets handed out once at
// enrolment; only their SHA-256 is stored, so a copy of the database does not
// let anyone act as a device. Passkey and credential lookups are served from
// an in-memory map of those hashes (the announce path must not hit the disk
// for a known device): a hash the map does not hold is looked up in the
// database (a device enrolled through another replica), and an entry is
// checked against the database again once it is kSecretRecheck old (secrets
// replaced by a re-enrolment through another replica stop working then; while
// the database is unreachable, cached entries go on being served).
// Not thread-safe: the server calls it from its one network thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/api/device_report.h"
#include "tracker/api/enrolment.h"
#include "tracker/api/fleet.h"
#include "tracker/storage/identity_store.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

class DeviceDb {
 public:
  // Opens the database `url` names (a SQLite path, sqlite:PATH or
  // postgresql://...; see SqlEngine::Open) and migrates its schema.
  static Result<std::unique_ptr<DeviceDb>> Open(const std::string& url, const Clock& clock);
  DeviceDb(const DeviceDb&) = delete;
  DeviceDb& operator=(const DeviceDb&) = delete;

  // Enrols `name` (re-enrolling an existing name keeps its id and replaces
  // its secrets); the secrets are returned once, and only their hashes kept.
  // announce_url is left empty (the service knows the public URL).
  // REQUIRES: name and site (if not empty) are valid labels.
  // `tags` are given to a device enrolled for the first time; one enrolled
  // before keeps the tags it has (an operator's, docs/fleet.md).
  // With `admission`, the rules of docs/identity.md decide in the same
  // transaction (identity_store.h, AdmitEnrolment): PermissionDenied for a
  // token refused or a replayed statement, AlreadyExists for a name taken.
  // Without, the caller admitted the enrolment (tests, tools): no token is
  // checked and the bound key stays.
  Result<DeviceCredentials> Enroll(std::string_view name, std::string_view site,
                                   const std::vector<std::string>& tags = {},
                                   const std::optional<EnrolAdmission>& admission = {});

  // Binds `public_key` to the device enrolled without one (docs/identity.md,
  // "Binding a key by credential"), recording `signed_at_ms` as its newest
  // statement. OK when bound now or already bound to this key (a retry);
  // AlreadyExists when bound to another key; PermissionDenied for a key
  // decommissioned before; NotFound for an unknown device.
  Status BindKey(const std::string& device_id, const std::string& public_key, int64_t signed_at_ms);

  // Whether `token_sha256` is the hash of a batch token this database ever
  // issued (active or not): the service refuses any other token before it
  // spends the enrolment rate on it.
  Result<bool> IsEnrolToken(std::string_view token_sha256) const;

  // NotFound-free by design: an unknown secret is PermissionDenied.
  Result<DeviceIdentity> AuthenticateCredential(std::string_view credential) const;
  Result<DeviceIdentity> AuthenticatePasskey(std::string_view passkey) const;

  // Replaces the device's latest status and appends its errors to failures.
  // NotFound for a device not enrolled (decommissioned since its secret was
  // cached: its cached secrets are forgotten).
  // A report with a sequence number (report.seq != 0) is stored only when
  // the number is above the last one stored for the device; otherwise it is
  // a report sent again (or overtaken by a newer one) and nothing changes.
  // Either way the answer is OK: the device's report has been stored.
  Status RecordReport(const std::string& device_id, const DeviceReport& report);

  // Called by publish when a release becomes visible to devices.
  Status RecordRelease(std::string_view app, std::string_view release);

  size_t device_count() const { return by_credential_hash_.size(); }

  static constexpr Duration kSecretRecheck = std::chrono::seconds(60);

  // The devices of `page` (every device by default) with their latest
  // reports, the releases, the `max_failures` newest failures and the
  // fleet's totals (devices, bytes); no desired release and no rollout
  // (the fleet model adds them: tracker/fleet/fleet_view.h).
  Result<FleetSnapshot> Snapshot(int max_failures, DevicePage page = {}) const;
  // OK when the database answers a query now (the readiness a load balancer
  // checks); the engine's error otherwise.
  Status Ping() const;
  // Number of devices per reported state; devices that never reported are "enrolled".
  Result<std::map<std::string, int64_t>> DevicesPerState() const;

 private:
  DeviceDb(std::unique_ptr<SqlEngine> db, const Clock& clock) : db_(std::move(db)), clock_(clock) {}
  struct CachedIdentity {
    DeviceIdentity identity;
    MonoTime checked;
  };
  using SecretCache = std::map<std::string, CachedIdentity>;
  Status LoadSecrets();
  // Drops the cached secrets of `device_id`.
  void ForgetDevice(const std::string& device_id) const;
  int64_t NowSeconds() const;
  // The device whose `column` holds `hash`: from `cache` while fresh, else
  // from the database (and cached); PermissionDenied when none.
  Result<DeviceIdentity> LookUpSecret(const char* column, const std::string& hash,
                                      SecretCache& cache) const;

  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  mutable SecretCache by_credential_hash_;
  mutable SecretCache by_passkey_hash_;
};

// The tracker's schema steps, oldest first (docs/tracker.md, "Schema
// versions"); tests migrate a database part of the way with a prefix.
const std::vector<SqlMigration>& TrackerMigrations();

// Brings `engine`'s database to the tracker's newest schema (what
// DeviceDb::Open does first), for the other stores over the same database.
Status MigrateTrackerSchema(SqlEngine& engine);

// Hex SHA-256 of a secret, as stored.
std::string HashSecret(std::string_view secret);
// `bytes` random bytes from the OS CSPRNG, hex-encoded.
Result<std::string> RandomHex(size_t bytes);

}  // namespace flotilla::tracker
