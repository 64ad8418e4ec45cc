// Enrolled devices, their latest reports, recent failures and published
// releases, in one SQLite database (WAL). Schema: docs/tracker.md.
//
// Credentials and passkeys are 256-bit random secrets handed out once at
// enrolment; only their SHA-256 is stored, so a copy of the database does not
// let anyone act as a device. Passkey and credential lookups are served from
// an in-memory map of those hashes (the announce path must not hit the disk).
// Not thread-safe: the server calls it from its one network thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/storage/device_report.h"

namespace flotilla::tracker {

struct Enrolment {
  std::string device_id;
  std::string credential;  // secret: Authorization: Bearer <credential> for reports
  std::string passkey;     // secret: /announce/<passkey>
};

struct DeviceIdentity {
  std::string device_id;
  std::string name;
  std::string site;
};

struct DeviceRow {
  DeviceIdentity identity;
  int64_t enrolled_at = 0;  // unix seconds
  int64_t last_seen = 0;    // unix seconds of the last report, 0 if none
  bool reported = false;
  DeviceReport report;  // errors left empty; see FleetSnapshot::failures
};

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

struct FleetSnapshot {
  std::vector<DeviceRow> devices;
  std::vector<ReleaseRow> releases;
  std::vector<FailureRow> failures;  // newest first
  uint64_t bytes_from_peers = 0;     // sum of the devices' latest reports
  uint64_t bytes_from_origin = 0;
};

class DeviceDb {
 public:
  static Result<std::unique_ptr<DeviceDb>> Open(const std::string& path, const Clock& clock);
  ~DeviceDb();
  DeviceDb(const DeviceDb&) = delete;
  DeviceDb& operator=(const DeviceDb&) = delete;

  // Enrols `name` (re-enrolling an existing name keeps its id and replaces
  // its secrets). REQUIRES: name and site (if not empty) are valid labels.
  Result<Enrolment> Enroll(std::string_view name, std::string_view site);

  // NotFound-free by design: an unknown secret is PermissionDenied.
  Result<DeviceIdentity> AuthenticateCredential(std::string_view credential) const;
  Result<DeviceIdentity> AuthenticatePasskey(std::string_view passkey) const;

  // Replaces the device's latest status and appends its errors to failures.
  Status RecordReport(const std::string& device_id, const DeviceReport& report);

  // Called by publish when a release becomes visible to devices.
  Status RecordRelease(std::string_view app, std::string_view release);

  Result<FleetSnapshot> Snapshot(int max_failures) const;
  // Number of devices per reported state; devices that never reported are "enrolled".
  Result<std::map<std::string, int64_t>> DevicesPerState() const;

 private:
  DeviceDb(sqlite3* db, const Clock& clock) : db_(db), clock_(clock) {}
  Status Migrate();
  Status LoadSecrets();
  Status Exec(const char* sql);
  int64_t NowSeconds() const;

  sqlite3* db_;
  const Clock& clock_;
  std::map<std::string, DeviceIdentity> by_credential_hash_;
  std::map<std::string, DeviceIdentity> by_passkey_hash_;
};

// Hex SHA-256 of a secret, as stored.
std::string HashSecret(std::string_view secret);
// `bytes` random bytes from the OS CSPRNG, hex-encoded.
Result<std::string> RandomHex(size_t bytes);

}  // namespace flotilla::tracker
