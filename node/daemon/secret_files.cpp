#include "node/daemon/secret_files.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/canonical_json.h"
#include "core/env.h"
#include "core/file_io.h"

namespace flotilla::node {
namespace {

// Room for every declared secret's box (base64 of a bounded value).
constexpr uint64_t kMaxSealedBoxesBytes = uint64_t{appspec::kMaxConfigVariables} * 12 * 1024;

// Writes `value` into a new file `path`, 0400, owned by `owner`.
Status WriteSecretFile(const std::string& path, const appspec::UserSpec& owner,
                       std::string_view value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
  if (fd < 0) return IOErrorFromErrno("create " + path, errno);
  Status st = Status::Ok();
  if (::fchown(fd, owner.uid, owner.gid) != 0) st = IOErrorFromErrno("chown " + path, errno);
  size_t done = 0;
  while (st.ok() && done < value.size()) {
    const ssize_t n = ::write(fd, value.data() + done, value.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = IOErrorFromErrno("write " + path, errno);
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && st.ok()) st = IOErrorFromErrno("close " + path, errno);
  return st;
}

}  // namespace

Status EnsureSecretsTmpfs(const std::string& dir) {
  RETURN_IF_ERROR(CreateDirectories(dir, 0700));
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return IOErrorFromErrno("statfs " + dir, errno);
  if (fs.f_type != TMPFS_MAGIC) {
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                kSecretsTmpfsOptions) != 0) {
      return IOErrorFromErrno("mount a tmpfs for secrets on " + dir, errno);
    }
  }
  if (::chmod(dir.c_str(), 0700) != 0) return IOErrorFromErrno("chmod " + dir, errno);
  return Status::Ok();
}

Status SaveSealedBoxes(const std::string& config_files_dir, const appspec::UserSpec& owner,
                       const SecretBoxes& boxes) {
  Json json = {{"uid", owner.uid}, {"gid", owner.gid}, {"boxes", Json::object()}};
  for (const auto& [name, box] : boxes) json["boxes"][name] = box;
  const std::string path = config_files_dir + "/" + kSealedBoxesFile;
  if (::chmod(config_files_dir.c_str(), 0755) != 0 && errno != ENOENT) {
    return IOErrorFromErrno("chmod " + config_files_dir, errno);
  }
  RETURN_IF_ERROR(CreateDurableDirectories(Env::Default(), config_files_dir, 0755));
  RETURN_IF_ERROR(WriteFileAtomic(path, CanonicalJson(json).value_or("{}") + "\n", 0400));
  if (::chmod(config_files_dir.c_str(), 0555) != 0) {
    return IOErrorFromErrno("chmod " + config_files_dir, errno);
  }
  return Status::Ok();
}

Status MaterialiseSecrets(const std::string& dir, const appspec::UserSpec& owner,
                          const SecretBoxes& boxes, const SealedBoxOpener& opener) {
  if (PathExists(dir)) return Status::Ok();
  RETURN_IF_ERROR(CreateDirectories(std::filesystem::path(dir).parent_path().string(), 0700));
  const std::string building = dir + ".new";
  std::error_code ec;
  std::filesystem::remove_all(building, ec);
  if (::mkdir(building.c_str(), 0700) != 0) return IOErrorFromErrno("mkdir " + building, errno);
  for (const auto& [name, box] : boxes) {
    // A name is a file name here: never a path out of `dir`.
    RETURN_IF_ERROR(appspec::CheckConfigName(name));
    auto value = opener.Open(box);
    if (!value.ok()) return value.status().WithContext("secret " + name);
    Status written = WriteSecretFile(building + "/" + name, owner, *value);
    WipeString(*value);
    RETURN_IF_ERROR(written);
  }
  if (::chown(building.c_str(), owner.uid, owner.gid) != 0 || ::chmod(building.c_str(), 0500)) {
    return IOErrorFromErrno("chown/chmod " + building, errno);
  }
  if (::rename(building.c_str(), dir.c_str()) != 0) {
    return IOErrorFromErrno("rename " + building, errno);
  }
  return Status::Ok();
}

Status RestoreSecrets(const std::string& config_files_dir, const std::string& dir,
                      const std::string& device_key) {
  const std::string path = config_files_dir + "/" + kSealedBoxesFile;
  if (!PathExists(path) || PathExists(dir)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxSealedBoxesBytes));
  ASSIGN_OR_RETURN(Json json, ParseJsonStrict(text));
  appspec::UserSpec owner;
  SecretBoxes boxes;
  try {
    owner.uid = json.at("uid").get<uint32_t>();
    owner.gid = json.at("gid").get<uint32_t>();
    boxes = json.at("boxes").get<SecretBoxes>();
  } catch (const Json::exception& e) {
    return Corruption(path + ": " + e.what());
  }
  ASSIGN_OR_RETURN(SealedBoxOpener opener, SealedBoxOpener::LoadFile(device_key));
  return MaterialiseSecrets(dir, owner, boxes, opener);
}

std::vector<std::string> SecretValuesUnder(const std::string& secrets_dir) {
  std::vector<std::string> values;
  std::error_code ec;
  for (const auto& app : std::filesystem::directory_iterator(secrets_dir, ec)) {
    for (const auto& config : std::filesystem::directory_iterator(app.path(), ec)) {
      for (const auto& file : std::filesystem::directory_iterator(config.path(), ec)) {
        auto value = ReadRegularFileNoFollow(file.path().string(), kMaxSealedValueBytes);
        if (value.ok() && !value->empty()) values.push_back(std::move(*value));
      }
    }
  }
  return values;
}

}  // namespace flotilla::node
