// The tar-split file: what the layer store keeps of a layer's tar besides the
// unpacked files, so that the byte-exact tar can be rebuilt on demand.
//
// A layer tar is a sequence of byte ranges that are either "raw" (headers,
// PAX/GNU extension records, padding, end-of-archive blocks and anything the
// writer appended) or the content of a regular file. The tar-split file keeps
// the raw ranges verbatim and, for each content range, the file's size and its
// path in the unpacked tree. Layout (docs/layerstore.md has an example): a
// zstd stream whose decompressed bytes are
//
//   "FLTSPLIT" u8(1)                          magic and version
//   { u8(1) varint(n) n bytes }               RAW: bytes copied as they were
//   { u8(2) varint(size) varint(n) n bytes }  FILE: `size` content bytes of the
//                                             file at this normalized path
//   u8(0) varint(length) 32 bytes             END: tar length and diff_id
//
// varint is unsigned LEB128. RAW records hold at most kMaxRawRecord bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/digest.h"
#include "core/env.h"
#include "core/status.h"
#include "core/zstd_stream.h"

namespace flotilla::layerstore {

inline constexpr size_t kMaxRawRecord = 64 * 1024;

// Writes a tar-split file through `file` (not closed, not synced).
class TarSplitWriter {
 public:
  explicit TarSplitWriter(WritableFile& file);
  ~TarSplitWriter();
  TarSplitWriter(const TarSplitWriter&) = delete;
  TarSplitWriter& operator=(const TarSplitWriter&) = delete;

  Status AddRaw(ByteSpan bytes);
  Status AddFile(uint64_t size, std::string_view path);
  Status Finish(uint64_t tar_length, const Digest& diff_id);
  // Decompressed bytes written so far (the bound a reader needs).
  uint64_t logical_bytes() const { return logical_bytes_; }

 private:
  Status FlushRaw();
  Status Emit(ByteSpan bytes);

  WritableFile& file_;
  std::unique_ptr<ZstdCompressor> compressor_;
  Status sink_status_;
  Bytes raw_;
  uint64_t logical_bytes_ = 0;
};

struct TarSplitVisitor {
  std::function<Status(ByteSpan raw)> on_raw;
  std::function<Status(uint64_t size, std::string_view path)> on_file;
};

struct TarSplitEnd {
  uint64_t tar_length = 0;
  Digest diff_id;
};

// Streams the records of the tar-split file `fd` to `visitor`, in order,
// refusing more than `max_logical_bytes` of decompressed data and any
// malformed record (Corruption).
Result<TarSplitEnd> ReadTarSplit(int fd, uint64_t max_logical_bytes,
                                 const TarSplitVisitor& visitor);

}  // namespace flotilla::layerstore
