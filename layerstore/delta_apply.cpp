// The delta applier (docs/delta.md): device side, streaming, bounded memory.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "layerstore/delta.h"
#include "layerstore/delta_filter.h"
#include "layerstore/delta_format.h"
#include "layerstore/delta_literals.h"
#include "layerstore/delta_zstd.h"

namespace flotilla::layerstore {
namespace {

using namespace delta_internal;  // NOLINT: the codec's own internals

// Sequential reads of a byte stream through a small buffer; what it hands out
// is hashed (the delta's trailer checks it) unless read with ReadUnhashed.
class StreamReader {
 public:
  explicit StreamReader(std::function<Result<size_t>(std::span<uint8_t>)> read)
      : read_(std::move(read)) {}

  Status ReadExact(std::span<uint8_t> out) {
    for (size_t done = 0; done < out.size();) {
      RETURN_IF_ERROR(Fill());
      size_t n = std::min(out.size() - done, len_ - pos_);
      std::copy_n(buffer_.data() + pos_, n, out.data() + done);
      Consume(n);
      done += n;
    }
    return Status::Ok();
  }
  Result<uint8_t> ReadByte() {
    uint8_t b = 0;
    RETURN_IF_ERROR(ReadExact(std::span<uint8_t>(&b, 1)));
    return b;
  }
  Result<uint64_t> ReadVarint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      ASSIGN_OR_RETURN(uint8_t byte, ReadByte());
      if (shift == 63 && byte > 1) return Corruption("delta: varint overflows 64 bits");
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return Corruption("delta: varint too long");
  }
  // Hands the next `n` bytes to `sink` in pieces.
  Status Stream(uint64_t n, const std::function<Status(ByteSpan)>& sink) {
    while (n > 0) {
      RETURN_IF_ERROR(Fill());
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, len_ - pos_));
      ByteSpan piece(buffer_.data() + pos_, take);
      Consume(take);
      RETURN_IF_ERROR(sink(piece));
      n -= take;
    }
    return Status::Ok();
  }
  void StopHashing() { hashing_ = false; }
  Digest FinishDigest() { return hasher_.Finish(); }
  // True if the stream has no byte left.
  Result<bool> AtEnd() {
    if (pos_ < len_) return false;
    ASSIGN_OR_RETURN(size_t n, read_(buffer_));
    pos_ = 0;
    len_ = n;
    return n == 0;
  }
  uint64_t consumed() const { return consumed_; }

 private:
  Status Fill() {
    if (pos_ < len_) return Status::Ok();
    ASSIGN_OR_RETURN(size_t n, read_(buffer_));
    if (n == 0) return Corruption("delta: truncated");
    pos_ = 0;
    len_ = n;
    return Status::Ok();
  }
  void Consume(size_t n) {
    if (hashing_) hasher_.Update(ByteSpan(buffer_.data() + pos_, n));
    pos_ += n;
    consumed_ += n;
  }

  std::function<Result<size_t>(std::span<uint8_t>)> read_;
  Bytes buffer_ = Bytes(64 * 1024);
  size_t pos_ = 0;
  size_t len_ = 0;
  uint64_t consumed_ = 0;
  bool hashing_ = true;
  Sha256Hasher hasher_;
};

StreamReader SourceReader(ByteSource& source) {
  return StreamReader([&source](std::span<uint8_t> out) { return source.Read(out); });
}

Result<WireHeader> ReadWire(StreamReader& reader) {
  Bytes magic(kMagic.size() + 1);
  Status st = reader.ReadExact(magic);
  if (!st.ok() || AsStringView(ByteSpan(magic).first(kMagic.size())) != kMagic) {
    return Corruption("not a flotilla delta (bad magic)");
  }
  const int version = magic.back();
  if (version < kOldestDeltaFormatVersion || version > kDeltaFormatVersion) {
    return Corruption("delta format version " + std::to_string(version) +
                      " is not supported (this build reads versions " +
                      std::to_string(kOldestDeltaFormatVersion) + " to " +
                      std::to_string(kDeltaFormatVersion) + ")");
  }
  ASSIGN_OR_RETURN(uint64_t body_size, reader.ReadVarint());
  if (body_size > kMaxHeaderBytes) return Corruption("delta: header too large");
  Bytes body(body_size);
  RETURN_IF_ERROR(reader.ReadExact(body));
  ASSIGN_OR_RETURN(WireHeader wire, DecodeHeaderBody(body));
  DeltaHeader& h = wire.header;
  h.version = version;
  h.delta_length =
      reader.consumed() + h.recipe_bytes + h.literal_bytes + h.patch_bytes + kTrailerBytes;
  return wire;
}

