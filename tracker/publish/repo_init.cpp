#include "tracker/publish/repo_init.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/canonical_json.h"
#include "core/ed25519.h"
#include "core/file_io.h"
#include "layerstore/layer_store.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace fs = std::filesystem;
using metadata::RoleType;

std::string KeysDir(const RepositoryLayout& repo) { return repo.root + "/keys"; }
std::string RoleKeyPath(const RepositoryLayout& repo, RoleType role) {
  return KeysDir(repo) + "/" + std::string(metadata::RoleName(role)) + ".key";
}
std::string LayerStoreDir(const RepositoryLayout& repo) { return repo.root + "/store"; }
std::string StagingDir(const RepositoryLayout& repo) { return repo.root + "/staging"; }
std::string PublishLockPath(const RepositoryLayout& repo) { return repo.root + "/publish.lock"; }
std::string ConfigPath(const RepositoryLayout& repo) { return repo.root + "/tracker.json"; }

Result<std::string> RepositoryDatabaseUrl(const RepositoryLayout& repo) {
  auto text = ReadTextFileBounded(ConfigPath(repo), 1 << 20);
  if (!text.ok() && text.status().code() == StatusCode::kNotFound) return repo.default_db_path();
  if (!text.ok()) return text.status();
  const Json config = Json::parse(*text, nullptr, false);
  if (!config.is_object()) return InvalidArgument(ConfigPath(repo) + ": not a JSON object");
  for (const char* key : {"database_url", "database"}) {
    auto it = config.find(key);
    if (it != config.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  return repo.default_db_path();
}

namespace {

Status SaveKeyPair(const Ed25519PrivateKey& key, const std::string& path) {
  RETURN_IF_ERROR(key.SaveFile(path));
  return WriteFileAtomic(path + ".pub", key.public_key().Hex() + "\n", 0644);
}

bool DirectoryHasEntries(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return false;
  return !fs::is_directory(dir, ec) || !fs::is_empty(dir, ec);
}

// The four role keys: online keys are made in keys/; the root key is loaded,
// or made in keys/ or the offline keys directory, as the targets key.
Status MakeKeys(const RepositoryLayout& repo, const InitOptions& options,
                std::map<RoleType, metadata::RoleKeyConfig>& roles, metadata::KeyRing& ring) {
  RETURN_IF_ERROR(CreateDirectories(KeysDir(repo), 0700));
  for (RoleType role : metadata::kAllRoles) {
    Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
    if (role == RoleType::kRoot && !options.root_key_file.empty()) {
      auto loaded = Ed25519PrivateKey::LoadFile(options.root_key_file);
      if (!loaded.ok()) return loaded.status().WithContext("root key");
      key = std::move(loaded).value();
    } else if (!options.offline_keys_dir.empty() &&
               (role == RoleType::kRoot || role == RoleType::kTargets)) {
      RETURN_IF_ERROR(CreateDirectories(options.offline_keys_dir, 0700));
      RETURN_IF_ERROR(SaveKeyPair(
          key, options.offline_keys_dir + "/" + std::string(metadata::RoleName(role)) + ".key"));
    } else {
      RETURN_IF_ERROR(SaveKeyPair(key, RoleKeyPath(repo, role)));
    }
    roles[role] = metadata::RoleKeyConfig{{key.public_key()}, 1};
    ring.Add(key);
  }
  return FsyncDirectory(KeysDir(repo));
}

Status WriteConfig(const RepositoryLayout& staged, const std::string& final_dir,
                   const InitOptions& options) {
  Json config = {
      {"repository", final_dir}, {"listen", options.listen}, {"public_url", options.public_url}};
  if (!options.database_url.empty()) config["database_url"] = options.database_url;
  return WriteFileAtomic(ConfigPath(staged), config.dump(1) + "\n",
                         options.database_url.empty() ? 0644 : 0600);
}

Status BuildRepository(const RepositoryLayout& staged, const std::string& final_dir,
                       const InitOptions& options, const Clock& clock) {
  std::map<RoleType, metadata::RoleKeyConfig> roles;
  metadata::KeyRing ring;
  RETURN_IF_ERROR_CTX(MakeKeys(staged, options, roles, ring), "keys");
  RETURN_IF_ERROR_CTX(metadata::Repository::Create(staged.root, roles, ring, clock).status(),
                      "metadata");
  RETURN_IF_ERROR(CreateDirectories(staged.artifacts_dir()));
  RETURN_IF_ERROR(CreateDirectories(staged.torrents_dir()));
  RETURN_IF_ERROR(CreateDirectories(StagingDir(staged), 0700));
  RETURN_IF_ERROR_CTX(layerstore::LayerStore::Open(LayerStoreDir(staged)).status(), "layer store");
  const std::string database =
      options.database_url.empty() ? staged.default_db_path() : options.database_url;
  RETURN_IF_ERROR_CTX(DeviceDb::Open(database, clock).status(), "database");
  RETURN_IF_ERROR(WriteConfig(staged, final_dir, options));
  return FsyncDirectory(staged.root);
}

}  // namespace

Status InitRepository(const std::string& dir, const InitOptions& options, const Clock& clock) {
  if (dir.empty()) return InvalidArgument("init: no directory given");
  const std::string final_dir = fs::absolute(dir).lexically_normal().string();
  if (DirectoryHasEntries(final_dir)) {
    return AlreadyExists("init: " + final_dir + " exists and is not empty; refusing to clobber it");
  }
  const fs::path parent = fs::path(final_dir).parent_path();
  RETURN_IF_ERROR(CreateDirectories(parent.string()));
  const std::string temp = final_dir + ".init-" + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(temp, ec);
  RETURN_IF_ERROR(CreateDirectories(temp, 0755));
  Status built = BuildRepository(RepositoryLayout{temp}, final_dir, options, clock);
  // rename(2) replaces an empty directory, and fails on a non-empty one, so a
  // repository made meanwhile by someone else is never clobbered either.
  if (built.ok() && std::rename(temp.c_str(), final_dir.c_str()) != 0) {
    built = IOErrorFromErrno("init: rename " + temp + " to " + final_dir, errno);
  }
  if (!built.ok()) {
    fs::remove_all(temp, ec);
    return built.WithContext("init " + final_dir);
  }
  return FsyncDirectory(parent.string());
}

Result<metadata::KeyRing> LoadRoleKeys(const RepositoryLayout& repo,
                                       const metadata::RootMetadata& root,
                                       std::initializer_list<RoleType> roles) {
  metadata::KeyRing ring;
  for (RoleType role : roles) {
    const std::string path = RoleKeyPath(repo, role);
    auto key = metadata::LoadRoleKey(path, root, role);
    if (!key.ok()) return key.status().WithContext(std::string(metadata::RoleName(role)) + " key");
    ring.Add(*key);
  }
  return ring;
}

}  // namespace flotilla::tracker
