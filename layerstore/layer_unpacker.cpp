#include "layerstore/layer_unpacker.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "layerstore/tar_split.h"
#include "layerstore/tree_writer.h"

namespace flotilla::layerstore {
namespace {

constexpr uint64_t kMaxTrailingBytes = 16 << 20;
constexpr uint64_t kProgressEvery = 8 << 20;

// Reads the tar stream for libarchive while hashing it and keeping every byte
// that is not file content, so the tar-split can record it verbatim.
//
// Stream offsets: libarchive's archive_filter_bytes(a, 0) is the offset the
// tar reader consumed up to; after a header it is where the entry's content
// starts. Bytes in [recorded_upto_, fetched_end_) are buffered in pending_,
// except content ranges, which are skipped.
class TeeReader {
 public:
  TeeReader(ByteSource& source, const UnpackLimits& limits, const BytesProgress& progress)
      : source_(source), limits_(limits), progress_(progress), buffer_(256 * 1024) {}

  static la_ssize_t Callback(archive* a, void* ctx, const void** out) {
    auto* self = static_cast<TeeReader*>(ctx);
    auto n = self->Fetch();
    if (!n.ok()) {
      self->error_ = n.status();
      archive_set_error(a, EIO, "%s", n.status().message().c_str());
      return -1;
    }
    *out = self->buffer_.data();
    return static_cast<la_ssize_t>(*n);
  }

  Result<size_t> Fetch() {
    ASSIGN_OR_RETURN(size_t n, source_.Read(buffer_));
    if (fetched_end_ + n > limits_.max_length ||
        (limits_.expected_length && fetched_end_ + n > *limits_.expected_length)) {
      return ResourceExhausted(
          "layer stream is longer than the " +
          std::to_string(limits_.expected_length.value_or(limits_.max_length)) + " bytes allowed");
    }
    hasher_.Update(ByteSpan(buffer_.data(), n));
    Keep(ByteSpan(buffer_.data(), n));
    fetched_end_ += n;
    if (progress_ && fetched_end_ - last_progress_ >= kProgressEvery) {
      last_progress_ = fetched_end_;
      progress_(fetched_end_);
    }
    return n;
  }

  // Returns the raw bytes [recorded_upto_, upto) and forgets them.
  Result<ByteSpan> TakeRaw(uint64_t upto) {
    if (upto < recorded_upto_ || upto > fetched_end_ ||
        (upto > recorded_upto_ && pending_base_ != recorded_upto_)) {
      return Internal("tar stream offsets out of order");
    }
    size_t n = static_cast<size_t>(upto - recorded_upto_);
    ByteSpan raw(pending_.data() + pending_start_, n);
    Drop(n);
    recorded_upto_ = upto;
    return raw;
  }

  // Marks [recorded_upto_, recorded_upto_ + n) as file content, not kept.
  void SkipContent(uint64_t n) {
    keep_from_ = recorded_upto_ + n;
    uint64_t buffered = fetched_end_ - recorded_upto_;
    Drop(static_cast<size_t>(std::min<uint64_t>(n, buffered)));
    if (n > buffered) pending_base_ = keep_from_;
    recorded_upto_ += n;
  }

  // Reads the rest of the stream after the end-of-archive marker and returns
  // every byte not yet recorded.
  Result<ByteSpan> TakeTrailer() {
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, Fetch());
      if (n == 0) break;
      if (fetched_end_ - recorded_upto_ > kMaxTrailingBytes) {
        return Corruption("layer has more than 16 MiB of data after its end-of-archive marker");
      }
    }
    return TakeRaw(fetched_end_);
  }

  Digest FinishDigest() { return hasher_.Finish(); }
  uint64_t length() const { return fetched_end_; }
  const Status& error() const { return error_; }

 private:
  void Keep(ByteSpan bytes) {
    uint64_t begin = fetched_end_;
    if (begin + bytes.size() <= keep_from_) return;
    uint64_t from = std::max(begin, keep_from_);
    if (pending_start_ == pending_.size()) {
      pending_.clear();
      pending_start_ = 0;
      pending_base_ = from;
    }
    pending_.insert(pending_.end(), bytes.begin() + static_cast<ptrdiff_t>(from - begin),
                    bytes.end());
  }