class Applier {
 public:
  Applier(LayerStore& store, ByteSource& delta, const DeltaApplyOptions& options)
      : store_(store), delta_(SourceReader(delta)), options_(options) {}
  Result<DeltaHeader> Run(const std::string& out_path, const Digest* expected_target);

 private:
  Status CheckLimits(const Digest* expected_target) const;
  Status DecodeRecipe(OutputFile& recipe);
  Status DecodeLiterals(OutputFile& literals);
  Result<FilterSpec> ReadFilter(StreamReader& reader);
  Result<LiteralFrameHead> ReadFrameHead();
  Result<Bytes> ReadPrefix(const std::vector<PrefixExtent>& extents);
  Status CopyLiteral(uint64_t frame, uint64_t size, const FilterSpec& filter, int literal_fd,
                     OutputFile& out);
  Status Rebuild(int recipe_fd, int literal_fd, OutputFile& out);
  Status RebuildFile(StreamReader& recipe, int literal_fd, OutputFile& out);
  // The source file and its filter; the target file's size and filter.
  struct PatchSource {
    size_t base = 0;
    std::string_view path;
    uint64_t size = 0;
    FilterSpec filter;
  };
  Status Patch(const PatchSource& old, uint64_t size, const FilterSpec& filter, OutputFile& out);
  Status CheckEnd(OutputFile& out);

  LayerStore& store_;
  StreamReader delta_;
  DeltaApplyOptions options_;
  WireHeader wire_;
  std::optional<LayerTrees> trees_;
  std::optional<PrefixDecompressor> patcher_;
  // Per literal frame: where its content starts in the decoded literal file,
  // how much of it LITERAL ops have used, and its length.
  struct FrameSpan {
    uint64_t start = 0;
    uint64_t used = 0;
    uint64_t length = 0;
  };
  std::vector<FrameSpan> frames_;
};

Status Applier::CheckLimits(const Digest* expected_target) const {
  const DeltaHeader& h = wire_.header;
  if (expected_target && *expected_target != h.target) {
    return InvalidArgument("delta rebuilds " + h.target.ToString() + ", not " +
                           expected_target->ToString());
  }
  if (h.window_log > options_.max_window_log) {
    return ResourceExhausted("delta needs a 2^" + std::to_string(h.window_log) +
                             " byte window; this device allows 2^" +
                             std::to_string(options_.max_window_log));
  }
  const uint64_t max = options_.max_target_bytes;
  if (h.target_length > max || h.recipe_length > max || h.literal_length > max) {
    return ResourceExhausted("delta rebuilds more than " + std::to_string(max) + " bytes");
  }
  return Status::Ok();
}

Status Applier::DecodeRecipe(OutputFile& recipe) {
  const DeltaHeader& h = wire_.header;
  ASSIGN_OR_RETURN(Bytes prefix, BaseRecipeTail(store_, h.bases[wire_.prefix_base],
                                                wire_.prefix_base, wire_.prefix_length));
  PrefixDecompressor decoder(h.window_log);
  RETURN_IF_ERROR(
      decoder.Begin(prefix, h.recipe_length, [&](ByteSpan b) { return recipe.Write(b); }));
  RETURN_IF_ERROR(delta_.Stream(h.recipe_bytes, [&](ByteSpan b) { return decoder.Write(b); }));
  RETURN_IF_ERROR(decoder.End().WithContext("recipe"));
  if (decoder.output_bytes() != h.recipe_length) return Corruption("recipe is short");
  return recipe.Flush();
}

// A FILTER (format 3 on; none before). Its range is checked against the
// file it applies to by the caller, who knows that file's size.
Result<FilterSpec> Applier::ReadFilter(StreamReader& reader) {
  FilterSpec spec;
  if (wire_.header.version < 3) return spec;
  ASSIGN_OR_RETURN(uint8_t filter, reader.ReadByte());
  if (filter >= kBranchFilters) return Corruption("delta: unknown branch filter");
  spec.filter = static_cast<BranchFilter>(filter);
  if (spec.filter == BranchFilter::kNone) return spec;
  ASSIGN_OR_RETURN(spec.start, reader.ReadVarint());
  ASSIGN_OR_RETURN(spec.length, reader.ReadVarint());
  return spec;
}

