#include "layerstore/tar_split.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "layerstore/safe_path.h"
#include "layerstore/varint.h"

namespace flotilla::layerstore {
namespace {

constexpr char kMagic[] = "FLTSPLIT\x01";
constexpr size_t kMagicSize = 9;
constexpr uint8_t kEnd = 0, kRaw = 1, kFile = 2;

}  // namespace

TarSplitWriter::TarSplitWriter(WritableFile& file) : file_(file) {
  ZstdCompressOptions options;
  options.level = 3;  // headers compress ~10x at level 3; higher levels cost CPU a Pi lacks
  compressor_ = std::make_unique<ZstdCompressor>(
      options, [this](ByteSpan bytes) { return file_.Append(bytes); });
  raw_.reserve(kMaxRawRecord);
  sink_status_ = Emit(AsBytes(std::string_view(kMagic, kMagicSize)));
}

TarSplitWriter::~TarSplitWriter() = default;

Status TarSplitWriter::Emit(ByteSpan bytes) {
  logical_bytes_ += bytes.size();
  return compressor_->Write(bytes);
}

Status TarSplitWriter::FlushRaw() {
  if (raw_.empty()) return Status::Ok();
  Bytes head{kRaw};
  PutVarint(head, raw_.size());
  RETURN_IF_ERROR(Emit(head));
  RETURN_IF_ERROR(Emit(raw_));
  raw_.clear();
  return Status::Ok();
}

Status TarSplitWriter::AddRaw(ByteSpan bytes) {
  RETURN_IF_ERROR(sink_status_);
  while (!bytes.empty()) {
    size_t take = std::min(bytes.size(), kMaxRawRecord - raw_.size());
    raw_.insert(raw_.end(), bytes.begin(), bytes.begin() + take);
    bytes = bytes.subspan(take);
    if (raw_.size() == kMaxRawRecord) RETURN_IF_ERROR(FlushRaw());
  }
  return Status::Ok();
}

Status TarSplitWriter::AddFile(uint64_t size, std::string_view path) {
  RETURN_IF_ERROR(sink_status_);
  RETURN_IF_ERROR(FlushRaw());
  Bytes rec{kFile};
  PutVarint(rec, size);
  PutLengthPrefixed(rec, path);
  return Emit(rec);
}

Status TarSplitWriter::Finish(uint64_t tar_length, const Digest& diff_id) {
  RETURN_IF_ERROR(sink_status_);
  RETURN_IF_ERROR(FlushRaw());
  Bytes rec{kEnd};
  PutVarint(rec, tar_length);
  rec.insert(rec.end(), diff_id.bytes().begin(), diff_id.bytes().end());
  RETURN_IF_ERROR(Emit(rec));
  return compressor_->Finish();
}

namespace {

// Incremental parser over the decompressed stream.
class TarSplitParser {
 public:
  explicit TarSplitParser(const TarSplitVisitor& visitor) : visitor_(visitor) {}

  Status Feed(ByteSpan chunk) {
    buffer_.insert(buffer_.end(), chunk.begin(), chunk.end());
    size_t pos = 0;
    for (;;) {
      ASSIGN_OR_RETURN(bool progressed, ParseOne(pos));
      if (!progressed) break;
    }
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(pos));
    if (buffer_.size() > kMaxRawRecord + kMaxPathBytes + 64) {
      return Corruption("tar-split: record larger than allowed");
    }
    return Status::Ok();
  }

  Result<TarSplitEnd> Done() const {
    if (!end_ || !buffer_.empty()) return Corruption("tar-split: file ends without END record");
    return *end_;
  }

 private:
  // Parses one record at buffer_[pos]; advances pos and returns true if complete.
  Result<bool> ParseOne(size_t& pos) {
    ByteSpan data(buffer_);
    if (!magic_seen_) {
      if (data.size() - pos < kMagicSize) return false;
      if (std::memcmp(data.data() + pos, kMagic, kMagicSize) != 0) {
        return Corruption("tar-split: bad magic or version");
      }
      pos += kMagicSize;
      magic_seen_ = true;
      return true;
    }
    if (pos >= data.size()) return false;
    if (end_) return Corruption("tar-split: data after END record");
    size_t p = pos + 1;
    uint8_t type = data[pos];
    ASSIGN_OR_RETURN(auto first, ParseVarint(data, p));
    if (!first) return false;
    if (type == kEnd) {
      if (data.size() - p < Digest::kSize) return false;
      ASSIGN_OR_RETURN(Digest d, Digest::FromBytes(data.subspan(p, Digest::kSize)));
      end_ = TarSplitEnd{*first, d};
      pos = p + Digest::kSize;
      return true;
    }
    if (type == kRaw) {
      if (*first > kMaxRawRecord) return Corruption("tar-split: RAW record too large");
      if (data.size() - p < *first) return false;
      RETURN_IF_ERROR(visitor_.on_raw(data.subspan(p, *first)));
      pos = p + *first;
      return true;
    }
    if (type != kFile) return Corruption("tar-split: unknown record type");
    ASSIGN_OR_RETURN(auto path_len, ParseVarint(data, p));
    if (!path_len) return false;
    if (*path_len > kMaxPathBytes) return Corruption("tar-split: path too long");
    if (data.size() - p < *path_len) return false;
    std::string_view path = AsStringView(data.subspan(p, *path_len));
    RETURN_IF_ERROR(visitor_.on_file(*first, path));
    pos = p + *path_len;
    return true;
  }

  const TarSplitVisitor& visitor_;
  Bytes buffer_;
  bool magic_seen_ = false;
  std::optional<TarSplitEnd> end_;
};

}  // namespace

Result<TarSplitEnd> ReadTarSplit(int fd, uint64_t max_logical_bytes,
                                 const TarSplitVisitor& visitor) {
  TarSplitParser parser(visitor);
  ZstdDecompressOptions options;
  options.max_output_bytes = max_logical_bytes;
  ZstdDecompressor decompressor(options, [&](ByteSpan chunk) { return parser.Feed(chunk); });
  Bytes buffer(128 * 1024);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd, buffer).WithContext("tar-split"));
    if (n == 0) break;
    RETURN_IF_ERROR(decompressor.Write(ByteSpan(buffer.data(), n)));
  }
  RETURN_IF_ERROR(decompressor.Finish());
  return parser.Done();
}

}  // namespace flotilla::layerstore
