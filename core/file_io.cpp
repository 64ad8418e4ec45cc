#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <random>

#include "core/fd.h"

namespace flotilla {
namespace {

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
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
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
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
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd.get(), buffer).WithContext(path));
    if (n == 0) break;
    if (out.size() + n > max_bytes) {
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

Result<std::string> ReadRegularFileNoFollow(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return NotFound("no such file");
    return IOErrorFromErrno("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return NotFound("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return ResourceExhausted(path + " is " + std::to_string(st.st_size) +
                             " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadExact(fd.get(), std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), 0));
  return out;
}

Status FsyncDirectory(const std::string& dir) { return Env::Default().SyncDir(dir); }

Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode, Env& env) {
  const std::string temp = path + TempSuffix();
  ASSIGN_OR_RETURN(auto file, env.OpenForWrite(temp, OpenMode::kCreateNew, mode));
  Status st = [&]() -> Status {
    if (::fchmod(file->fd(), mode) != 0) return IOErrorFromErrno("chmod " + temp, errno);
    RETURN_IF_ERROR(file->Append(data));
    RETURN_IF_ERROR(file->Sync());
    RETURN_IF_ERROR(file->Close());
    return env.Rename(temp, path);
  }();
  if (!st.ok()) {
    file.reset();
    env.Unlink(temp).IgnoreError();
    return st;
  }
  return env.SyncDir(DirName(path));
}

namespace {

// Calls `make(prefix)` for each prefix of `dir` ("/a", "/a/b", ...).
Status ForEachPrefix(const std::string& dir,
                     const std::function<Status(const std::string&)>& make) {
  std::string partial;
  for (const auto& part : std::filesystem::path(dir)) {
    if (partial.empty() && part == "/") {
      partial = "/";
      continue;
    }
    if (!partial.empty() && partial.back() != '/') partial += '/';
    partial += part.string();
    RETURN_IF_ERROR(make(partial));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return IOErrorFromErrno("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(dir + " exists and is not a directory");
  return Status::Ok();
}

}  // namespace

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Status CreateDirectories(const std::string& dir, mode_t mode) {
  return ForEachPrefix(dir, [mode](const std::string& path) {
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
      return IOErrorFromErrno("mkdir " + path, errno);
    }
    return Status::Ok();
  });
}

Status CreateDurableDirectories(Env& env, const std::string& dir, mode_t mode) {
  return ForEachPrefix(dir, [&](const std::string& path) {
    Status made = env.MakeDir(path, mode);
    if (made.code() == StatusCode::kAlreadyExists) return Status::Ok();
    RETURN_IF_ERROR(made);
    return env.SyncDir(DirName(path));
  });
}

}  // namespace flotilla