Status CheckFilterRange(const FilterSpec& spec, uint64_t file_size) {
  if (spec.start > file_size || spec.length > file_size - spec.start) {
    return Corruption("delta: branch filter range outside its file");
  }
  return Status::Ok();
}

Result<LiteralFrameHead> Applier::ReadFrameHead() {
  const DeltaHeader& h = wire_.header;
  LiteralFrameHead head;
  ASSIGN_OR_RETURN(head.kind, delta_.ReadByte());
  ASSIGN_OR_RETURN(uint64_t count, delta_.ReadVarint());
  if (head.kind >= kContentKinds || count > kMaxPrefixExtents) {
    return Corruption("literal frame: bad head");
  }
  const uint64_t cap = uint64_t{1} << h.window_log;
  uint64_t prefix_bytes = 0;
  for (uint64_t i = 0; i < count; ++i) {
    PrefixExtent e;
    ASSIGN_OR_RETURN(e.base, delta_.ReadVarint());
    ASSIGN_OR_RETURN(e.file, delta_.ReadVarint());
    ASSIGN_OR_RETURN(e.offset, delta_.ReadVarint());
    ASSIGN_OR_RETURN(e.length, delta_.ReadVarint());
    ASSIGN_OR_RETURN(e.filter, ReadFilter(delta_));
    if (e.base >= h.bases.size()) return Corruption("literal frame: prefix base out of range");
    if (e.length > cap - prefix_bytes) {
      return ResourceExhausted("literal frame: prefix larger than the 2^" +
                               std::to_string(h.window_log) + " byte window");
    }
    prefix_bytes += e.length;
    head.extents.push_back(e);
  }
  ASSIGN_OR_RETURN(head.content_length, delta_.ReadVarint());
  ASSIGN_OR_RETURN(head.frame_bytes, delta_.ReadVarint());
  const uint64_t max_frame = head.content_length + head.content_length / 8 + 1024;
  if (head.content_length == 0 || head.frame_bytes > max_frame) {
    return Corruption("literal frame: bad lengths");
  }
  return head;
}

// The prefix a frame names, read from the base trees: each extent must lie
// inside a regular file of the size the base's tar-split records.
Result<Bytes> Applier::ReadPrefix(const std::vector<PrefixExtent>& extents) {
  std::map<std::pair<uint64_t, uint64_t>, SplitFile> files;
  for (const PrefixExtent& e : extents) files[{e.base, e.file}];
  for (size_t b = 0; b < wire_.header.bases.size(); ++b) {
    auto next = files.lower_bound({b, 0});
    if (next == files.end() || next->first.first != b) continue;
    uint64_t position = 0;
    RETURN_IF_ERROR(VisitLayerSplit(
        store_, wire_.header.bases[b], [](ByteSpan) { return Status::Ok(); },
        [&](uint64_t size, std::string_view path) {
          if (next != files.end() && next->first == std::pair<uint64_t, uint64_t>{b, position}) {
            next->second = SplitFile{size, std::string(path)};
            ++next;
          }
          ++position;
          return Status::Ok();
        }));
    if (next != files.end() && next->first.first == b) {
      return Corruption("literal frame: prefix names file " + std::to_string(next->first.second) +
                        " of base " + std::to_string(b) + ", which has " +
                        std::to_string(position) + " files");
    }
  }
  uint64_t total = 0;
  for (const PrefixExtent& e : extents) total += e.length;
  Bytes prefix;
  prefix.reserve(total);  // exactly: growing by doubling would hold up to 3x the prefix
  for (const PrefixExtent& e : extents) {
    const SplitFile& file = files[{e.base, e.file}];
    if (e.offset > file.size || e.length > file.size - e.offset) {
      return Corruption("literal frame: prefix extent outside '" + file.path + "'");
    }
    RETURN_IF_ERROR(CheckFilterRange(e.filter, file.size));
    ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(e.base, file.path, file.size));
    size_t at = prefix.size();
    prefix.resize(at + e.length);
    auto piece = std::span(prefix).subspan(at);
    RETURN_IF_ERROR(PreadExact(fd.get(), piece, e.offset));
    ApplyFilter(e.filter, e.offset, piece, /*encode=*/true);
  }
  return prefix;
}

