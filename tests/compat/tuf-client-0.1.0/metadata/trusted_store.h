// The client's trusted state on disk: one directory holding root.json,
// timestamp.json, snapshot.json, targets.json (non-versioned names, the bytes
// exactly as verified) and `time-floor`, the latest time at which a refresh
// succeeded. Every write is atomic (temp + fsync + rename + fsync dir), so a
// power cut leaves the old or the new file, never a torn one. Only the client
// writes here, and only after verification.
#pragma once

#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

class TrustedStore {
 public:
  explicit TrustedStore(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  std::string PathOf(RoleType role) const;

  // The stored bytes, or nullopt when the file does not exist.
  Result<std::optional<std::string>> Load(RoleType role, uint64_t max_bytes) const;
  Status Store(RoleType role, std::string_view bytes) const;
  // Removes a role file (fast-forward recovery after a key rotation).
  Status Remove(RoleType role) const;

  // The persisted time floor, or the epoch when none was written yet.
  Result<WallTime> LoadTimeFloor() const;
  Status StoreTimeFloor(WallTime floor) const;

 private:
  std::string dir_;
};

}  // namespace flotilla::metadata
