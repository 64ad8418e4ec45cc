// Pull-style byte streams that the layer store reads layers and images from.
//
// A ByteSource hands out the bytes of one stream in order. The store never
// trusts a stream's length: every wrapper here enforces the bound its caller
// was promised and fails the moment it is passed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/bytes.h"
#include "core/digest.h"
#include "core/fd.h"
#include "core/status.h"

namespace flotilla::layerstore {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes into `out`; returns 0 only at the end of the stream.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
};

// Reads an open file descriptor: a borrowed one, or one it owns (and closes
// when destroyed).
class FdByteSource final : public ByteSource {
 public:
  explicit FdByteSource(int borrowed_fd) : fd_(borrowed_fd) {}
  explicit FdByteSource(UniqueFd fd) : fd_(fd.get()), owned_(std::move(fd)) {}
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  int fd_;
  UniqueFd owned_;
};

// Opens a regular file for reading.
Result<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path);

// Serves bytes held in memory (small blobs read ahead from an image tar).
class MemoryByteSource final : public ByteSource {
 public:
  explicit MemoryByteSource(ByteSpan data) : data_(data) {}
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  ByteSpan data_;
  size_t offset_ = 0;
};

// Passes another source through, hashing what it reads and refusing more than
// `max_bytes` (ResourceExhausted). digest() is valid once the inner source ended.
class HashingByteSource final : public ByteSource {
 public:
  HashingByteSource(ByteSource& inner, uint64_t max_bytes) : inner_(inner), max_bytes_(max_bytes) {}
  Result<size_t> Read(std::span<uint8_t> out) override;
  // Reads and hashes whatever the consumer left unread, then returns the digest.
  Result<Digest> DrainAndFinish();
  uint64_t bytes_read() const { return bytes_; }

 private:
  ByteSource& inner_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  Sha256Hasher hasher_;
};

// Decompresses gzip, zstd, xz or bzip2 (detected from the stream's magic
// bytes, via libarchive's filters) or passes an uncompressed stream through.
// Output past `max_output_bytes` fails with ResourceExhausted: a
// decompression bomb is an error, not a full disk.
class DecompressingByteSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<DecompressingByteSource>> Open(ByteSource& compressed,
                                                               uint64_t max_output_bytes);
  ~DecompressingByteSource() override;
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  struct State;
  explicit DecompressingByteSource(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace flotilla::layerstore
