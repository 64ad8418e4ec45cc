#include "layerstore/tree_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

namespace flotilla::layerstore {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

// Which of the entry's xattrs are applied: user.*, trusted.* and file
// capabilities. Overlay's own xattrs would let a layer forge whiteouts,
// opaque directories or redirects, so a layer that carries them is refused.
Result<bool> XattrWanted(std::string_view name, const std::string& path) {
  if (name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")) {
    return PermissionDenied("entry '" + path + "' carries overlayfs xattr '" + std::string(name) +
                            "'");
  }
  return name.starts_with("user.") || name.starts_with("trusted.") || name == "security.capability";
}

// Sets the wanted xattrs on `fd`; with fd -1 only checks them.
Status ApplyXattrs(int fd, archive_entry* e, const std::string& path) {
  const char* name;
  const void* value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    ASSIGN_OR_RETURN(bool wanted, XattrWanted(name, path));
    if (wanted && fd >= 0 && ::fsetxattr(fd, name, value, size, 0) != 0) {
      return IOErrorFromErrno("set xattr " + std::string(name) + " on '" + path + "'", errno);
    }
  }
  return Status::Ok();
}

timespec EntryMtime(archive_entry* e) {
  return timespec{archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
}

Status SetTimes(int dir_fd, const char* name, timespec mtime, int flags, const std::string& path) {
  timespec times[2] = {mtime, mtime};
  if (::utimensat(dir_fd, name, times, flags) != 0) {
    return IOErrorFromErrno("set mtime of '" + path + "'", errno);
  }
  return Status::Ok();
}

Status ApplyOwnerAndMode(int dir_fd, const char* name, archive_entry* e, bool is_symlink,
                         const std::string& path) {
  const int flags = name[0] == '\0' ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW;
  if (::fchownat(dir_fd, name, static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)), flags) != 0) {
    return IOErrorFromErrno("chown '" + path + "'", errno);
  }
  if (is_symlink) return Status::Ok();
  // Mode after owner: chown clears set-id bits.
  mode_t mode = archive_entry_perm(e) & 07777;
  int rc = name[0] == '\0' ? ::fchmod(dir_fd, mode) : ::fchmodat(dir_fd, name, mode, 0);
  if (rc != 0) return IOErrorFromErrno("chmod '" + path + "'", errno);
  return Status::Ok();
}

Status Duplicate(const std::string& path) {
  return InvalidArgument("entry '" + path + "' appears twice in the layer");
}

}  // namespace

Result<int> TreeWriter::ParentFd(std::string_view parent) {
  if (!cached_parent_fd_.valid() || parent != cached_parent_path_) {
    ASSIGN_OR_RETURN(cached_parent_fd_, OpenOrCreateDirInRoot(tree_fd_, parent));
    cached_parent_path_ = std::string(parent);
  }
  return cached_parent_fd_.get();
}

Status TreeWriter::WriteEntry(archive* a, archive_entry* e, std::string& content_path,
                              uint64_t& content_bytes,
                              const std::function<void(uint64_t)>& before_content) {
  content_path.clear();
  content_bytes = 0;
  const char* raw_name = archive_entry_pathname(e);
  if (raw_name == nullptr) return InvalidArgument("entry without a usable path name");
  ASSIGN_OR_RETURN(std::string path, NormalizeRelativePath(raw_name));
  RETURN_IF_ERROR(ApplyXattrs(-1, e, path));
  if (archive_entry_sparse_count(e) > 0) {
    return InvalidArgument("entry '" + path + "' is a sparse file, which layers may not hold");
  }
  const bool is_hardlink = archive_entry_hardlink(e) != nullptr;
  if (path.empty()) {
    if (is_hardlink || archive_entry_filetype(e) != AE_IFDIR) {
      return InvalidArgument("the layer's root entry is not a directory");
    }
    return WriteDirectory(path, e);
  }
  auto [parent, base] = SplitParent(path);
  if (base.starts_with(kWhiteoutPrefix)) return WriteWhiteout(parent, base, path);
  if (!is_hardlink && archive_entry_filetype(e) == AE_IFDIR) return WriteDirectory(path, e);
  ASSIGN_OR_RETURN(int parent_fd, ParentFd(parent));
  const std::string name(base);
  if (is_hardlink) return WriteHardlink(e, parent_fd, name, path);
  if (archive_entry_filetype(e) == AE_IFREG) {
    content_path = path;
    if (before_content) before_content(static_cast<uint64_t>(archive_entry_size(e)));
    return WriteRegular(a, e, parent_fd, name, path, content_bytes);
  }
  return WriteSpecial(e, parent_fd, name, path);
}

