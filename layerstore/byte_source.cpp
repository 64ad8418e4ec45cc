#include "layerstore/byte_source.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "core/fd.h"

namespace flotilla::layerstore {

Result<size_t> FdByteSource::Read(std::span<uint8_t> out) { return ReadSome(fd_, out); }

Result<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return IOErrorFromErrno("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return InvalidArgument(path + " is not a regular file");
  }
  return std::unique_ptr<ByteSource>(new FdByteSource(std::move(fd)));
}

Result<size_t> MemoryByteSource::Read(std::span<uint8_t> out) {
  size_t n = std::min(out.size(), data_.size() - offset_);
  std::copy_n(data_.data() + offset_, n, out.data());
  offset_ += n;
  return n;
}

Result<size_t> HashingByteSource::Read(std::span<uint8_t> out) {
  ASSIGN_OR_RETURN(size_t n, inner_.Read(out));
  if (bytes_ + n > max_bytes_) {
    return ResourceExhausted("stream is longer than the " + std::to_string(max_bytes_) +
                             " bytes it was promised to be");
  }
  bytes_ += n;
  hasher_.Update(ByteSpan(out.data(), n));
  return n;
}

Result<Digest> HashingByteSource::DrainAndFinish() {
  std::vector<uint8_t> buffer(64 * 1024);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, Read(buffer));
    if (n == 0) break;
  }
  return hasher_.Finish();
}

struct DecompressingByteSource::State {
  ByteSource* compressed = nullptr;
  uint64_t max_output = 0;
  uint64_t produced = 0;
  Status inner_error;
  std::vector<uint8_t> buffer = std::vector<uint8_t>(256 * 1024);
  archive* reader = nullptr;
  bool ended = false;

  ~State() {
    if (reader != nullptr) archive_read_free(reader);
  }

  static la_ssize_t ReadCallback(archive* a, void* ctx, const void** out) {
    auto* s = static_cast<State*>(ctx);
    auto n = s->compressed->Read(s->buffer);
    if (!n.ok()) {
      s->inner_error = n.status();
      archive_set_error(a, EIO, "%s", n.status().message().c_str());
      return -1;
    }
    *out = s->buffer.data();
    return static_cast<la_ssize_t>(*n);
  }

  Status Error(std::string_view what) const {
    if (!inner_error.ok()) return inner_error;
    const char* msg = archive_error_string(reader);
    return Corruption(std::string(what) + ": " + (msg ? msg : "libarchive error"));
  }
};

DecompressingByteSource::DecompressingByteSource(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
DecompressingByteSource::~DecompressingByteSource() = default;

Result<std::unique_ptr<DecompressingByteSource>> DecompressingByteSource::Open(
    ByteSource& compressed, uint64_t max_output_bytes) {
  auto state = std::make_unique<State>();
  state->compressed = &compressed;
  state->max_output = max_output_bytes;
  state->reader = archive_read_new();
  if (state->reader == nullptr) return ResourceExhausted("libarchive: out of memory");
  archive_read_support_filter_all(state->reader);
  archive_read_support_format_raw(state->reader);
  if (archive_read_open(state->reader, state.get(), nullptr, &State::ReadCallback, nullptr) !=
      ARCHIVE_OK) {
    return state->Error("open compressed stream");
  }
  archive_entry* entry = nullptr;
  int rc = archive_read_next_header(state->reader, &entry);
  if (rc == ARCHIVE_EOF) {
    state->ended = true;  // an empty stream decompresses to nothing
  } else if (rc != ARCHIVE_OK) {
    return state->Error("read compressed stream");
  }
  return std::unique_ptr<DecompressingByteSource>(new DecompressingByteSource(std::move(state)));
}

Result<size_t> DecompressingByteSource::Read(std::span<uint8_t> out) {
  if (state_->ended) return size_t{0};
  la_ssize_t n = archive_read_data(state_->reader, out.data(), out.size());
  if (n < 0) return state_->Error("decompress");
  if (n == 0) state_->ended = true;
  state_->produced += static_cast<uint64_t>(n);
  if (state_->produced > state_->max_output) {
    return ResourceExhausted("decompressed layer passes the limit of " +
                             std::to_string(state_->max_output) + " bytes");
  }
  return static_cast<size_t>(n);
}

}  // namespace flotilla::layerstore
