#include "layerstore/image_source.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <set>

#include "core/file_io.h"
#include "layerstore/safe_path.h"

namespace flotilla::layerstore {
namespace {

constexpr uint64_t kCacheEntryMax = 1 << 20;  // entries this small are kept from the first pass
constexpr uint64_t kCacheTotalMax = 64 << 20;

// What a file that should be regular is instead, for the refusal.
const char* KindOf(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "a special file";
}

Status RequireRegular(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (S_ISREG(st.st_mode)) return Status::Ok();
  return InvalidArgument("image file " + path + " is " + KindOf(st.st_mode) +
                         ", not a regular file");
}

// Opens `path` for reading only if it is a regular file. Opening a FIFO
// blocks until a writer comes and opening a device runs its driver, so the
// type is checked first on an O_PATH descriptor, which opens nothing; then
// again on the O_NONBLOCK descriptor read from, in case the file was swapped
// in between.
Result<UniqueFd> OpenRegular(const std::function<Result<UniqueFd>(int flags)>& open,
                             const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd probe, open(O_PATH));
  RETURN_IF_ERROR(RequireRegular(probe.get(), path));
  ASSIGN_OR_RETURN(UniqueFd fd, open(O_RDONLY | O_NONBLOCK | O_NOCTTY));
  RETURN_IF_ERROR(RequireRegular(fd.get(), path));
  return fd;
}

Result<UniqueFd> OpenRegularInRoot(int root_fd, const std::string& path) {
  return OpenRegular([&](int flags) { return OpenInRoot(root_fd, path, flags); }, path);
}

class DirImageSource final : public ImageSource {
 public:
  explicit DirImageSource(UniqueFd root) : root_(std::move(root)) {}

  bool Exists(const std::string& path) override {
    auto norm = NormalizeRelativePath(path);
    return norm.ok() && OpenInRoot(root_.get(), *norm, O_PATH).ok();
  }

  Result<Bytes> ReadSmall(const std::string& path, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(std::string norm, NormalizeRelativePath(path));
    ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularInRoot(root_.get(), norm));
    FdByteSource source(fd.get());
    Bytes out;
    uint8_t buf[65536];
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, source.Read(buf));
      if (n == 0) break;
      if (out.size() + n > max_bytes) {
        return ResourceExhausted(norm + " is larger than " + std::to_string(max_bytes) + " bytes");
      }
      out.insert(out.end(), buf, buf + n);
    }
    return out;
  }

  Status StreamBlobs(const std::vector<std::string>& paths, const BlobVisitor& visit) override {
    for (const auto& path : paths) {
      ASSIGN_OR_RETURN(std::string norm, NormalizeRelativePath(path));
      ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularInRoot(root_.get(), norm));
      FdByteSource source(fd.get());
      RETURN_IF_ERROR(visit(path, source));
    }
    return Status::Ok();
  }

 private:
  UniqueFd root_;
};

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveCloser>;

// Streams the current entry's data.
class EntryByteSource final : public ByteSource {
 public:
  explicit EntryByteSource(archive* a) : a_(a) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    la_ssize_t n = archive_read_data(a_, out.data(), out.size());
    if (n < 0) {
      const char* msg = archive_error_string(a_);
      return Corruption(std::string("image tar: ") + (msg ? msg : "read error"));
    }
    return static_cast<size_t>(n);
  }

 private:
  archive* a_;
};

