#include "layerstore/safe_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace flotilla::layerstore {

Result<std::string> NormalizeRelativePath(std::string_view raw) {
  if (raw.size() > kMaxPathBytes) {
    return PermissionDenied("path of " + std::to_string(raw.size()) + " bytes is too long");
  }
  if (raw.find('\0') != std::string_view::npos) {
    return PermissionDenied("path '" + std::string(raw.substr(0, raw.find('\0'))) +
                            "' contains a NUL byte");
  }
  if (!raw.empty() && raw.front() == '/') {
    return PermissionDenied("path '" + std::string(raw) + "' is absolute");
  }
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return PermissionDenied("path '" + std::string(raw) + "' escapes its root with '..'");
    }
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

std::pair<std::string_view, std::string_view> SplitParent(std::string_view normalized) {
  size_t slash = normalized.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), normalized};
  return {normalized.substr(0, slash), normalized.substr(slash + 1)};
}

Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags) {
  std::string p = path.empty() ? std::string(".") : std::string(path);
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof(how));
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    int err = errno;
    if (err == EINTR || err == EAGAIN) continue;
    if (err == ELOOP || err == ENOTDIR) {
      // RESOLVE_NO_SYMLINKS and O_NOFOLLOW report a symlink as ELOOP, or as
      // ENOTDIR when a directory was wanted.
      return PermissionDenied("path '" + p + "' goes through a symlink or a non-directory");
    }
    if (err == EXDEV) return PermissionDenied("path '" + p + "' crosses a mount point");
    if (err == ENOENT) return NotFound("'" + p + "' does not exist");
    return IOErrorFromErrno("open '" + p + "'", err);
  }
}

Result<UniqueFd> OpenOrCreateDirInRoot(int root_fd, std::string_view path, unsigned mode) {
  auto direct = OpenInRoot(root_fd, path, O_RDONLY | O_DIRECTORY);
  if (direct.ok() || direct.status().code() != StatusCode::kNotFound) return direct;
  ASSIGN_OR_RETURN(UniqueFd dir, OpenInRoot(root_fd, "", O_RDONLY | O_DIRECTORY));
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string part(path.substr(pos, slash - pos));
    pos = slash + 1;
    if (::mkdirat(dir.get(), part.c_str(), mode) != 0 && errno != EEXIST) {
      return IOErrorFromErrno("mkdir '" + std::string(path) + "'", errno);
    }
    ASSIGN_OR_RETURN(dir, OpenInRoot(dir.get(), part, O_RDONLY | O_DIRECTORY));
  }
  return dir;
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return IOErrorFromErrno("remove " + path, ec.value());
  return Status::Ok();
}

}  // namespace flotilla::layerstore
