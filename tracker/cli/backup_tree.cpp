#include "tracker/cli/backup_tree.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/digest.h"
#include "core/fd.h"
#include "core/file_io.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;

constexpr char kManifestHeader[] = "flotilla-tracker-backup 1";
constexpr mode_t kModeBits = 0777;

bool SafeRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (std::any_of(path.begin(), path.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
    return false;
  }
  std::stringstream parts(path);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return path != kManifestName;
}

Status MakeDirectory(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), 0700) != 0) return IOErrorFromErrno("mkdir " + path, errno);
  if (::chmod(path.c_str(), mode & kModeBits) != 0) return IOErrorFromErrno("chmod " + path, errno);
  return Status::Ok();
}

// fsyncs `root` and each directory entry below it, deepest first.
Status FsyncDirectories(const std::string& root, const std::vector<BackupEntry>& entries) {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->directory) RETURN_IF_ERROR(FsyncDirectory(root + "/" + it->path));
  }
  return FsyncDirectory(root);
}

}  // namespace

std::string FormatManifest(const BackupManifest& manifest) {
  std::string text = fmt::format("{} {}\n", kManifestHeader, manifest.created_unix);
  for (const BackupEntry& e : manifest.entries) {
    if (e.directory) {
      text += fmt::format("d {:04o} - - {}\n", e.mode & kModeBits, e.path);
    } else {
      text += fmt::format("f {:04o} {} {} {}\n", e.mode & kModeBits, e.size, e.sha256_hex, e.path);
    }
  }
  return text;
}

Result<BackupManifest> ParseManifest(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  BackupManifest manifest;
  const std::string header = std::string(kManifestHeader) + " ";
  if (!std::getline(lines, line) || line.rfind(header, 0) != 0) {
    return Corruption("manifest: not a flotilla-tracker backup (first line)");
  }
  std::istringstream created(line.substr(header.size()));
  if (!(created >> manifest.created_unix)) return Corruption("manifest: bad creation time");
  std::map<std::string, bool> seen;  // path -> is a directory
  for (size_t number = 2; std::getline(lines, line); ++number) {
    std::istringstream fields(line);
    std::string kind, mode, size, digest, path, extra;
    if (!(fields >> kind >> mode >> size >> digest >> path) || (fields >> extra) ||
        (kind != "d" && kind != "f") || mode.size() != 4 ||
        mode.find_first_not_of("01234567") != std::string::npos || !SafeRelativePath(path)) {
      return Corruption(fmt::format("manifest line {}: malformed", number));
    }
    BackupEntry e;
    e.directory = kind == "d";
    e.mode = static_cast<mode_t>(std::stoul(mode, nullptr, 8));
    e.path = path;
    if (!e.directory) {
      if (size.empty() || size.size() > 19 || size.find_first_not_of("0123456789") != size.npos ||
          !Digest::ParseHex(digest).ok()) {
        return Corruption(fmt::format("manifest line {}: bad size or sha256", number));
      }
      e.size = std::stoull(size);
      e.sha256_hex = digest;
    }
    const auto slash = path.rfind('/');
    if (slash != std::string::npos) {
      auto parent = seen.find(path.substr(0, slash));
      if (parent == seen.end() || !parent->second) {
        return Corruption(fmt::format("manifest line {}: {} before its directory", number, path));
      }
    }
    if (!seen.emplace(path, e.directory).second) {
      return Corruption(fmt::format("manifest line {}: {} listed twice", number, path));
    }
    manifest.entries.push_back(std::move(e));
  }
  return manifest;
}

