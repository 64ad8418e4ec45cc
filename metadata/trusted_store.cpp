#include "metadata/trusted_store.h"

#include <filesystem>

#include "core/file_io.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {
constexpr char kTimeFloorFile[] = "time-floor";
// Longest role file name: leaves room for WriteFileAtomic's temporary suffix under NAME_MAX.
constexpr size_t kMaxRoleFileName = 220;
}  // namespace

std::string TrustedStore::PathOf(RoleType role) const {
  return dir_ + "/" + std::string(RoleName(role)) + ".json";
}

Result<std::string> TrustedStore::PathOf(std::string_view role_name) const {
  RETURN_IF_ERROR(ValidateRoleName(role_name));
  std::string file = PercentEncode(role_name) + ".json";
  if (file.size() > kMaxRoleFileName) {
    return InvalidArgument("role name " + PercentEncode(role_name.substr(0, 64)) +
                           "... is too long to store (" + std::to_string(file.size()) +
                           " bytes encoded)");
  }
  return dir_ + "/" + file;
}

Result<std::optional<std::string>> TrustedStore::Load(RoleType role, uint64_t max_bytes) const {
  return Load(RoleName(role), max_bytes);
}

Result<std::optional<std::string>> TrustedStore::Load(std::string_view role_name,
                                                      uint64_t max_bytes) const {
  ASSIGN_OR_RETURN(std::string path, PathOf(role_name));
  auto bytes = ReadTextFileBounded(path, max_bytes);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return bytes.status();
  }
  return std::optional<std::string>(std::move(bytes).value());
}

Status TrustedStore::Store(RoleType role, std::string_view bytes) const {
  return Store(RoleName(role), bytes);
}

Status TrustedStore::Store(std::string_view role_name, std::string_view bytes) const {
  ASSIGN_OR_RETURN(std::string path, PathOf(role_name));
  return WriteFileAtomic(path, AsBytes(bytes), 0644, *env_);
}

Status TrustedStore::Remove(RoleType role) const {
  Status removed = env_->Unlink(PathOf(role));
  if (removed.code() == StatusCode::kNotFound) return Status::Ok();
  RETURN_IF_ERROR(removed);
  return env_->SyncDir(dir_);
}

Result<WallTime> TrustedStore::LoadTimeFloor() const {
  auto text = ReadTextFileBounded(dir_ + "/" + kTimeFloorFile, 64);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return WallTime();
    return text.status();
  }
  std::string value = *text;
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return ParseTufTime(value).WithContext("time floor file " + dir_ + "/time-floor");
}

Status TrustedStore::StoreTimeFloor(WallTime floor) const {
  return WriteFileAtomic(dir_ + "/" + kTimeFloorFile, FormatTufTime(floor) + "\n", 0644, *env_);
}

Status CopyTrustedDirectory(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  RETURN_IF_ERROR(CreateDirectories(to, 0700));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(from, ec)) {
    if (!e.is_regular_file() || e.is_symlink()) continue;
    fs::copy_file(e.path(), to + "/" + e.path().filename().string(), ec);
    if (ec) return Internal("copy " + e.path().string() + ": " + ec.message());
  }
  if (ec) return Internal("read " + from + ": " + ec.message());
  return Status::Ok();
}

}  // namespace flotilla::metadata
