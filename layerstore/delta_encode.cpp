// The delta encoder (docs/delta.md): tracker side.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "core/clock.h"
#include "layerstore/delta.h"
#include "layerstore/delta_filter.h"
#include "layerstore/delta_format.h"
#include "layerstore/delta_literals.h"
#include "layerstore/delta_zstd.h"

namespace flotilla::layerstore {
namespace {

using namespace delta_internal;  // NOLINT: the codec's own internals

// Files this small are not worth a patch frame: the literal stream carries them.
constexpr uint64_t kMinPatchSize = 64;
// A literal frame holds at most this many content bytes (the encoder keeps a
// frame in memory); more files of one kind start another frame.
constexpr uint64_t kMaxFrameContent = 32 << 20;

struct BaseFile {
  uint32_t base = 0;
  uint64_t position = 0;  // among the files with content of its layer, in tar-split order
  std::string path;
  uint64_t size = 0;
  std::optional<Digest> hash;
  std::optional<ContentKind> kind;
  FilterSpec filter;  // its branch filter in a prefix
};

struct TargetFile {
  Bytes raw_before;  // raw tar bytes between the previous file and this one
  std::string path;
  uint64_t size = 0;
  OpType op = kOpLiteral;
  uint32_t base = 0;
  std::string source;  // "" = the same path
  uint64_t old_size = 0;
  FilterSpec filter;      // PATCH, LITERAL: the file's branch filter
  FilterSpec old_filter;  // PATCH: the source file's
  Bytes patch;            // PATCH: varint-framed zstd frames
  uint64_t frame = 0;     // LITERAL: the literal frame holding the content
};

// One frame of the literal section being built.
struct LiteralFrame {
  ContentKind kind = ContentKind::kText;
  std::vector<const TargetFile*> files;
  Bytes section_bytes;  // head + zstd frame
  DeltaLiteralFrameStats stats;
};

// The path with every run of digits replaced by '#': "libc.so.6.1" -> "libc.so.#.#".
std::string Shape(std::string_view path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    bool digit = path[i] >= '0' && path[i] <= '9';
    if (!digit) {
      out.push_back(path[i]);
    } else if (out.empty() || out.back() != '#') {
      out.push_back('#');
    }
  }
  return out;
}

// Runs work(0..count-1) on `threads` executors (inline when threads <= 1);
// returns the first error.
Status RunParallel(size_t count, int threads, const std::function<Status(size_t)>& work) {
  if (threads <= 1 || count <= 1) {
    for (size_t i = 0; i < count; ++i) RETURN_IF_ERROR(work(i));
    return Status::Ok();
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable done_cv;
  int running = threads;
  Status first_error;
  {
    std::vector<std::unique_ptr<ThreadExecutor>> pool;
    for (int t = 0; t < threads; ++t) {
      pool.push_back(std::make_unique<ThreadExecutor>());
      pool.back()->Post([&] {
        for (size_t i; (i = next.fetch_add(1)) < count;) {
          Status st = work(i);
          if (!st.ok()) {
            std::lock_guard lock(mu);
            if (first_error.ok()) first_error = st;
            next = count;
          }
        }
        std::lock_guard lock(mu);
        if (--running == 0) done_cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    done_cv.wait(lock, [&] { return running == 0; });
  }
  return first_error;
}

class Encoder {
 public:
  Encoder(LayerStore& store, std::vector<Digest> bases, Digest target, DeltaEncodeOptions options)
      : store_(store), bases_(std::move(bases)), target_(target), options_(options) {}

  Result<DeltaEncodeStats> Run(const std::string& out_path);

 private:
  Status CheckArguments() const;
  Status IndexBases();
  Status ReadTarget();
  Result<std::optional<Digest>> BaseHash(size_t index);
  Status ChooseOp(TargetFile& file);
  std::optional<size_t> PatchSource(const TargetFile& file) const;
  Status MakePatch(TargetFile& file) const;
  // The kind of a file and the branch filter it calls for.
  struct Sniffed {
    ContentKind kind;
    FilterSpec filter;
  };
  Result<Sniffed> Sniff(size_t layer, std::string_view path, uint64_t size) const;
  Status PlanLiteralFrames();
  Status CompressFrame(LiteralFrame& frame) const;
  Result<Bytes> CompressRecipe(WireHeader& wire);
  Status Assemble(const std::string& out_path, WireHeader& wire, const Bytes& recipe);

  LayerStore& store_;
  std::vector<Digest> bases_;
  Digest target_;
  DeltaEncodeOptions options_;
  std::optional<LayerTrees> trees_;  // bases, then the target
  std::vector<BaseFile> base_files_;
  std::unordered_map<std::string, std::vector<size_t>> by_path_;
  std::unordered_map<std::string, std::vector<size_t>> by_shape_;
  std::unordered_map<uint64_t, std::vector<size_t>> by_size_;
  std::vector<TargetFile> files_;
  std::vector<LiteralFrame> frames_;
  Bytes trailing_raw_;
  uint64_t target_length_ = 0;
  uint32_t prefix_base_ = 0;
  DeltaEncodeStats stats_;
};

Status Encoder::CheckArguments() const {
  if (bases_.empty()) return InvalidArgument("a delta needs at least one base");
  if (bases_.size() > kMaxBases) return InvalidArgument("too many bases");
  for (size_t i = 0; i < bases_.size(); ++i) {
    if (bases_[i] == target_) return InvalidArgument("the target is also a base");
    if (std::find(bases_.begin(), bases_.begin() + i, bases_[i]) != bases_.begin() + i) {
      return InvalidArgument("base " + bases_[i].ToString() + " given twice");
    }
  }
  if (options_.window_log < kMinDeltaWindowLog || options_.window_log > kMaxDeltaWindowLog) {
    return InvalidArgument("window log must be in " + std::to_string(kMinDeltaWindowLog) + ".." +
                           std::to_string(kMaxDeltaWindowLog));
  }
  if (options_.level < 1 || options_.level > 22) return InvalidArgument("level must be 1..22");
  if (options_.threads < 0 || options_.threads > 64)
    return InvalidArgument("threads must be 0..64");
  return Status::Ok();
}

Status Encoder::IndexBases() {
  for (uint32_t b = 0; b < bases_.size(); ++b) {
    uint64_t position = 0;
    RETURN_IF_ERROR(VisitLayerSplit(
        store_, bases_[b], [](ByteSpan) { return Status::Ok(); },
        [&](uint64_t size, std::string_view path) -> Status {
          size_t index = base_files_.size();
          base_files_.push_back(BaseFile{b, position++, std::string(path), size});
          by_path_[std::string(path)].push_back(index);
          by_shape_[Shape(path)].push_back(index);
          by_size_[size].push_back(index);
          return Status::Ok();
        }));
  }
  return Status::Ok();
}

Status Encoder::ReadTarget() {
  ASSIGN_OR_RETURN(auto info, store_.FindLayer(target_));
  if (info) target_length_ = info->length;
  Bytes raw;
  RETURN_IF_ERROR(VisitLayerSplit(
      store_, target_,
      [&](ByteSpan bytes) {
        raw.insert(raw.end(), bytes.begin(), bytes.end());
        return Status::Ok();
      },
      [&](uint64_t size, std::string_view path) {
        files_.push_back(TargetFile{std::move(raw), std::string(path), size});
        raw.clear();
        return Status::Ok();
      }));
  trailing_raw_ = std::move(raw);
  // The recipe's prefix is the base sharing the most paths with the target.
  std::vector<size_t> shared(bases_.size());
  for (const TargetFile& f : files_) {
    auto it = by_path_.find(f.path);
    if (it == by_path_.end()) continue;
    std::vector<bool> seen(bases_.size());
    for (size_t i : it->second) seen[base_files_[i].base] = true;
    for (size_t b = 0; b < bases_.size(); ++b) shared[b] += seen[b];
  }
  for (uint32_t b = 0; b < bases_.size(); ++b) {
    if (shared[b] >= shared[prefix_base_]) prefix_base_ = b;
  }
  return Status::Ok();
}

Result<std::optional<Digest>> Encoder::BaseHash(size_t index) {
  BaseFile& f = base_files_[index];
  if (!f.hash) {
    ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(f.base, f.path, f.size));
    ASSIGN_OR_RETURN(Digest digest, HashFd(fd.get()));
    f.hash = digest;
  }
  return f.hash;
}

Status Encoder::ChooseOp(TargetFile& file) {
  ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(bases_.size(), file.path, file.size));
  ASSIGN_OR_RETURN(Digest hash, HashFd(fd.get()));
  std::vector<size_t> candidates;
  if (auto it = by_path_.find(file.path); it != by_path_.end()) candidates = it->second;
  // The prefix base first: its COPY ops are the ones the prefix already spells.
  std::stable_partition(candidates.begin(), candidates.end(),
                        [&](size_t i) { return base_files_[i].base == prefix_base_; });
  if (auto it = by_size_.find(file.size); it != by_size_.end()) {
    candidates.insert(candidates.end(), it->second.begin(), it->second.end());
  }
  for (size_t i : candidates) {
    if (base_files_[i].size != file.size) continue;
    ASSIGN_OR_RETURN(auto base_hash, BaseHash(i));
    if (base_hash != hash) continue;
    file.op = kOpCopy;
    file.base = base_files_[i].base;
    file.source = base_files_[i].path == file.path ? "" : base_files_[i].path;
    return Status::Ok();
  }
  if (auto source = PatchSource(file)) {
    file.op = kOpPatch;
    file.base = base_files_[*source].base;
    file.source = base_files_[*source].path == file.path ? "" : base_files_[*source].path;
    file.old_size = base_files_[*source].size;
  }
  return Status::Ok();
}

std::optional<size_t> Encoder::PatchSource(const TargetFile& file) const {
  if (file.size < kMinPatchSize) return std::nullopt;
  auto closest = [&](const std::vector<size_t>& list) -> std::optional<size_t> {
    std::optional<size_t> best;
    auto distance = [&](size_t i) {
      uint64_t s = base_files_[i].size;
      return s > file.size ? s - file.size : file.size - s;
    };
    for (size_t i : list) {
      if (base_files_[i].size < kMinPatchSize) continue;
      if (!best || distance(i) < distance(*best)) best = i;
    }
    return best;
  };
  if (auto it = by_path_.find(file.path); it != by_path_.end()) {
    if (auto best = closest(it->second)) return best;
  }
  if (auto it = by_shape_.find(Shape(file.path)); it != by_shape_.end()) return closest(it->second);
  return std::nullopt;
}

Status Encoder::MakePatch(TargetFile& file) const {
  const std::string& old_path = file.source.empty() ? file.path : file.source;
  ASSIGN_OR_RETURN(UniqueFd old_fd, trees_->OpenRegular(file.base, old_path, file.old_size));
  ASSIGN_OR_RETURN(UniqueFd new_fd, trees_->OpenRegular(bases_.size(), file.path, file.size));
  ASSIGN_OR_RETURN(Sniffed target, Sniff(bases_.size(), file.path, file.size));
  ASSIGN_OR_RETURN(Sniffed old, Sniff(file.base, old_path, file.old_size));
  file.filter = target.filter;
  file.old_filter = old.filter;
  // A filtered file is filtered whole (the applier decodes it as one stream).
  Bytes filtered;
  if (file.filter.filter != BranchFilter::kNone) {
    filtered.resize(file.size);
    RETURN_IF_ERROR(PreadExact(new_fd.get(), filtered, 0));
    ApplyFilter(file.filter, 0, filtered, /*encode=*/true);
  }
  const uint64_t chunk = PatchChunkSize(options_.window_log);
  Bytes input, prefix;
  for (uint64_t k = 0; k * chunk < file.size; ++k) {
    input.resize(std::min(chunk, file.size - k * chunk));
    if (filtered.empty()) {
      RETURN_IF_ERROR(PreadExact(new_fd.get(), input, k * chunk));
    } else {
      std::copy_n(filtered.begin() + k * chunk, input.size(), input.begin());
    }
    Region region = PatchPrefixRegion(k, chunk, file.old_size);
    prefix.resize(region.end - region.begin);
    RETURN_IF_ERROR(PreadExact(old_fd.get(), prefix, region.begin));
    ApplyFilter(file.old_filter, region.begin, prefix, /*encode=*/true);
    ASSIGN_OR_RETURN(Bytes frame,
                     CompressWithPrefix(input, prefix, options_.level, options_.window_log));
    PutVarint(file.patch, frame.size());
    file.patch.insert(file.patch.end(), frame.begin(), frame.end());
  }
  return Status::Ok();
}

Result<Bytes> Encoder::CompressRecipe(WireHeader& wire) {
  Bytes recipe;
  RecipeWriter writer([&](ByteSpan b) {
    recipe.insert(recipe.end(), b.begin(), b.end());
    return Status::Ok();
  });
  for (const TargetFile& f : files_) {
    RETURN_IF_ERROR(writer.AddRaw(f.raw_before));
    RETURN_IF_ERROR(writer.AddFileHead(f.size, f.path));
    if (f.op == kOpCopy) RETURN_IF_ERROR(writer.AddOpCopy(f.base, f.source));
    if (f.op == kOpPatch) {
      RETURN_IF_ERROR(writer.AddOpPatch(f.base, f.source, f.old_size, f.filter, f.old_filter));
    }
    if (f.op == kOpLiteral) RETURN_IF_ERROR(writer.AddOpLiteral(f.frame, f.filter));
  }
  RETURN_IF_ERROR(writer.AddRaw(trailing_raw_));
  RETURN_IF_ERROR(writer.Finish());
  Bytes prefix;
  RETURN_IF_ERROR(SerializeBaseRecipe(store_, bases_[prefix_base_], prefix_base_, [&](ByteSpan b) {
    prefix.insert(prefix.end(), b.begin(), b.end());
    return Status::Ok();
  }));
  const size_t cap = size_t{1} << options_.window_log;
  if (prefix.size() > cap) prefix.erase(prefix.begin(), prefix.end() - cap);
  wire.prefix_base = prefix_base_;
  wire.prefix_length = prefix.size();
  wire.header.recipe_length = recipe.size();
  ASSIGN_OR_RETURN(Bytes compressed,
                   CompressWithPrefix(recipe, prefix, options_.level, options_.window_log));
  wire.header.recipe_bytes = compressed.size();
  return compressed;
}

Result<Encoder::Sniffed> Encoder::Sniff(size_t layer, std::string_view path, uint64_t size) const {
  ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(layer, path, size));
  Bytes head(std::min<uint64_t>(size, kClassifySample));
  RETURN_IF_ERROR(PreadExact(fd.get(), head, 0));
  return Sniffed{ClassifyContent(path, head),
                 options_.branch_filters ? FilterForElf(head, size) : FilterSpec{}};
}

// Sorts the LITERAL files into frames by kind (recipe order within a frame)
// and classifies the base files a prefix could use.
Status Encoder::PlanLiteralFrames() {
  std::vector<std::vector<TargetFile*>> by_kind(kContentKinds);
  for (TargetFile& f : files_) {
    // An empty file takes nothing from any frame: it names frame 0 and is
    // not framed (a delta whose literals are all empty has no frame at all).
    if (f.op != kOpLiteral || f.size == 0) continue;
    ASSIGN_OR_RETURN(Sniffed sniffed, Sniff(bases_.size(), f.path, f.size));
    f.filter = sniffed.filter;
    by_kind[static_cast<size_t>(sniffed.kind)].push_back(&f);
  }
  // A file of a quarter window or more gets a frame of its own: behind it, the
  // files after it would be too far from the prefix for zstd to reach it.
  const uint64_t big = uint64_t{1} << (options_.window_log - 2);
  for (int k = 0; k < kContentKinds; ++k) {
    // The frame this kind's small files go to (by index: a big file's frame
    // may come after it), and how much it holds.
    std::optional<size_t> small_frame;
    uint64_t content = 0;
    for (TargetFile* f : by_kind[k]) {
      if (f->size >= big) {
        frames_.push_back(LiteralFrame{static_cast<ContentKind>(k)});
        f->frame = frames_.size() - 1;
        frames_.back().files.push_back(f);
        continue;
      }
      if (!small_frame || (content + f->size > kMaxFrameContent && content > 0)) {
        frames_.push_back(LiteralFrame{static_cast<ContentKind>(k)});
        small_frame = frames_.size() - 1;
        content = 0;
      }
      f->frame = *small_frame;
      frames_[*small_frame].files.push_back(f);
      content += f->size;
    }
  }
  if (frames_.empty()) return Status::Ok();
  for (BaseFile& b : base_files_) {
    if (b.size < kMinPrefixPiece) continue;
    ASSIGN_OR_RETURN(Sniffed sniffed, Sniff(b.base, b.path, b.size));
    b.kind = sniffed.kind;
    b.filter = sniffed.filter;
  }
  return Status::Ok();
}

// The prefix a frame may use: the whole window, except for text, whose
// similar files are many and small (measured on the Debian corpus: half the
// window matches as much and names fewer extents).
uint64_t PrefixBudget(ContentKind kind, int window_log) {
  return uint64_t{1} << (kind == ContentKind::kText ? window_log - 1 : window_log);
}

Status Encoder::CompressFrame(LiteralFrame& frame) const {
  std::vector<std::string> paths;
  Bytes content;
  for (const TargetFile* f : frame.files) {
    paths.push_back(f->path);
    ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(bases_.size(), f->path, f->size));
    size_t at = content.size();
    content.resize(at + f->size);
    auto file = std::span(content).subspan(at);
    RETURN_IF_ERROR(PreadExact(fd.get(), file, 0));
    ApplyFilter(f->filter, 0, file, /*encode=*/true);
  }
  std::vector<PrefixCandidate> candidates;
  for (size_t i = 0; i < base_files_.size(); ++i) {
    if (base_files_[i].kind == frame.kind) {
      candidates.push_back({i, base_files_[i].path, base_files_[i].size});
    }
  }
  LiteralFrameHead head;
  head.kind = static_cast<uint8_t>(frame.kind);
  Bytes prefix;
  for (const ChosenPiece& piece :
       ChoosePrefix(frame.kind, paths, candidates, PrefixBudget(frame.kind, options_.window_log))) {
    const BaseFile& b = base_files_[piece.id];
    head.extents.push_back({b.base, b.position, 0, piece.length, b.filter});
    ASSIGN_OR_RETURN(UniqueFd fd, trees_->OpenRegular(b.base, b.path, b.size));
    size_t at = prefix.size();
    prefix.resize(at + piece.length);
    auto bytes = std::span(prefix).subspan(at);
    RETURN_IF_ERROR(PreadExact(fd.get(), bytes, 0));
    ApplyFilter(b.filter, 0, bytes, /*encode=*/true);
  }
  ASSIGN_OR_RETURN(Bytes compressed,
                   CompressWithPrefix(content, prefix, options_.level, options_.window_log));
  head.content_length = content.size();
  head.frame_bytes = compressed.size();
  EncodeLiteralFrameHead(head, frame.section_bytes);
  frame.section_bytes.insert(frame.section_bytes.end(), compressed.begin(), compressed.end());
  frame.stats = {ContentKindName(frame.kind), frame.files.size(), content.size(),
                 head.extents.size(),         prefix.size(),      frame.section_bytes.size()};
  return Status::Ok();
}

Status Encoder::Assemble(const std::string& out_path, WireHeader& wire, const Bytes& recipe) {
  for (const TargetFile& f : files_) wire.header.patch_bytes += f.patch.size();
  for (const LiteralFrame& frame : frames_) {
    wire.header.literal_length += frame.stats.input_bytes;
    wire.header.literal_bytes += frame.section_bytes.size();
  }
  wire.header.literal_frames = frames_.size();
  ASSIGN_OR_RETURN(auto out, OutputFile::Create(store_.env(), out_path + ".partial"));
  RETURN_IF_ERROR(out->Write(EncodeHeader(wire)));
  RETURN_IF_ERROR(out->Write(recipe));
  for (const LiteralFrame& frame : frames_) RETURN_IF_ERROR(out->Write(frame.section_bytes));
  for (const TargetFile& f : files_) RETURN_IF_ERROR(out->Write(f.patch));
  Digest checksum = out->FinishDigest();
  RETURN_IF_ERROR(out->Write(checksum.bytes()));
  wire.header.delta_length = out->bytes();
  return out->Commit(out_path);
}

Result<DeltaEncodeStats> Encoder::Run(const std::string& out_path) {
  RETURN_IF_ERROR(CheckArguments());
  std::vector<Digest> layers = bases_;
  layers.push_back(target_);
  ASSIGN_OR_RETURN(LayerTrees trees, LayerTrees::Open(store_, layers));
  trees_ = std::move(trees);
  RETURN_IF_ERROR(IndexBases());
  RETURN_IF_ERROR(ReadTarget());
  for (TargetFile& f : files_) RETURN_IF_ERROR(ChooseOp(f).WithContext(f.path));
  std::vector<TargetFile*> patched;
  for (TargetFile& f : files_) {
    if (f.op == kOpPatch) patched.push_back(&f);
  }
  RETURN_IF_ERROR(RunParallel(patched.size(), options_.threads,
                              [&](size_t i) { return MakePatch(*patched[i]); }));
  RETURN_IF_ERROR(PlanLiteralFrames());
  RETURN_IF_ERROR(RunParallel(frames_.size(), options_.threads,
                              [&](size_t i) { return CompressFrame(frames_[i]); }));
  WireHeader wire;
  wire.header.bases = bases_;
  wire.header.target = target_;
  wire.header.target_length = target_length_;
  wire.header.window_log = options_.window_log;
  ASSIGN_OR_RETURN(Bytes recipe, CompressRecipe(wire));
  RETURN_IF_ERROR(Assemble(out_path, wire, recipe));
  stats_.header = wire.header;
  stats_.files = files_.size();
  for (const TargetFile& f : files_) {
    stats_.copied_files += f.op == kOpCopy;
    stats_.patched_files += f.op == kOpPatch;
    if (f.op == kOpPatch) stats_.patched_input_bytes += f.size;
    stats_.literal_files += f.op == kOpLiteral;
    if (f.op == kOpLiteral) stats_.literal_input_bytes += f.size;
  }
  for (const LiteralFrame& frame : frames_) stats_.literal_frames.push_back(frame.stats);
  return stats_;
}

}  // namespace

Result<DeltaEncodeStats> EncodeDelta(LayerStore& store, const std::vector<Digest>& bases,
                                     const Digest& target, const std::string& out_path,
                                     const DeltaEncodeOptions& options) {
  Encoder encoder(store, bases, target, options);
  return encoder.Run(out_path).WithContext("delta " + target.ToString());
}

}  // namespace flotilla::layerstore