Result<BackupEntry> CopyFileHashed(const std::string& from, const std::string& to, mode_t mode,
                                   const std::string& relative) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return IOErrorFromErrno("open " + from, errno);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return IOErrorFromErrno("stat " + from, errno);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(from + ": not a regular file");
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return IOErrorFromErrno("create " + to, errno);
  if (::fchmod(out.get(), mode & kModeBits) != 0) return IOErrorFromErrno("chmod " + to, errno);
  Sha256Hasher hasher;
  std::vector<uint8_t> buffer(1 << 20);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(in.get(), buffer));
    if (n == 0) break;
    ByteSpan chunk(buffer.data(), n);
    hasher.Update(chunk);
    RETURN_IF_ERROR(WriteAll(out.get(), chunk).WithContext(to));
  }
  if (::fsync(out.get()) != 0) return IOErrorFromErrno("fsync " + to, errno);
  BackupEntry entry;
  entry.mode = mode & kModeBits;
  entry.size = hasher.bytes_hashed();
  entry.sha256_hex = hasher.Finish().Hex();
  entry.path = relative;
  return entry;
}

Result<std::vector<BackupEntry>> CopyTree(const std::string& from, const std::string& to,
                                          const std::function<bool(const std::string&)>& skip) {
  std::vector<fs::path> paths;
  std::error_code ec;
  fs::recursive_directory_iterator it(from, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string relative = fs::relative(it->path(), from).generic_string();
    if (skip(relative)) {
      it.disable_recursion_pending();
      continue;
    }
    paths.push_back(it->path());
  }
  if (ec) return IOErrorFromErrno("list " + from, ec.value());
  std::sort(paths.begin(), paths.end());
  std::vector<BackupEntry> entries;
  for (const fs::path& path : paths) {
    const std::string relative = fs::relative(path, from).generic_string();
    if (!SafeRelativePath(relative)) return FailedPrecondition("unsupported name: " + relative);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return IOErrorFromErrno("stat " + path.string(), errno);
    if (S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(MakeDirectory(to + "/" + relative, st.st_mode));
      entries.push_back({true, st.st_mode & kModeBits, 0, "", relative});
    } else if (S_ISREG(st.st_mode)) {
      ASSIGN_OR_RETURN(auto entry,
                       CopyFileHashed(path.string(), to + "/" + relative, st.st_mode, relative));
      entries.push_back(std::move(entry));
    } else {
      return FailedPrecondition(path.string() + ": not a regular file or directory");
    }
  }
  RETURN_IF_ERROR(FsyncDirectories(to, entries));
  return entries;
}

Status VerifyTree(const std::string& dir, const BackupManifest& manifest) {
  std::map<std::string, const BackupEntry*> listed;
  for (const BackupEntry& e : manifest.entries) listed[e.path] = &e;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  size_t found = 0;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string relative = fs::relative(it->path(), dir).generic_string();
    if (relative == kManifestName) continue;
    auto entry = listed.find(relative);
    if (entry == listed.end()) return Corruption(relative + ": in the backup, not in its manifest");
    const auto type = it->symlink_status().type();
    if (type != (entry->second->directory ? fs::file_type::directory : fs::file_type::regular)) {
      return Corruption(relative + ": not the kind of entry the manifest lists");
    }
    ++found;
    if (entry->second->directory) continue;
    if (fs::file_size(it->path(), ec) != entry->second->size || ec) {
      return Corruption(relative + ": size differs from the manifest");
    }
    ASSIGN_OR_RETURN(Digest digest, HashFile(it->path().string()));
    if (digest.Hex() != entry->second->sha256_hex) {
      return Corruption(relative + ": sha256 differs from the manifest");
    }
  }
  if (ec) return IOErrorFromErrno("list " + dir, ec.value());
  if (found != listed.size()) return Corruption("files listed in the manifest are missing");
  return Status::Ok();
}

Status RestoreTree(const std::string& from, const std::string& to, const BackupManifest& manifest) {
  for (const BackupEntry& e : manifest.entries) {
    const std::string target = to + "/" + e.path;
    if (e.directory) {
      RETURN_IF_ERROR(MakeDirectory(target, e.mode));
      continue;
    }
    ASSIGN_OR_RETURN(auto copied, CopyFileHashed(from + "/" + e.path, target, e.mode, e.path));
    if (copied.size != e.size || copied.sha256_hex != e.sha256_hex) {
      return Corruption(e.path + ": changed in the backup while it was restored");
    }
  }
  return FsyncDirectories(to, manifest.entries);
}

}  // namespace flotilla::tracker
