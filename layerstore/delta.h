// Delta artifacts: a target layer's tar rebuilt byte for byte from base layers
// a device already holds plus a small delta file (format: docs/delta.md).
//
// The encoder (tracker side) reads the target and the bases from a layer
// store: it sends the target's tar headers compressed against the bases' tar
// headers, a reference for every file whose content exists anywhere in the
// bases (by path or by SHA-256), a zstd patch against the old version for a
// changed file (in chunks, so that memory stays bounded however large the
// file), and the remaining new content in one zstd frame per kind of file
// (text, ELF executables, shared libraries, opaque and compressed data), each
// compressed against similar base files of that kind that the device reads
// from its store.
//
// The applier (device side) streams: it reads base files through the store,
// writes the rebuilt tar to a temporary file, and keeps it only once its
// length and SHA-256 equal the target named in the delta header and the
// delta's own checksum matched. Its memory is bounded by the delta's window
// (refused above the caller's cap), never by the layer's size. An apply that
// is interrupted (error, crash, kill -9) leaves nothing but a temporary file
// whose name says so; a new apply starts from scratch.
//
// Thread-safety: the functions take the LayerStore exclusively for their
// duration (LayerStore itself is not thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "core/zstd_stream.h"
#include "layerstore/byte_source.h"
#include "layerstore/layer_store.h"
#include "layerstore/types.h"

namespace flotilla::layerstore {

// The format EncodeDelta writes; the applier reads it and every older one
// down to kOldestDeltaFormatVersion (what 0.1.0's tracker published).
inline constexpr int kDeltaFormatVersion = 3;
inline constexpr int kOldestDeltaFormatVersion = 2;
// The window a device accepts unless told otherwise: 2^24 = 16 MiB.
inline constexpr int kDefaultMaxDeltaWindowLog = 24;
// Bounds the encoder accepts for `window_log` (the decoder refuses more than its cap).
inline constexpr int kMinDeltaWindowLog = 20;
inline constexpr int kMaxDeltaWindowLog = 27;

struct DeltaEncodeOptions {
  int level = 19;       // zstd level of every section
  int window_log = 23;  // 2^window_log: the largest zstd window (and reference) the applier needs
  int threads = 0;      // 0: one thread; N: patches of changed files compressed N at a time
  bool branch_filters = true;  // filter ELF files' branches (docs/delta.md, "Branch filters")
};

// What the delta's header says. Readable without a store (ReadDeltaHeader).
struct DeltaHeader {
  int version = kDeltaFormatVersion;
  std::vector<Digest> bases;    // every layer the delta reads from, in order
  Digest target;                // diff_id of the rebuilt layer
  uint64_t target_length = 0;   // bytes of the rebuilt layer tar
  int window_log = 0;           // the largest window any section needs
  uint64_t recipe_length = 0;   // decompressed bytes of the recipe section
  uint64_t literal_length = 0;  // decompressed bytes of the literal section
  // Compressed sizes of the three sections, as stored in the file.
  uint64_t recipe_bytes = 0;
  uint64_t literal_bytes = 0;
  uint64_t patch_bytes = 0;
  uint64_t literal_frames = 0;  // zstd frames in the literal section (one per kind of file)
  uint64_t delta_length = 0;    // the whole delta file, trailer included
};

// One frame of the literal section: the new files of one kind, compressed
// against a prefix of similar base files.
struct DeltaLiteralFrameStats {
  std::string kind;          // "text", "elf-executable", "shared-library", "opaque", "compressed"
  uint64_t files = 0;        // literal files in the frame
  uint64_t input_bytes = 0;  // their bytes
  uint64_t prefix_extents = 0;    // base file pieces in the frame's prefix
  uint64_t prefix_bytes = 0;      // bytes of the prefix (<= 2^window_log)
  uint64_t compressed_bytes = 0;  // the frame's bytes in the delta, head included
};

// What encoding did, for the one-line summary of `delta create`.
struct DeltaEncodeStats {
  DeltaHeader header;
  uint64_t files = 0;                // regular files with content in the target
  uint64_t copied_files = 0;         // sent as a reference to an identical base file
  uint64_t patched_files = 0;        // sent as a patch against a base file
  uint64_t literal_files = 0;        // sent in the literal section
  uint64_t patched_input_bytes = 0;  // target bytes the patches rebuild
  uint64_t literal_input_bytes = 0;  // target bytes the literal section holds
  std::vector<DeltaLiteralFrameStats> literal_frames;
};

// Writes a delta rebuilding `target` from `bases` (all ready layers of
// `store`) to `out_path` atomically (temp + fsync + rename). Fails with
// NotFound for a layer the store lacks, InvalidArgument for options out of
// range, no base, a duplicate base or the target among the bases.
Result<DeltaEncodeStats> EncodeDelta(LayerStore& store, const std::vector<Digest>& bases,
                                     const Digest& target, const std::string& out_path,
                                     const DeltaEncodeOptions& options = {});

// Parses the header at the start of a delta (reads only the header's bytes).
// Corruption for a bad magic, an unknown version or a malformed header.
Result<DeltaHeader> ReadDeltaHeader(ByteSource& delta);
Result<DeltaHeader> ReadDeltaHeaderFile(const std::string& delta_path);

struct DeltaApplyOptions {
  // A delta whose header asks for a larger window is refused (ResourceExhausted)
  // before anything is decoded.
  int max_window_log = kDefaultMaxDeltaWindowLog;
  // Bound on the rebuilt layer and on each decoded section.
  uint64_t max_target_bytes = 8ull << 30;
  // ApplyDeltaToStore: where the rebuilt tar is staged (required there), and
  // how the store unpacks it.
  std::string temp_dir;
  UnpackOptions unpack;
  // ApplyDeltaToStore: the store's progress while it unpacks the rebuilt tar.
  ProgressFn progress;
};

// Rebuilds the target layer tar from `delta` and the bases in `store` into
// `out_path`, through temporary files named `out_path` + ".partial",
// ".recipe.partial" and ".literal.partial" (removed on return, overwritten by the
// next apply after a crash). The file appears (atomically, fsynced) only if the rebuilt tar
// has the header's length and diff_id and the delta's checksum is right;
// otherwise nothing is left at `out_path` and the error says why:
// NotFound (a base is missing or quarantined), Corruption (delta damaged or
// truncated, a base file differs from what the delta expects, the result does
// not hash to the target), ResourceExhausted (window above the cap, a bound
// passed). If `expected_target` is given, a delta for another layer is refused
// before any work (InvalidArgument).
Result<DeltaHeader> ApplyDeltaToFile(LayerStore& store, ByteSource& delta,
                                     const std::string& out_path,
                                     const DeltaApplyOptions& options = {},
                                     const Digest* expected_target = nullptr);

// Like ApplyDeltaToFile into a temporary file under `options.temp_dir`
// (required), then adds the layer to `store` through its verifying
// UnpackLayer; the temporary file is removed either way.
Result<LayerInfo> ApplyDeltaToStore(LayerStore& store, ByteSource& delta,
                                    const DeltaApplyOptions& options,
                                    const Digest* expected_target = nullptr);

}  // namespace flotilla::layerstore
