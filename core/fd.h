// The one owned file descriptor type, and the one way to move bytes through
// a descriptor: every loop here retries EINTR and continues a short read or
// write, and errors come back as Status (IOError naming the call; callers
// add the path with WithContext).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla {

// An owned file descriptor, closed on destruction. Movable, not copyable.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  // Closes the held descriptor (if any) and holds `fd`.
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// One read(2) of up to out.size() bytes; 0 only at the end of the file.
Result<size_t> ReadSome(int fd, std::span<uint8_t> out);
// Reads until `out` is full or the file ends; returns the bytes read.
Result<size_t> ReadAll(int fd, std::span<uint8_t> out);
// Like ReadAll at `offset` (pread(2)); the file offset is not moved.
Result<size_t> PreadAll(int fd, std::span<uint8_t> out, uint64_t offset);
// Reads exactly out.size() bytes at `offset`; Corruption when the file is shorter.
Status PreadExact(int fd, std::span<uint8_t> out, uint64_t offset);
// Writes all of `data`.
Status WriteAll(int fd, ByteSpan data);
inline Status WriteAll(int fd, std::string_view data) { return WriteAll(fd, AsBytes(data)); }
// Writes all of `data` at `offset` (pwrite(2)).
Status PwriteAll(int fd, ByteSpan data, uint64_t offset);

}  // namespace flotilla