Status Applier::DecodeLiterals(OutputFile& literals) {
  const DeltaHeader& h = wire_.header;
  const uint64_t section_end = delta_.consumed() + h.literal_bytes;
  for (uint64_t i = 0; i < h.literal_frames; ++i) {
    // A decoder per frame: zstd keeps a context's largest window buffer, and a
    // big frame's window plus the next frame's prefix would both be held.
    PrefixDecompressor decoder(h.window_log);
    ASSIGN_OR_RETURN(LiteralFrameHead head, ReadFrameHead());
    if (head.content_length > h.literal_length - literals.bytes() ||
        head.frame_bytes > section_end - std::min(section_end, delta_.consumed())) {
      return Corruption("literal frame " + std::to_string(i) + " overruns its section");
    }
    ASSIGN_OR_RETURN(Bytes prefix, ReadPrefix(head.extents));
    frames_.push_back({literals.bytes(), 0, head.content_length});
    RETURN_IF_ERROR(
        decoder.Begin(prefix, head.content_length, [&](ByteSpan b) { return literals.Write(b); }));
    RETURN_IF_ERROR(delta_.Stream(head.frame_bytes, [&](ByteSpan b) { return decoder.Write(b); }));
    RETURN_IF_ERROR(decoder.End().WithContext("literal frame " + std::to_string(i)));
    if (decoder.output_bytes() != head.content_length) return Corruption("literal frame is short");
  }
  if (delta_.consumed() != section_end || literals.bytes() != h.literal_length) {
    return Corruption("literal section length does not match its header");
  }
  return literals.Flush();
}

Status Applier::CopyLiteral(uint64_t frame, uint64_t size, const FilterSpec& filter, int literal_fd,
                            OutputFile& out) {
  if (size == 0) return Status::Ok();  // an empty file reads nothing (docs/delta.md)
  if (frame >= frames_.size()) return Corruption("recipe: literal frame out of range");
  FrameSpan& span = frames_[frame];
  if (size > span.length - span.used) return Corruption("recipe: literal frame overrun");
  RETURN_IF_ERROR(CheckFilterRange(filter, size));
  FilterDecoder decoder(filter);
  const ByteSink sink = [&](ByteSpan b) { return out.Write(b); };
  Bytes buffer(std::min<uint64_t>(size, 128 * 1024));
  for (uint64_t done = 0; done < size;) {
    std::span<uint8_t> piece(buffer.data(), std::min<uint64_t>(buffer.size(), size - done));
    RETURN_IF_ERROR(PreadExact(literal_fd, piece, span.start + span.used));
    RETURN_IF_ERROR(decoder.Write(piece, sink));
    span.used += piece.size();
    done += piece.size();
  }
  return decoder.Finish(sink);
}

// Rebuilds a file chunk by chunk: each chunk's zstd frame against the source
// file's matching region (filtered as a piece), through the file's own filter.
Status Applier::Patch(const PatchSource& old, uint64_t size, const FilterSpec& filter,
                      OutputFile& out) {
  if (size == 0 || old.size == 0) return Corruption("patch of an empty file");
  RETURN_IF_ERROR(CheckFilterRange(filter, size));
  RETURN_IF_ERROR(CheckFilterRange(old.filter, old.size));
  ASSIGN_OR_RETURN(UniqueFd old_fd, trees_->OpenRegular(old.base, old.path, old.size));
  const uint64_t chunk = PatchChunkSize(wire_.header.window_log);
  FilterDecoder decoder(filter);
  const ByteSink sink = [&](ByteSpan b) { return out.Write(b); };
  Bytes prefix;
  for (uint64_t k = 0; k * chunk < size; ++k) {
    const uint64_t want = std::min(chunk, size - k * chunk);
    Region region = PatchPrefixRegion(k, chunk, old.size);
    prefix.resize(region.end - region.begin);
    RETURN_IF_ERROR(PreadExact(old_fd.get(), prefix, region.begin));
    ApplyFilter(old.filter, region.begin, prefix, /*encode=*/true);
    ASSIGN_OR_RETURN(uint64_t frame_bytes, delta_.ReadVarint());
    if (frame_bytes > want + want / 8 + 1024) return Corruption("patch frame too large");
    RETURN_IF_ERROR(
        patcher_->Begin(prefix, want, [&](ByteSpan b) { return decoder.Write(b, sink); }));
    RETURN_IF_ERROR(delta_.Stream(frame_bytes, [&](ByteSpan b) { return patcher_->Write(b); }));
    RETURN_IF_ERROR(patcher_->End());
    if (patcher_->output_bytes() != want) return Corruption("patch frame is short");
  }
  return decoder.Finish(sink);
}