class TarImageSource final : public ImageSource {
 public:
  TarImageSource(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  // First pass: learn the entries, keep the small ones.
  Status Scan() {
    ASSIGN_OR_RETURN(ArchivePtr a, OpenArchive());
    uint64_t cached = 0;
    for (;;) {
      archive_entry* e = nullptr;
      ASSIGN_OR_RETURN(bool more, Next(a.get(), &e));
      if (!more) break;
      ASSIGN_OR_RETURN(std::string name, NormalizeRelativePath(archive_entry_pathname(e)));
      RETURN_IF_ERROR(NoteAlias(e, name));
      if (archive_entry_hardlink(e) != nullptr) continue;
      const mode_t type = archive_entry_filetype(e);
      if (S_ISFIFO(type) || S_ISSOCK(type) || S_ISCHR(type) || S_ISBLK(type)) special_[name] = type;
      if (type != AE_IFREG) continue;
      files_.insert(name);
      uint64_t size = static_cast<uint64_t>(archive_entry_size(e));
      if (size > kCacheEntryMax) continue;
      if ((cached += size) > kCacheTotalMax) {
        return ResourceExhausted("image tar holds more than 64 MiB of small files");
      }
      Bytes data(size);
      if (archive_read_data(a.get(), data.data(), data.size()) != static_cast<la_ssize_t>(size)) {
        return Corruption("image tar: entry '" + name + "' is truncated");
      }
      cache_[name] = std::move(data);
    }
    return Status::Ok();
  }

  // A special entry exists too: reading it is refused with what it is.
  bool Exists(const std::string& path) override {
    return Resolve(path).status().code() != StatusCode::kNotFound;
  }

  Result<Bytes> ReadSmall(const std::string& path, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(std::string name, Resolve(path));
    auto it = cache_.find(name);
    if (it == cache_.end()) {
      return ResourceExhausted("image file " + name + " is too large to be metadata");
    }
    if (it->second.size() > max_bytes) {
      return ResourceExhausted(name + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    return it->second;
  }

  Status StreamBlobs(const std::vector<std::string>& paths, const BlobVisitor& visit) override {
    std::map<std::string, std::vector<std::string>> wanted;  // entry name -> requested paths
    for (const auto& path : paths) {
      ASSIGN_OR_RETURN(std::string name, Resolve(path));
      auto it = cache_.find(name);
      if (it != cache_.end()) {
        MemoryByteSource source(it->second);
        RETURN_IF_ERROR(visit(path, source));
        continue;
      }
      wanted[name].push_back(path);
    }
    if (wanted.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(ArchivePtr a, OpenArchive());
    for (;;) {
      archive_entry* e = nullptr;
      ASSIGN_OR_RETURN(bool more, Next(a.get(), &e));
      if (!more) break;
      ASSIGN_OR_RETURN(std::string name, NormalizeRelativePath(archive_entry_pathname(e)));
      auto it = wanted.find(name);
      if (it == wanted.end() || archive_entry_filetype(e) != AE_IFREG) continue;
      if (it->second.size() != 1) {
        return Internal("image blob " + name + " requested twice in one pass");
      }
      EntryByteSource source(a.get());
      RETURN_IF_ERROR(visit(it->second.front(), source));
      wanted.erase(it);
    }
    if (!wanted.empty()) return NotFound("image tar has no entry " + wanted.begin()->first);
    return Status::Ok();
  }

 private:
  Result<ArchivePtr> OpenArchive() {
    ArchivePtr a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    if (::lseek(fd_.get(), 0, SEEK_SET) != 0) return IOErrorFromErrno("seek " + path_, errno);
    if (archive_read_open_fd(a.get(), fd_.get(), 1 << 20) != ARCHIVE_OK) {
      return Corruption("open image " + path_ + ": " + archive_error_string(a.get()));
    }
    return a;
  }

  static Result<bool> Next(archive* a, archive_entry** e) {
    int rc = archive_read_next_header(a, e);
    if (rc == ARCHIVE_EOF) return false;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      const char* msg = archive_error_string(a);
      return Corruption(std::string("image tar: ") + (msg ? msg : "malformed"));
    }
    if (archive_entry_pathname(*e) == nullptr) return Corruption("image tar: entry without name");
    return true;
  }

  // docker save links a repeated layer to its first copy; remember where to.
  Status NoteAlias(archive_entry* e, const std::string& name) {
    std::string target;
    if (const char* hard = archive_entry_hardlink(e)) {
      ASSIGN_OR_RETURN(target, NormalizeRelativePath(hard));
    } else if (archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e) != nullptr) {
      std::string parent(SplitParent(name).first);
      std::string joined =
          parent.empty() ? archive_entry_symlink(e) : parent + "/" + archive_entry_symlink(e);
      // Collapse "dir/../x" so that docker's "../<id>/layer.tar" links resolve.
      std::string collapsed =
          std::filesystem::path(joined).relative_path().lexically_normal().generic_string();
      if (collapsed == ".." || collapsed.starts_with("../")) {
        return PermissionDenied("image tar link '" + name + "' escapes");
      }
      ASSIGN_OR_RETURN(target, NormalizeRelativePath(collapsed));
    } else {
      return Status::Ok();
    }
    aliases_[name] = target;
    return Status::Ok();
  }

  Result<std::string> Resolve(const std::string& path) {
    ASSIGN_OR_RETURN(std::string name, NormalizeRelativePath(path));
    for (int depth = 0; depth < 8; ++depth) {
      if (files_.count(name)) return name;
      if (auto special = special_.find(name); special != special_.end()) {
        return InvalidArgument("image entry " + name + " is " + KindOf(special->second) +
                               ", not a regular file");
      }
      auto it = aliases_.find(name);
      if (it == aliases_.end()) break;
      name = it->second;
    }
    return NotFound("image has no file " + path);
  }

  std::string path_;
  UniqueFd fd_;
  std::set<std::string> files_;
  std::map<std::string, mode_t> special_;  // FIFOs, devices: never read
  std::map<std::string, std::string> aliases_;
  std::map<std::string, Bytes> cache_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> ImageSource::Open(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (S_ISDIR(st.st_mode)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
    return std::unique_ptr<ImageSource>(new DirImageSource(std::move(fd)));
  }
  auto open = [&](int flags) -> Result<UniqueFd> {
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
    return fd;
  };
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(open, path));
  auto source = std::make_unique<TarImageSource>(path, std::move(fd));
  RETURN_IF_ERROR_CTX(source->Scan(), "read " + path);
  return std::unique_ptr<ImageSource>(std::move(source));
}

}  // namespace flotilla::layerstore