  void Drop(size_t n) {
    pending_start_ += n;
    pending_base_ += n;
    if (pending_start_ > (1u << 20) && pending_start_ * 2 > pending_.size()) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_start_));
      pending_start_ = 0;
    }
  }

  ByteSource& source_;
  const UnpackLimits& limits_;
  const BytesProgress& progress_;
  std::vector<uint8_t> buffer_;
  Sha256Hasher hasher_;
  Status error_;
  uint64_t fetched_end_ = 0;
  uint64_t recorded_upto_ = 0;
  uint64_t keep_from_ = 0;
  uint64_t last_progress_ = 0;
  Bytes pending_;
  size_t pending_start_ = 0;
  uint64_t pending_base_ = 0;
};

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

Status ArchiveError(archive* a, const TeeReader& tee, std::string_view what) {
  if (!tee.error().ok()) return tee.error();
  const char* msg = archive_error_string(a);
  return Corruption(std::string(what) + ": " + (msg ? msg : "malformed tar"));
}

Status CheckExpectations(const UnpackLimits& limits, const UnpackResult& result) {
  if (limits.expected_length && result.length != *limits.expected_length) {
    return Corruption("layer is " + std::to_string(result.length) + " bytes, expected " +
                      std::to_string(*limits.expected_length));
  }
  if (limits.expected_diff_id && result.diff_id != *limits.expected_diff_id) {
    return Corruption("layer digest " + result.diff_id.ToString() + " does not match " +
                      limits.expected_diff_id->ToString());
  }
  return Status::Ok();
}

}  // namespace

Result<UnpackResult> UnpackLayerTar(ByteSource& source, Env& env, int tree_fd,
                                    WritableFile& tarsplit, const UnpackLimits& limits,
                                    const BytesProgress& progress) {
  TeeReader tee(source, limits, progress);
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return ResourceExhausted("libarchive: out of memory");
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &tee, nullptr, &TeeReader::Callback, nullptr) != ARCHIVE_OK) {
    return ArchiveError(a.get(), tee, "open layer tar");
  }
  TarSplitWriter split(tarsplit);
  TreeWriter tree(env, tree_fd, limits.allow_devices);
  UnpackResult result;
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return ArchiveError(a.get(), tee, "read layer tar entry " + std::to_string(result.entries));
    }
    if (++result.entries > limits.max_entries) {
      return ResourceExhausted("layer has more than " + std::to_string(limits.max_entries) +
                               " entries");
    }
    ASSIGN_OR_RETURN(ByteSpan raw, tee.TakeRaw(archive_filter_bytes(a.get(), 0)));
    RETURN_IF_ERROR(split.AddRaw(raw));
    std::string content_path;
    uint64_t content_bytes = 0;
    // A file's content goes to the tree, not to the tar-split: stop keeping
    // stream bytes before libarchive reads it, so memory does not grow with
    // the size of the largest file.
    bool content_skipped = false;
    Status written =
        tree.WriteEntry(a.get(), entry, content_path, content_bytes, [&](uint64_t declared) {
          tee.SkipContent(declared);
          content_skipped = true;
        });
    // A failure of the stream itself (a bound, a digest) explains more than libarchive's echo.
    if (!tee.error().ok()) return tee.error();
    RETURN_IF_ERROR(written);
    if (!content_path.empty()) {
      RETURN_IF_ERROR(split.AddFile(content_bytes, content_path));
      if (!content_skipped) tee.SkipContent(content_bytes);
    }
  }
  ASSIGN_OR_RETURN(ByteSpan trailer, tee.TakeTrailer());
  RETURN_IF_ERROR(split.AddRaw(trailer));
  RETURN_IF_ERROR(tree.Finish());
  result.length = tee.length();
  result.diff_id = tee.FinishDigest();
  RETURN_IF_ERROR(CheckExpectations(limits, result));
  RETURN_IF_ERROR(split.Finish(result.length, result.diff_id));
  result.tarsplit_logical_bytes = split.logical_bytes();
  return result;
}

}  // namespace flotilla::layerstore
