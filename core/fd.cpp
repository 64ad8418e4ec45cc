#include "core/fd.h"

#include <unistd.h>

#include <cerrno>

namespace flotilla {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<size_t> ReadSome(int fd, std::span<uint8_t> out) {
  for (;;) {
    ssize_t n = ::read(fd, out.data(), out.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return IOErrorFromErrno("read", errno);
  }
}

Result<size_t> ReadAll(int fd, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd, out.subspan(done)));
    if (n == 0) break;
    done += n;
  }
  return done;
}

Result<size_t> PreadAll(int fd, std::span<uint8_t> out, uint64_t offset) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IOErrorFromErrno("read", errno);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status PreadExact(int fd, std::span<uint8_t> out, uint64_t offset) {
  ASSIGN_OR_RETURN(size_t n, PreadAll(fd, out, offset));
  if (n != out.size()) return Corruption("file shorter than expected");
  return Status::Ok();
}

Status WriteAll(int fd, ByteSpan data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IOErrorFromErrno("write", errno);
    data = data.subspan(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status PwriteAll(int fd, ByteSpan data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IOErrorFromErrno("write", errno);
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace flotilla
