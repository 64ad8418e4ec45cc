// Safe, verifying unpack of one OCI layer tar into a directory.
//
// The unpacker reads the uncompressed layer tar once: it hashes every byte
// (the diff_id), extracts each entry with fd-relative calls confined to the
// tree (see safe_path.h), turns OCI whiteouts into overlayfs whiteouts, and
// writes the tar-split file (tar_split.h) that lets the exact tar be rebuilt.
// It does not decide whether the result is trusted: the caller unpacks into a
// private staging directory and promotes it only if the digest matched.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "core/digest.h"
#include "core/env.h"
#include "core/status.h"
#include "layerstore/byte_source.h"

namespace flotilla::layerstore {

struct UnpackLimits {
  // The stream may not be longer than this (ResourceExhausted when it is).
  uint64_t max_length = 8ull << 30;
  // When set, the tar must be exactly this long and hash to this digest (Corruption otherwise).
  std::optional<uint64_t> expected_length;
  std::optional<Digest> expected_diff_id;
  // Character and block devices are refused unless allowed (char 0:0 always is:
  // overlayfs would take it for a whiteout).
  bool allow_devices = false;
  uint64_t max_entries = 1'000'000;
};

struct UnpackResult {
  Digest diff_id;
  uint64_t length = 0;
  uint64_t entries = 0;
  uint64_t tarsplit_logical_bytes = 0;
};

// Called now and then with the number of tar bytes read so far.
using BytesProgress = std::function<void(uint64_t bytes_read)>;

// Unpacks the tar read from `source` into the empty directory `tree_fd`
// (regular files are written through `env`) and writes its tar-split into
// `tarsplit`. Nothing is synced: the caller syncs the file system once
// before it promotes the result.
Result<UnpackResult> UnpackLayerTar(ByteSource& source, Env& env, int tree_fd,
                                    WritableFile& tarsplit, const UnpackLimits& limits,
                                    const BytesProgress& progress);

}  // namespace flotilla::layerstore
