#include "metadata/trusted_store.h"

#include <unistd.h>

#include <cerrno>

#include "core/file_io.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {
constexpr char kTimeFloorFile[] = "time-floor";
}  // namespace

std::string TrustedStore::PathOf(RoleType role) const {
  return dir_ + "/" + std::string(RoleName(role)) + ".json";
}

Result<std::optional<std::string>> TrustedStore::Load(RoleType role, uint64_t max_bytes) const {
  auto bytes = ReadTextFileBounded(PathOf(role), max_bytes);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return bytes.status();
  }
  return std::optional<std::string>(std::move(bytes).value());
}

Status TrustedStore::Store(RoleType role, std::string_view bytes) const {
  return WriteFileAtomic(PathOf(role), bytes, 0644);
}

Status TrustedStore::Remove(RoleType role) const {
  std::string path = PathOf(role);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IOErrorFromErrno("remove " + path, errno);
  }
  return FsyncDirectory(dir_);
}

Result<WallTime> TrustedStore::LoadTimeFloor() const {
  auto text = ReadTextFileBounded(dir_ + "/" + kTimeFloorFile, 64);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return WallTime();
    return text.status();
  }
  std::string value = *text;
  while (!value.empty() && value.back() == '\n') value.pop_back();
  auto floor = ParseTufTime(value);
  if (!floor.ok()) return floor.status().WithContext("time floor file " + dir_ + "/time-floor");
  return floor;
}

Status TrustedStore::StoreTimeFloor(WallTime floor) const {
  return WriteFileAtomic(dir_ + "/" + kTimeFloorFile, FormatTufTime(floor) + "\n", 0644);
}

}  // namespace flotilla::metadata