Status Applier::RebuildFile(StreamReader& recipe, int literal_fd, OutputFile& out) {
  ASSIGN_OR_RETURN(uint64_t size, recipe.ReadVarint());
  ASSIGN_OR_RETURN(uint64_t path_size, recipe.ReadVarint());
  if (path_size == 0 || path_size > kMaxPath) return Corruption("recipe: bad path length");
  std::string path(path_size, '\0');
  RETURN_IF_ERROR(recipe.ReadExact(std::span(reinterpret_cast<uint8_t*>(path.data()), path_size)));
  // out.bytes() <= target_length holds; a sum could wrap past 2^64.
  if (size > wire_.header.target_length - out.bytes()) {
    return Corruption("recipe: layer too long");
  }
  ASSIGN_OR_RETURN(uint8_t op, recipe.ReadByte());
  if (op == kOpLiteral) {
    ASSIGN_OR_RETURN(uint64_t frame, recipe.ReadVarint());
    ASSIGN_OR_RETURN(FilterSpec filter, ReadFilter(recipe));
    return CopyLiteral(frame, size, filter, literal_fd, out);
  }
  if (op != kOpCopy && op != kOpPatch) return Corruption("recipe: unknown op");
  ASSIGN_OR_RETURN(uint64_t base, recipe.ReadVarint());
  ASSIGN_OR_RETURN(uint64_t source_size, recipe.ReadVarint());
  if (base >= wire_.header.bases.size() || source_size > kMaxPath) {
    return Corruption("recipe: bad source");
  }
  std::string source(source_size, '\0');
  RETURN_IF_ERROR(
      recipe.ReadExact(std::span(reinterpret_cast<uint8_t*>(source.data()), source_size)));
  const std::string& from = source.empty() ? path : source;
  if (op == kOpCopy) {
    ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(base, from, size));
    return CopyFd(fd.get(), size, [&](ByteSpan b) { return out.Write(b); });
  }
  PatchSource old{base, from};
  ASSIGN_OR_RETURN(old.size, recipe.ReadVarint());
  ASSIGN_OR_RETURN(FilterSpec filter, ReadFilter(recipe));
  ASSIGN_OR_RETURN(old.filter, ReadFilter(recipe));
  return Patch(old, size, filter, out).WithContext("patch of '" + path + "'");
}

Status Applier::Rebuild(int recipe_fd, int literal_fd, OutputFile& out) {
  StreamReader recipe([recipe_fd](std::span<uint8_t> out) { return ReadSome(recipe_fd, out); });
  Bytes raw;
  for (;;) {
    ASSIGN_OR_RETURN(uint8_t type, recipe.ReadByte());
    if (type == kRecordEnd) break;
    if (type == kRecordFile) {
      RETURN_IF_ERROR(RebuildFile(recipe, literal_fd, out));
      continue;
    }
    if (type != kRecordRaw) return Corruption("recipe: unknown record " + std::to_string(type));
    ASSIGN_OR_RETURN(uint64_t n, recipe.ReadVarint());
    if (n > kMaxRawRecordBytes || out.bytes() + n > wire_.header.target_length) {
      return Corruption("recipe: bad raw record");
    }
    raw.resize(n);
    RETURN_IF_ERROR(recipe.ReadExact(raw));
    RETURN_IF_ERROR(out.Write(raw));
  }
  ASSIGN_OR_RETURN(bool recipe_done, recipe.AtEnd());
  if (!recipe_done) return Corruption("recipe: bytes after its end");
  for (const FrameSpan& span : frames_) {
    if (span.used != span.length) return Corruption("literal section: bytes left over");
  }
  return Status::Ok();
}

