#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <random>

namespace flotilla {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IOErrorFromErrno("write " + path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string TempSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[32];
  std::snprintf(buf, sizeof(buf), ".tmp.%d.%08llx", ::getpid(),
                static_cast<unsigned long long>(rng() & 0xffffffffu));
  return buf;
}

}  // namespace

Result<Bytes> ReadFileBounded(const std::string& path, uint64_t max_bytes) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return IOErrorFromErrno("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return ResourceExhausted(path + " is " + std::to_string(st.st_size) +
                             " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  Bytes out;
  // A 32-bit process cannot hold a file past its address space (size_t).
  if (static_cast<uint64_t>(st.st_size) > out.max_size()) {
    return ResourceExhausted(path + " is " + std::to_string(st.st_size) +
                             " bytes, more than this process can hold in memory");
  }
  out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IOErrorFromErrno("read " + path, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return ResourceExhausted(path + " grew past the limit of " + std::to_string(max_bytes));
    }
    out.insert(out.end(), buffer, buffer + n);
  }
  return out;
}

Result<std::string> ReadTextFileBounded(const std::string& path, uint64_t max_bytes) {
  ASSIGN_OR_RETURN(Bytes bytes, ReadFileBounded(path, max_bytes));
  return std::string(bytes.begin(), bytes.end());
}

Status FsyncDirectory(const std::string& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return IOErrorFromErrno("open directory " + dir, errno);
  if (::fsync(fd.get()) != 0) return IOErrorFromErrno("fsync directory " + dir, errno);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode) {
  const std::string temp = path + TempSuffix();
  FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) return IOErrorFromErrno("create " + temp, errno);
  auto fail = [&](Status st) {
    ::unlink(temp.c_str());
    return st;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail(IOErrorFromErrno("chmod " + temp, errno));
  if (Status st = WriteAll(fd.get(), data, temp); !st.ok()) return fail(st);
  if (::fsync(fd.get()) != 0) return fail(IOErrorFromErrno("fsync " + temp, errno));
  if (::close(fd.release()) != 0) return fail(IOErrorFromErrno("close " + temp, errno));
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(IOErrorFromErrno("rename " + temp + " to " + path, errno));
  }
  return FsyncDirectory(DirName(path));
}

Status CreateDirectories(const std::string& dir, mode_t mode) {
  std::error_code ec;
  std::filesystem::path p(dir);
  std::string partial;
  for (const auto& part : p) {
    if (partial.empty() && part == "/") {
      partial = "/";
      continue;
    }
    if (!partial.empty() && partial.back() != '/') partial += '/';
    partial += part.string();
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) {
      return IOErrorFromErrno("mkdir " + partial, errno);
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return IOErrorFromErrno("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(dir + " exists and is not a directory");
  return Status::Ok();
}

}  // namespace flotilla
