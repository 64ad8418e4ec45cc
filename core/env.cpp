#include "core/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/fd.h"

namespace flotilla {
namespace {

int OpenFlags(OpenMode mode) {
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
  if (mode == OpenMode::kCreateNew) flags |= O_EXCL;
  if (mode == OpenMode::kTruncate) flags |= O_TRUNC;
  return flags;
}

Status OpenError(const std::string& path) {
  if (errno == EEXIST) return AlreadyExists(path + " exists already");
  return IOErrorFromErrno("create " + path, errno);
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Status Append(ByteSpan data) override { return WriteAll(fd_.get(), data).WithContext(path_); }
  Status WriteAt(ByteSpan data, uint64_t offset) override {
    return PwriteAll(fd_.get(), data, offset).WithContext(path_);
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      return IOErrorFromErrno("truncate " + path_, errno);
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (::fsync(fd_.get()) != 0) return IOErrorFromErrno("fsync " + path_, errno);
    return Status::Ok();
  }
  Status Close() override {
    if (fd_.valid() && ::close(fd_.Release()) != 0)
      return IOErrorFromErrno("close " + path_, errno);
    return Status::Ok();
  }
  int fd() const override { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path, OpenMode mode,
                                                     mode_t perms) override {
    UniqueFd fd(::open(path.c_str(), OpenFlags(mode), perms));
    if (!fd.valid()) return OpenError(path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(std::move(fd), path));
  }
  Result<std::unique_ptr<WritableFile>> OpenForWriteAt(int dir_fd, const std::string& name,
                                                       OpenMode mode, mode_t perms) override {
    UniqueFd fd(::openat(dir_fd, name.c_str(), OpenFlags(mode), perms));
    if (!fd.valid()) return OpenError("'" + name + "'");
    return std::unique_ptr<WritableFile>(new PosixWritableFile(std::move(fd), name));
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      if (errno == ENOENT) return NotFound(from + " does not exist");
      if (errno == EEXIST || errno == ENOTEMPTY) return AlreadyExists(to + " is not empty");
      return IOErrorFromErrno("rename " + from + " to " + to, errno);
    }
    return Status::Ok();
  }
  Status Unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return NotFound(path + " does not exist");
      return IOErrorFromErrno("remove " + path, errno);
    }
    return Status::Ok();
  }
  Status MakeDir(const std::string& path, mode_t perms) override {
    if (::mkdir(path.c_str(), perms) != 0) {
      if (errno == EEXIST) return AlreadyExists(path + " exists already");
      return IOErrorFromErrno("mkdir " + path, errno);
    }
    return Status::Ok();
  }
  Status RemoveTree(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return IOErrorFromErrno("remove " + path, ec.value());
    return Status::Ok();
  }
  Status SyncDir(const std::string& path) override { return SyncPath(path, false); }
  Status SyncFilesystem(const std::string& path) override { return SyncPath(path, true); }

 private:
  static Status SyncPath(const std::string& path, bool whole_filesystem) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return IOErrorFromErrno("open directory " + path, errno);
    if ((whole_filesystem ? ::syncfs(fd.get()) : ::fsync(fd.get())) != 0) {
      return IOErrorFromErrno((whole_filesystem ? "syncfs " : "fsync directory ") + path, errno);
    }
    return Status::Ok();
  }
};

}  // namespace

Env& Env::Default() {
  static Env* env = new PosixEnv();
  return *env;
}

}  // namespace flotilla