Status TreeWriter::WriteWhiteout(std::string_view parent, std::string_view base,
                                 const std::string& path) {
  ASSIGN_OR_RETURN(int parent_fd, ParentFd(parent));
  if (base == kOpaqueMarker) {
    if (::fsetxattr(parent_fd, "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return IOErrorFromErrno("mark '" + std::string(parent) + "' opaque", errno);
    }
    return Status::Ok();
  }
  std::string hidden(base.substr(kWhiteoutPrefix.size()));
  if (hidden.empty() || hidden == "." || hidden == ".." || hidden.starts_with(kWhiteoutPrefix)) {
    return PermissionDenied("whiteout '" + path + "' names no valid entry");
  }
  if (::mknodat(parent_fd, hidden.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
    if (errno == EEXIST) return Duplicate(path);
    return IOErrorFromErrno("create whiteout '" + path + "'", errno);
  }
  return Status::Ok();
}

Status TreeWriter::WriteDirectory(const std::string& path, archive_entry* e) {
  UniqueFd dir;
  if (path.empty()) {
    ASSIGN_OR_RETURN(dir, OpenInRoot(tree_fd_, "", O_RDONLY | O_DIRECTORY));
  } else {
    auto [parent, base] = SplitParent(path);
    ASSIGN_OR_RETURN(int parent_fd, ParentFd(parent));
    std::string name(base);
    if (::mkdirat(parent_fd, name.c_str(), 0700) != 0 && errno != EEXIST) {
      return IOErrorFromErrno("mkdir '" + path + "'", errno);
    }
    auto opened = OpenInRoot(parent_fd, name, O_RDONLY | O_DIRECTORY);
    if (!opened.ok()) return Duplicate(path);  // exists as a non-directory
    dir = std::move(*opened);
  }
  RETURN_IF_ERROR(ApplyOwnerAndMode(dir.get(), "", e, false, path));
  RETURN_IF_ERROR(ApplyXattrs(dir.get(), e, path));
  dir_times_.push_back(DirTime{path, EntryMtime(e)});
  return Status::Ok();
}

Status TreeWriter::WriteRegular(archive* a, archive_entry* e, int parent_fd,
                                const std::string& name, const std::string& path,
                                uint64_t& content_bytes) {
  auto file = env_.OpenForWriteAt(parent_fd, name, OpenMode::kCreateNew, 0600);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kAlreadyExists) return Duplicate(path);
    return file.status().WithContext("'" + path + "'");
  }
  const int fd = (*file)->fd();
  const void* block;
  size_t size;
  la_int64_t offset;
  for (;;) {
    int rc = archive_read_data_block(a, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      const char* msg = archive_error_string(a);
      return Corruption("read '" + path + "': " + (msg ? msg : "libarchive error"));
    }
    if (static_cast<uint64_t>(offset) != content_bytes) {
      return InvalidArgument("entry '" + path + "' has holes, which layers may not hold");
    }
    RETURN_IF_ERROR((*file)
                        ->Append(ByteSpan(static_cast<const uint8_t*>(block), size))
                        .WithContext("'" + path + "'"));
    content_bytes += size;
  }
  if (content_bytes != static_cast<uint64_t>(archive_entry_size(e))) {
    return Corruption("entry '" + path + "' is shorter than its header says");
  }
  RETURN_IF_ERROR(ApplyOwnerAndMode(fd, "", e, false, path));
  RETURN_IF_ERROR(ApplyXattrs(fd, e, path));
  timespec times[2] = {EntryMtime(e), EntryMtime(e)};
  if (::futimens(fd, times) != 0) return IOErrorFromErrno("set mtime of " + path, errno);
  return (*file)->Close();
}