Status Applier::CheckEnd(OutputFile& out) {
  const DeltaHeader& h = wire_.header;
  if (delta_.consumed() != h.delta_length - kTrailerBytes) {
    return Corruption("delta: patch section length does not match its header");
  }
  Digest computed = delta_.FinishDigest();
  delta_.StopHashing();
  Bytes trailer(kTrailerBytes);
  RETURN_IF_ERROR(delta_.ReadExact(trailer));
  if (!ConstantTimeEqual(trailer, computed.bytes())) return Corruption("delta: checksum mismatch");
  ASSIGN_OR_RETURN(bool at_end, delta_.AtEnd());
  if (!at_end) return Corruption("delta: bytes after the trailer");
  Digest rebuilt = out.FinishDigest();
  if (out.bytes() != h.target_length || rebuilt != h.target) {
    return Corruption("rebuilt layer is " + rebuilt.ToString() + " (" +
                      std::to_string(out.bytes()) + " bytes), not " + h.target.ToString() + " (" +
                      std::to_string(h.target_length) + " bytes)");
  }
  return Status::Ok();
}

// The applier's buffers of megabytes (prefixes, zstd windows, old regions)
// must go back to the system when freed, or the phases' peaks add up. glibc
// maps such blocks, but after the first one is freed it raises its mmap
// threshold and serves the next from a heap that keeps its pages: a fixed
// threshold keeps every block of 1 MiB or more mapped (for the whole process).
void ReturnLargeBuffersWhenFreed() {
  static std::once_flag once;
  std::call_once(once, [] { ::mallopt(M_MMAP_THRESHOLD, 1 << 20); });
}

Result<DeltaHeader> Applier::Run(const std::string& out_path, const Digest* expected_target) {
  ReturnLargeBuffersWhenFreed();
  ASSIGN_OR_RETURN(wire_, ReadWire(delta_));
  RETURN_IF_ERROR(CheckLimits(expected_target));
  ASSIGN_OR_RETURN(LayerTrees trees, LayerTrees::Open(store_, wire_.header.bases));
  trees_ = std::move(trees);
  ASSIGN_OR_RETURN(auto recipe, OutputFile::Create(store_.env(), out_path + ".recipe.partial"));
  RETURN_IF_ERROR(DecodeRecipe(*recipe));
  ASSIGN_OR_RETURN(auto literals, OutputFile::Create(store_.env(), out_path + ".literal.partial"));
  RETURN_IF_ERROR(DecodeLiterals(*literals));
  if (::lseek(recipe->fd(), 0, SEEK_SET) != 0 || ::lseek(literals->fd(), 0, SEEK_SET) != 0) {
    return IOErrorFromErrno("seek", errno);
  }
  ASSIGN_OR_RETURN(auto out, OutputFile::Create(store_.env(), out_path + ".partial"));
  patcher_.emplace(wire_.header.window_log);
  RETURN_IF_ERROR(Rebuild(recipe->fd(), literals->fd(), *out));
  RETURN_IF_ERROR(CheckEnd(*out));
  RETURN_IF_ERROR(out->Commit(out_path));
  return wire_.header;
}

}  // namespace

Result<DeltaHeader> ReadDeltaHeader(ByteSource& delta) {
  StreamReader reader = SourceReader(delta);
  ASSIGN_OR_RETURN(WireHeader wire, ReadWire(reader));
  return wire.header;
}

Result<DeltaHeader> ReadDeltaHeaderFile(const std::string& delta_path) {
  ASSIGN_OR_RETURN(auto source, OpenFileSource(delta_path));
  return ReadDeltaHeader(*source).WithContext(delta_path);
}

Result<DeltaHeader> ApplyDeltaToFile(LayerStore& store, ByteSource& delta,
                                     const std::string& out_path, const DeltaApplyOptions& options,
                                     const Digest* expected_target) {
  Applier applier(store, delta, options);
  return applier.Run(out_path, expected_target).WithContext("apply delta");
}

Result<LayerInfo> ApplyDeltaToStore(LayerStore& store, ByteSource& delta,
                                    const DeltaApplyOptions& options,
                                    const Digest* expected_target) {
  if (options.temp_dir.empty()) return InvalidArgument("apply delta: no temp_dir given");
  const std::string tar_path = options.temp_dir + "/delta-apply.tar";
  ASSIGN_OR_RETURN(DeltaHeader header,
                   ApplyDeltaToFile(store, delta, tar_path, options, expected_target));
  auto layer = [&]() -> Result<LayerInfo> {
    ASSIGN_OR_RETURN(auto tar, OpenFileSource(tar_path));
    return store.UnpackLayer(*tar, header.target, header.target_length, options.unpack,
                             options.progress);
  }();
  store.env().Unlink(tar_path).IgnoreError();
  return layer;
}

}  // namespace flotilla::layerstore
