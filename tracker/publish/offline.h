// Offline keys on the tracker (docs/signing.md): documents staged unsigned in
// <root>/pending/<V>.<percent-encoded role>.json, signed elsewhere
// (metadata::SignMetadataFile), and accepted back with the online keys only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/tuf_signing.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

inline constexpr Duration kDefaultOfflineExpiry = std::chrono::hours(24 * 365);

std::string PendingDir(const RepositoryLayout& repo);

// Writes `doc`, role `role`'s next version, as pending/<V>.<role>.json; its path.
Result<std::string> WritePending(const RepositoryLayout& repo, const std::string& role,
                                 const metadata::SignedDocument& doc);

// The role a pending file's name encodes ("3.apps%2Fkiosk.json": apps/kiosk).
Result<std::string> RoleOfPendingFile(const std::string& path);

struct StageAppRequest {
  std::string repository;
  std::string app;
  std::vector<std::string> public_key_files;  // metadata::ParsePublicKeyText formats
  uint32_t threshold = 1;
  Duration expiry = kDefaultOfflineExpiry;  // of the top-level targets version staged
};

// Stages the top-level targets' next version delegating apps/<app> to the
// given keys (added, or replacing the app's keys); the pending file's path.
Result<std::string> StageApp(const StageAppRequest& request, const Clock& clock);

struct StageRootRequest {
  std::string repository;
  // Role name ("root", "targets", "snapshot", "timestamp") -> its new Ed25519
  // public key files (keygen's .pub); threshold 1 per role.
  std::map<std::string, std::vector<std::string>> rotate;
  // Root's cap on releases' offline validity windows (docs/metadata.md):
  // set to this many days (0: removed); nullopt: kept.
  std::optional<uint32_t> offline_window_max_days;
};

// Stages root N+1 with the given roles' keys replaced; the pending file's path.
// Signed offline by the current and new root keys (threshold each), then
// accepted: the new online keys must be in keys/ by then.
Result<std::string> StageRootRotation(const StageRootRequest& request, const Clock& clock);

struct AcceptOutcome {
  std::string role;
  uint64_t version = 0;
};

// Checks the signed document in `file` as role `role` ("": from the file's
// name) exactly as a device would (role "root": metadata::Repository::
// PublishRoot, after checking keys/ holds the new root's snapshot and
// timestamp keys, which then re-sign snapshot and timestamp), plus, for an app role, that every
// target is a release of the app, release versions do not go down and every artifact a new release
// names is in artifacts/ with its signed length and sha256. Then publishes it with a new snapshot
// and timestamp (keys/ online keys) and records the releases in tracker.db. Takes the PublishLock.
Result<AcceptOutcome> AcceptSigned(const std::string& repository, const std::string& file,
                                   std::string role, const Clock& clock);

}  // namespace flotilla::tracker