Status TreeWriter::WriteHardlink(archive_entry* e, int parent_fd, const std::string& name,
                                 const std::string& path) {
  auto target = NormalizeRelativePath(archive_entry_hardlink(e));
  if (!target.ok() || target->empty()) {
    return PermissionDenied("hardlink '" + path +
                            "' points outside the layer: " + target.status().message());
  }
  auto [tparent, tbase] = SplitParent(*target);
  auto tdir = OpenInRoot(tree_fd_, tparent, O_RDONLY | O_DIRECTORY);
  if (!tdir.ok()) {
    return InvalidArgument("hardlink '" + path + "' to '" + *target +
                           "': " + tdir.status().message());
  }
  std::string tname(tbase);
  struct stat st;
  if (::fstatat(tdir->get(), tname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return InvalidArgument("hardlink '" + path + "' to '" + *target +
                           "', which the layer did not create before it");
  }
  if (S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    return PermissionDenied("hardlink '" + path + "' to '" + *target + "', which is not a file");
  }
  if (::linkat(tdir->get(), tname.c_str(), parent_fd, name.c_str(), 0) != 0) {
    if (errno == EEXIST) return Duplicate(path);
    return IOErrorFromErrno("link '" + path + "'", errno);
  }
  return Status::Ok();
}

Status TreeWriter::WriteSpecial(archive_entry* e, int parent_fd, const std::string& name,
                                const std::string& path) {
  const auto type = archive_entry_filetype(e);
  int rc;
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr || std::string_view(target).size() > kMaxPathBytes) {
      return InvalidArgument("symlink '" + path + "' has no usable target");
    }
    rc = ::symlinkat(target, parent_fd, name.c_str());
  } else if (type == AE_IFIFO) {
    rc = ::mknodat(parent_fd, name.c_str(), S_IFIFO | 0600, 0);
  } else if (type == AE_IFCHR || type == AE_IFBLK) {
    if (!allow_devices_) {
      return PermissionDenied("device node '" + path + "' is not allowed in this store");
    }
    dev_t dev = archive_entry_rdev(e);
    if (type == AE_IFCHR && dev == makedev(0, 0)) {
      return PermissionDenied("device node '" + path + "' is char 0:0, an overlay whiteout");
    }
    rc = ::mknodat(parent_fd, name.c_str(), (type == AE_IFCHR ? S_IFCHR : S_IFBLK) | 0600, dev);
  } else {
    return InvalidArgument("entry '" + path + "' has an unsupported type");
  }
  if (rc != 0) {
    if (errno == EEXIST) return Duplicate(path);
    return IOErrorFromErrno("create '" + path + "'", errno);
  }
  RETURN_IF_ERROR(ApplyOwnerAndMode(parent_fd, name.c_str(), e, type == AE_IFLNK, path));
  return SetTimes(parent_fd, name.c_str(), EntryMtime(e), AT_SYMLINK_NOFOLLOW, path);
}

Status TreeWriter::Finish() {
  for (const auto& d : dir_times_) {
    ASSIGN_OR_RETURN(UniqueFd dir, OpenInRoot(tree_fd_, d.path, O_RDONLY | O_DIRECTORY));
    timespec times[2] = {d.mtime, d.mtime};
    if (::futimens(dir.get(), times) != 0) {
      return IOErrorFromErrno("set mtime of '" + d.path + "'", errno);
    }
  }
  return Status::Ok();
}

}  // namespace flotilla::layerstore
