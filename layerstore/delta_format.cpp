#include "layerstore/delta_format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/file_io.h"
#include "layerstore/safe_path.h"
#include "layerstore/tar_split.h"

namespace flotilla::layerstore::delta_internal {

Result<uint64_t> GetVarint(ByteSpan data, size_t& pos) {
  ASSIGN_OR_RETURN(auto value, ParseVarint(data, pos).WithContext("delta"));
  if (!value) return Corruption("delta: truncated varint");
  return *value;
}

void PutFilter(Bytes& out, const FilterSpec& spec) {
  out.push_back(static_cast<uint8_t>(spec.filter));
  if (spec.filter == BranchFilter::kNone) return;
  PutVarint(out, spec.start);
  PutVarint(out, spec.length);
}

namespace {

void PutDigest(Bytes& out, const Digest& digest) {
  out.insert(out.end(), digest.bytes().begin(), digest.bytes().end());
}

Result<Digest> GetDigest(ByteSpan data, size_t& pos) {
  if (data.size() - pos < Digest::kSize) return Corruption("delta: truncated digest");
  auto digest = Digest::FromBytes(data.subspan(pos, Digest::kSize));
  pos += Digest::kSize;
  return digest;
}

Status CheckWindow(int window_log) {
  if (window_log < kMinDeltaWindowLog || window_log > kMaxDeltaWindowLog) {
    return Corruption("delta: window log " + std::to_string(window_log) + " outside " +
                      std::to_string(kMinDeltaWindowLog) + ".." +
                      std::to_string(kMaxDeltaWindowLog));
  }
  return Status::Ok();
}

}  // namespace

Bytes EncodeHeader(const WireHeader& wire) {
  const DeltaHeader& h = wire.header;
  Bytes body;
  PutVarint(body, h.bases.size());
  for (const Digest& base : h.bases) PutDigest(body, base);
  PutDigest(body, h.target);
  PutVarint(body, h.target_length);
  body.push_back(static_cast<uint8_t>(h.window_log));
  PutVarint(body, wire.prefix_base);
  PutVarint(body, wire.prefix_length);
  PutVarint(body, h.recipe_length);
  PutVarint(body, h.recipe_bytes);
  PutVarint(body, h.literal_length);
  PutVarint(body, h.literal_bytes);
  PutVarint(body, h.literal_frames);
  PutVarint(body, h.patch_bytes);
  Bytes out(kMagic.begin(), kMagic.end());
  out.push_back(static_cast<uint8_t>(h.version));
  PutVarint(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Result<WireHeader> DecodeHeaderBody(ByteSpan body) {
  WireHeader wire;
  DeltaHeader& h = wire.header;
  size_t pos = 0;
  ASSIGN_OR_RETURN(uint64_t nbases, GetVarint(body, pos));
  if (nbases == 0 || nbases > kMaxBases) {
    return Corruption("delta: " + std::to_string(nbases) + " bases (1.." +
                      std::to_string(kMaxBases) + " allowed)");
  }
  for (uint64_t i = 0; i < nbases; ++i) {
    ASSIGN_OR_RETURN(Digest base, GetDigest(body, pos));
    if (std::find(h.bases.begin(), h.bases.end(), base) != h.bases.end()) {
      return Corruption("delta: base " + base.ToString() + " listed twice");
    }
    h.bases.push_back(base);
  }
  ASSIGN_OR_RETURN(h.target, GetDigest(body, pos));
  ASSIGN_OR_RETURN(h.target_length, GetVarint(body, pos));
  if (pos >= body.size()) return Corruption("delta: truncated header");
  h.window_log = body[pos++];
  RETURN_IF_ERROR(CheckWindow(h.window_log));
  ASSIGN_OR_RETURN(wire.prefix_base, GetVarint(body, pos));
  ASSIGN_OR_RETURN(wire.prefix_length, GetVarint(body, pos));
  ASSIGN_OR_RETURN(h.recipe_length, GetVarint(body, pos));
  ASSIGN_OR_RETURN(h.recipe_bytes, GetVarint(body, pos));
  ASSIGN_OR_RETURN(h.literal_length, GetVarint(body, pos));
  ASSIGN_OR_RETURN(h.literal_bytes, GetVarint(body, pos));
  ASSIGN_OR_RETURN(h.literal_frames, GetVarint(body, pos));
  ASSIGN_OR_RETURN(h.patch_bytes, GetVarint(body, pos));
  if (pos != body.size()) return Corruption("delta: header has trailing bytes");
  if (wire.prefix_base >= nbases) return Corruption("delta: prefix base out of range");
  if (h.literal_frames > kMaxLiteralFrames || (h.literal_frames == 0) != (h.literal_length == 0)) {
    return Corruption("delta: bad literal frame count");
  }
  if (wire.prefix_length > (uint64_t{1} << h.window_log)) {
    return Corruption("delta: recipe prefix larger than the window");
  }
  return wire;
}

Region PatchPrefixRegion(uint64_t chunk_index, uint64_t chunk_size, uint64_t old_size) {
  uint64_t start = chunk_index * chunk_size;
  uint64_t half = chunk_size / 2;
  Region r;
  r.begin = std::min(old_size, start > half ? start - half : 0);
  r.end = std::min(old_size, start + chunk_size + half);
  return r;
}

Status RecipeWriter::Emit(const Bytes& bytes) {
  bytes_ += bytes.size();
  return sink_(bytes);
}

Status RecipeWriter::FlushRaw() {
  size_t pos = 0;
  while (pos < raw_.size()) {
    size_t n = std::min(kMaxRawRecordBytes, raw_.size() - pos);
    Bytes record{kRecordRaw};
    PutVarint(record, n);
    record.insert(record.end(), raw_.begin() + pos, raw_.begin() + pos + n);
    RETURN_IF_ERROR(Emit(record));
    pos += n;
  }
  raw_.clear();
  return Status::Ok();
}

Status RecipeWriter::AddRaw(ByteSpan raw) {
  raw_.insert(raw_.end(), raw.begin(), raw.end());
  return Status::Ok();
}

Status RecipeWriter::AddFileHead(uint64_t size, std::string_view path) {
  RETURN_IF_ERROR(FlushRaw());
  Bytes record{kRecordFile};
  PutVarint(record, size);
  PutLengthPrefixed(record, path);
  return Emit(record);
}

Status RecipeWriter::AddOpCopy(uint64_t base, std::string_view source_path) {
  Bytes op{kOpCopy};
  PutVarint(op, base);
  PutLengthPrefixed(op, source_path);
  return Emit(op);
}

Status RecipeWriter::AddOpPatch(uint64_t base, std::string_view source_path, uint64_t old_size,
                                const FilterSpec& filter, const FilterSpec& old_filter) {
  Bytes op{kOpPatch};
  PutVarint(op, base);
  PutLengthPrefixed(op, source_path);
  PutVarint(op, old_size);
  PutFilter(op, filter);
  PutFilter(op, old_filter);
  return Emit(op);
}

Status RecipeWriter::AddOpLiteral(uint64_t frame, const FilterSpec& filter) {
  Bytes op{kOpLiteral};
  PutVarint(op, frame);
  PutFilter(op, filter);
  return Emit(op);
}

void EncodeLiteralFrameHead(const LiteralFrameHead& head, Bytes& out) {
  out.push_back(head.kind);
  PutVarint(out, head.extents.size());
  for (const PrefixExtent& e : head.extents) {
    PutVarint(out, e.base);
    PutVarint(out, e.file);
    PutVarint(out, e.offset);
    PutVarint(out, e.length);
    PutFilter(out, e.filter);
  }
  PutVarint(out, head.content_length);
  PutVarint(out, head.frame_bytes);
}

Status RecipeWriter::Finish() {
  RETURN_IF_ERROR(FlushRaw());
  return Emit(Bytes{kRecordEnd});
}

Status VisitLayerSplit(LayerStore& store, const Digest& layer,
                       const std::function<Status(ByteSpan)>& on_raw,
                       const std::function<Status(uint64_t, std::string_view)>& on_file) {
  ASSIGN_OR_RETURN(auto info, store.FindLayer(layer));
  if (!info || info->state != LayerState::kReady) {
    return NotFound("layer " + layer.ToString() + " is not a ready layer of the store");
  }
  ASSIGN_OR_RETURN(std::string tree, store.LayerTreePath(layer));
  std::string split_path = tree.substr(0, tree.rfind('/')) + "/tarsplit.zst";
  UniqueFd fd(::open(split_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open tar-split of " + layer.ToString(), errno);
  // The tar-split holds the tar's raw bytes plus, per file, a record of at most
  // a path's length and two varints.
  uint64_t bound = info->length + (info->entries + 1) * (kMaxPath + 32) + 1024;
  TarSplitVisitor visitor{on_raw, on_file};
  ASSIGN_OR_RETURN(TarSplitEnd end, ReadTarSplit(fd.get(), bound, visitor));
  if (end.diff_id != layer || end.tar_length != info->length) {
    return Corruption("tar-split of " + layer.ToString() + " names another layer");
  }
  return Status::Ok();
}

Status SerializeBaseRecipe(LayerStore& store, const Digest& layer, uint64_t base_index,
                           const std::function<Status(ByteSpan)>& sink) {
  RecipeWriter writer(sink);
  RETURN_IF_ERROR(VisitLayerSplit(
      store, layer, [&](ByteSpan raw) { return writer.AddRaw(raw); },
      [&](uint64_t size, std::string_view path) -> Status {
        RETURN_IF_ERROR(writer.AddFileHead(size, path));
        return writer.AddOpCopy(base_index, "");
      }));
  return writer.Finish();
}

Result<Bytes> BaseRecipeTail(LayerStore& store, const Digest& layer, uint64_t base_index,
                             uint64_t length) {
  uint64_t total = 0;
  RETURN_IF_ERROR(SerializeBaseRecipe(store, layer, base_index, [&](ByteSpan b) {
    total += b.size();
    return Status::Ok();
  }));
  if (total < length) {
    return Corruption("base " + layer.ToString() + " is not the layer the delta was made from");
  }
  Bytes tail;
  tail.reserve(length);
  uint64_t skip = total - length;
  RETURN_IF_ERROR(SerializeBaseRecipe(store, layer, base_index, [&](ByteSpan b) {
    uint64_t drop = std::min<uint64_t>(skip, b.size());
    skip -= drop;
    tail.insert(tail.end(), b.begin() + drop, b.end());
    return Status::Ok();
  }));
  return tail;
}

Result<LayerTrees> LayerTrees::Open(LayerStore& store, const std::vector<Digest>& layers) {
  LayerTrees trees;
  for (const Digest& layer : layers) {
    ASSIGN_OR_RETURN(auto info, store.FindLayer(layer));
    if (!info || info->state != LayerState::kReady) {
      return NotFound("layer " + layer.ToString() + " is not a ready layer of the store");
    }
    ASSIGN_OR_RETURN(std::string path, store.LayerTreePath(layer));
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return IOErrorFromErrno("open tree of " + layer.ToString(), errno);
    trees.layers_.push_back(layer);
    trees.trees_.push_back(std::move(fd));
  }
  return trees;
}

Result<UniqueFd> LayerTrees::OpenRegular(size_t index, std::string_view path,
                                         std::optional<uint64_t> expected_size) const {
  std::string where = "file '" + std::string(path) + "' of " + layers_.at(index).ToString();
  auto normalized = NormalizeRelativePath(path);
  if (!normalized.ok()) return Corruption(where + ": " + normalized.status().message());
  auto fd = OpenInRoot(trees_[index].get(), *normalized, O_RDONLY);
  if (!fd.ok()) return Corruption(where + ": " + fd.status().message());
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return IOErrorFromErrno("stat " + where, errno);
  if (!S_ISREG(st.st_mode)) return Corruption(where + " is not a regular file");
  if (expected_size && static_cast<uint64_t>(st.st_size) != *expected_size) {
    return Corruption(where + " is " + std::to_string(st.st_size) + " bytes, not " +
                      std::to_string(*expected_size));
  }
  return std::move(fd).value();
}

inline constexpr size_t kIoBuffer = 256 * 1024;

Result<std::unique_ptr<OutputFile>> OutputFile::Create(Env& env, const std::string& temp_path) {
  ASSIGN_OR_RETURN(auto file, env.OpenForWrite(temp_path, OpenMode::kTruncate, 0644));
  return std::unique_ptr<OutputFile>(new OutputFile(env, temp_path, std::move(file)));
}

OutputFile::~OutputFile() {
  if (committed_) return;
  file_.reset();
  env_.Unlink(path_).IgnoreError();
}

Status OutputFile::Write(ByteSpan bytes) {
  hasher_.Update(bytes);
  bytes_ += bytes.size();
  if (buffer_.size() + bytes.size() > kIoBuffer) RETURN_IF_ERROR(Flush());
  if (bytes.size() >= kIoBuffer) {
    buffer_.assign(bytes.begin(), bytes.end());
    return Flush();
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return Status::Ok();
}

Status OutputFile::Flush() {
  RETURN_IF_ERROR(file_->Append(buffer_));
  buffer_.clear();
  return Status::Ok();
}

Status OutputFile::Commit(const std::string& final_path) {
  RETURN_IF_ERROR(Flush());
  RETURN_IF_ERROR(file_->Sync());
  RETURN_IF_ERROR(file_->Close());
  RETURN_IF_ERROR(env_.Rename(path_, final_path));
  committed_ = true;
  size_t slash = final_path.rfind('/');
  return env_.SyncDir(slash == std::string::npos ? "." : final_path.substr(0, slash));
}

Status CopyFd(int fd, uint64_t length, const std::function<Status(ByteSpan)>& sink) {
  Bytes buffer(std::min<uint64_t>(length, kIoBuffer / 2));
  for (uint64_t left = length; left > 0;) {
    auto piece = std::span(buffer).first(std::min<uint64_t>(left, buffer.size()));
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd, piece));
    if (n == 0) return Corruption("file shorter than expected");
    RETURN_IF_ERROR(sink(piece.first(n)));
    left -= n;
  }
  return Status::Ok();
}

}  // namespace flotilla::layerstore::delta_internal
