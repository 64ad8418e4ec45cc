// A device's fleet repository as one file (docs/fleet.md, "Layout"):
// <root>/fleet/devices/<device-id>/state holds the signed files a device
// fetches (timestamp.json, N.targets.json, N.snapshot.json and the fleet
// document <sha256>.device.json) for the current version and the one before
// it, and the numbers the signer needs, in a header line:
//
//   fleet-device-state-1 ROOT TARGETS SNAPSHOT TIMESTAMP EXPIRES DOCUMENT_SHA256 FILES
//   timestamp.json 470
//   {"signatures":[...],"signed":{...}}
//   12.snapshot.json 468
//   ...
//
// ROOT is the fleet root version the three roles are signed under, EXPIRES
// their expiry (unix seconds), FILES how many files follow, each as its
// name, a space, its length in bytes, a newline, the bytes and a newline.
// The file is replaced whole (temporary file, fsync, rename, directory
// fsync), so a device repository changes atomically: one file to write per
// version instead of four, and nothing to prune.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

inline constexpr std::string_view kDeviceStateFormat = "fleet-device-state-1";
inline constexpr char kDeviceStateFile[] = "state";
// Bounds of what a state file may hold (the parser refuses more).
inline constexpr size_t kMaxDeviceStateFiles = 8;
inline constexpr uint64_t kMaxDeviceStateFileBytes = 1 << 20;
inline constexpr uint64_t kMaxDeviceStateBytes = 4 << 20;

struct DeviceState {
  uint64_t root = 0;  // the fleet root version targets, snapshot and timestamp are signed under
  uint64_t targets = 0;
  uint64_t snapshot = 0;
  uint64_t timestamp = 0;
  int64_t expires = 0;          // unix seconds: when the three expire
  std::string document_sha256;  // of the device.json the current targets lists
  // Served name -> bytes: timestamp.json, N.targets.json, N.snapshot.json,
  // <sha256>.device.json (current and previous versions).
  std::vector<std::pair<std::string, std::string>> files;

  // The bytes of the served file `name`, or null.
  const std::string* Find(std::string_view name) const;
};

// Whether `name` is a name a state file may hold.
bool IsDeviceStateFileName(std::string_view name);

std::string FormatDeviceState(const DeviceState& state);
// Corruption unless `text` is exactly a state file within the bounds above.
Result<DeviceState> ParseDeviceState(std::string_view text);
// The state file of the device repository `device_dir`; nullopt when it has
// none. Corruption when it is not one.
Result<std::optional<DeviceState>> ReadDeviceState(const std::string& device_dir);
// Its header only (the files are not read): for the refresher's scan.
Result<std::optional<DeviceState>> ReadDeviceStateHeader(const std::string& device_dir);
// The header line at the start of `head` (the first bytes of a state file,
// at least up to its first newline); `files` stays empty.
Result<DeviceState> ParseDeviceStateHeader(std::string_view head);

// The file a device fetches as metadata/<name> (`kind` "metadata") or
// targets/<name> ("targets") of the repository of device `id` (a label):
// from its state file, with root.json and N.root.json from the fleet root
// versions up to the one the state is signed under (a newer root is not
// offered before the device's roles are signed under it); or, for a device
// that has no state file yet, from an older tracker's metadata/ and targets/
// directories. NotFound when there is no such file; Corruption when the
// state file is not one.
Result<std::string> ReadDeviceRepositoryFile(const RepositoryLayout& repo, std::string_view id,
                                             std::string_view kind, std::string_view name);

}  // namespace flotilla::tracker
