// The client's trusted state on disk: one directory holding root.json,
// timestamp.json, snapshot.json, targets.json and one file per delegated
// targets role (non-versioned names, the bytes exactly as verified) and
// `time-floor`, the latest time at which a refresh succeeded. A delegated
// role's file is its percent-encoded name plus ".json" ("a/b" ->
// "a%2Fb.json", ".." -> "...json"): a role name never chooses a path. Every write is atomic (temp +
// fsync + rename + fsync dir), so a power cut leaves the old or the new file, never a torn one.
// Only the client writes here, and only after verification.
#pragma once

#include <optional>
#include <string>

#include "core/clock.h"
#include "core/env.h"
#include "core/status.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

class TrustedStore {
 public:
  // Writes go through `env` (which must outlive the store).
  explicit TrustedStore(std::string dir, Env& env = Env::Default())
      : dir_(std::move(dir)), env_(&env) {}

  const std::string& dir() const { return dir_; }
  std::string PathOf(RoleType role) const;
  // InvalidArgument when the encoded name does not fit a file name.
  Result<std::string> PathOf(std::string_view role_name) const;

  // The stored bytes, or nullopt when the file does not exist.
  Result<std::optional<std::string>> Load(RoleType role, uint64_t max_bytes) const;
  Result<std::optional<std::string>> Load(std::string_view role_name, uint64_t max_bytes) const;
  Status Store(RoleType role, std::string_view bytes) const;
  Status Store(std::string_view role_name, std::string_view bytes) const;
  // Removes a role file (fast-forward recovery after a key rotation).
  Status Remove(RoleType role) const;

  // The persisted time floor, or the epoch when none was written yet.
  Result<WallTime> LoadTimeFloor() const;
  Status StoreTimeFloor(WallTime floor) const;

 private:
  std::string dir_;
  Env* env_;
};

// Copies the regular files of trusted directory `from` into `to` (created):
// a scratch copy to verify metadata against before `from` trusts it. Not
// durable (the copy is thrown away).
Status CopyTrustedDirectory(const std::string& from, const std::string& to);

}  // namespace flotilla::metadata
