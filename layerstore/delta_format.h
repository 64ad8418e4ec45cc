// Internal to the delta codec: the byte-level pieces of docs/delta.md shared by
// the encoder and the applier (varints, the header, recipe records, the
// serialized recipe of a base layer).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/digest.h"
#include "core/status.h"
#include "layerstore/delta.h"
#include "layerstore/delta_filter.h"
#include "layerstore/layer_store.h"
#include "layerstore/safe_path.h"
#include "layerstore/varint.h"

namespace flotilla::layerstore::delta_internal {

inline constexpr std::string_view kMagic = "FLTDELTA";
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
inline constexpr size_t kMaxBases = 256;
inline constexpr size_t kMaxPath = 4096;
inline constexpr size_t kMaxRawRecordBytes = 64 * 1024;
inline constexpr size_t kTrailerBytes = 32;
// A literal frame's prefix: at most this many extents (their bytes <= 2^W).
inline constexpr size_t kMaxPrefixExtents = 4096;
// At most this many literal frames in a delta.
inline constexpr uint64_t kMaxLiteralFrames = 1 << 16;

enum RecordType : uint8_t { kRecordEnd = 0, kRecordRaw = 1, kRecordFile = 2 };
enum OpType : uint8_t { kOpCopy = 0, kOpPatch = 1, kOpLiteral = 2 };

// One extent of a literal frame's prefix: `length` bytes at `offset` of the
// `file`-th regular file with content of bases[base], counted in tar-split order.
struct PrefixExtent {
  uint64_t base = 0;
  uint64_t file = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  FilterSpec filter;  // applied to these bytes as a piece of the file (format 3)
};

// What precedes a literal frame's zstd bytes in the literal section.
struct LiteralFrameHead {
  uint8_t kind = 0;  // a ContentKind (delta_literals.h); informational for the applier
  std::vector<PrefixExtent> extents;
  uint64_t content_length = 0;  // decompressed bytes
  uint64_t frame_bytes = 0;     // the zstd frame's bytes that follow
};
// Appends the serialized head.
void EncodeLiteralFrameHead(const LiteralFrameHead& head, Bytes& out);

// The header fields after the magic and version (DeltaHeader plus what only
// the codec needs).
struct WireHeader {
  DeltaHeader header;
  uint64_t prefix_base = 0;
  uint64_t prefix_length = 0;
};

// FILTER: u8(filter) and, unless it is kNone, varint(start) varint(length).
void PutFilter(Bytes& out, const FilterSpec& spec);
// Parses a varint at data[pos], advancing pos; Corruption if malformed or cut.
Result<uint64_t> GetVarint(ByteSpan data, size_t& pos);

// The whole header: magic, version, varint(H), H bytes.
Bytes EncodeHeader(const WireHeader& wire);
// Parses the H header bytes (after magic, version and varint(H)).
Result<WireHeader> DecodeHeaderBody(ByteSpan body);

// C = 2^(W-2): the target bytes one patch frame rebuilds.
inline uint64_t PatchChunkSize(int window_log) { return uint64_t{1} << (window_log - 2); }
// The old file's bytes [begin, end) that are the prefix of chunk `k`.
struct Region {
  uint64_t begin = 0;
  uint64_t end = 0;
};
Region PatchPrefixRegion(uint64_t chunk_index, uint64_t chunk_size, uint64_t old_size);

// Appends recipe records; RAW runs are merged and cut at kMaxRawRecordBytes
// only when a FILE or END record follows (FlushRaw), so base and target cut alike.
class RecipeWriter {
 public:
  explicit RecipeWriter(std::function<Status(ByteSpan)> sink) : sink_(std::move(sink)) {}
  Status AddRaw(ByteSpan raw);
  // Writes the FILE record up to (not including) its op.
  Status AddFileHead(uint64_t size, std::string_view path);
  Status AddOpCopy(uint64_t base, std::string_view source_path);
  // `filter`: the target file's branch filter; `old_filter`: the source file's.
  Status AddOpPatch(uint64_t base, std::string_view source_path, uint64_t old_size,
                    const FilterSpec& filter, const FilterSpec& old_filter);
  Status AddOpLiteral(uint64_t frame, const FilterSpec& filter);
  Status Finish();
  uint64_t bytes() const { return bytes_; }

 private:
  Status FlushRaw();
  Status Emit(const Bytes& bytes);

  std::function<Status(ByteSpan)> sink_;
  Bytes raw_;
  uint64_t bytes_ = 0;
};

// One regular file with content in a layer's tar-split.
struct SplitFile {
  uint64_t size = 0;
  std::string path;
};

// Streams the records of `layer`'s tar-split. The store must hold it ready.
Status VisitLayerSplit(LayerStore& store, const Digest& layer,
                       const std::function<Status(ByteSpan)>& on_raw,
                       const std::function<Status(uint64_t, std::string_view)>& on_file);

// Serializes `layer`'s tar-split as the recipe of a base (every file a COPY
// of itself from base index `base_index`) into `sink`.
Status SerializeBaseRecipe(LayerStore& store, const Digest& layer, uint64_t base_index,
                           const std::function<Status(ByteSpan)>& sink);

// The last `length` bytes of the serialized base recipe (fails with
// Corruption if it is shorter: the base is not the one the delta was made from).
Result<Bytes> BaseRecipeTail(LayerStore& store, const Digest& layer, uint64_t base_index,
                             uint64_t length);

// Read-only access to the unpacked trees of some ready layers, usable from
// several threads once opened (only openat2 and reads, no store calls).
class LayerTrees {
 public:
  static Result<LayerTrees> Open(LayerStore& store, const std::vector<Digest>& layers);
  // Opens the regular file `path` of layer `index`; Corruption if it is not a
  // regular file or, when expected_size is given, not that long.
  Result<UniqueFd> OpenRegular(size_t index, std::string_view path,
                               std::optional<uint64_t> expected_size) const;
  size_t size() const { return trees_.size(); }

 private:
  std::vector<Digest> layers_;
  std::vector<UniqueFd> trees_;
};

// A file written through a buffer and hashed as it goes; removed when
// destroyed unless Commit renamed it into place (after flush and fsync).
class OutputFile {
 public:
  static Result<std::unique_ptr<OutputFile>> Create(Env& env, const std::string& temp_path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  Status Write(ByteSpan bytes);
  // Writes what is buffered (the file can then be read back through fd()).
  Status Flush();
  // Flush, fsync, rename to `final_path`, fsync its directory.
  Status Commit(const std::string& final_path);
  uint64_t bytes() const { return bytes_; }
  // SHA-256 of everything written; resets the hasher.
  Digest FinishDigest() { return hasher_.Finish(); }
  int fd() const { return file_->fd(); }

 private:
  OutputFile(Env& env, std::string path, std::unique_ptr<WritableFile> file)
      : env_(env), path_(std::move(path)), file_(std::move(file)) {}
  Env& env_;
  std::string path_;
  std::unique_ptr<WritableFile> file_;
  Bytes buffer_;
  uint64_t bytes_ = 0;
  Sha256Hasher hasher_;
  bool committed_ = false;
};

// Copies `length` bytes of `fd` from its current offset to `sink`.
Status CopyFd(int fd, uint64_t length, const std::function<Status(ByteSpan)>& sink);

}  // namespace flotilla::layerstore::delta_internal
