// A backup of a tracker directory as a plain directory tree with a manifest
// (docs/tracker.md, "Backup and restore"):
//
//   <backup>/MANIFEST     "flotilla-tracker-backup 1 <unix seconds>" then one
//                         line per entry, sorted by path:
//                           d <mode octal> - - <path>
//                           f <mode octal> <size> <sha256 hex> <path>
//   <backup>/<path>...    the entries, with their modes
//
// Paths are relative, '/'-separated, without "." or ".." components or
// whitespace. Copies fsync each file and directory they write.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::tracker {

struct BackupEntry {
  bool directory = false;
  mode_t mode = 0;
  uint64_t size = 0;
  std::string sha256_hex;  // files only
  std::string path;
};

struct BackupManifest {
  int64_t created_unix = 0;
  std::vector<BackupEntry> entries;  // sorted by path; a directory before what it holds
};

inline constexpr char kManifestName[] = "MANIFEST";

std::string FormatManifest(const BackupManifest& manifest);
// Strict: a malformed line, an unsafe path or a duplicate is Corruption.
Result<BackupManifest> ParseManifest(const std::string& text);

// Copies the tree under `from` into the existing directory `to` (modes kept,
// every file and directory fsynced), skipping relative paths for which `skip`
// is true, and returns its entries. Anything but regular files and
// directories is refused.
Result<std::vector<BackupEntry>> CopyTree(const std::string& from, const std::string& to,
                                          const std::function<bool(const std::string&)>& skip);

// Copies the regular file `from` to the new file `to` with `mode` and fsyncs
// it; returns its entry (path `relative`).
Result<BackupEntry> CopyFileHashed(const std::string& from, const std::string& to, mode_t mode,
                                   const std::string& relative);

// Every entry of `manifest` is in `dir` with its kind, size and SHA-256, and
// `dir` holds nothing else (but the manifest itself).
Status VerifyTree(const std::string& dir, const BackupManifest& manifest);

// Writes `manifest` entries from `from` into the existing directory `to`,
// checking each file's size and SHA-256 again as it copies, and fsyncs.
Status RestoreTree(const std::string& from, const std::string& to, const BackupManifest& manifest);

}  // namespace flotilla::tracker
