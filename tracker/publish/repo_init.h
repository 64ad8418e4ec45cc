// A new tracker repository (`flotilla-tracker init`) and the key files of
// one (docs/publish.md).
//
//   <root>/metadata/, targets/   TUF repository (metadata/repository.h), served
//   <root>/artifacts/, torrents/ what serve offers devices (tracker/repository.h)
//   <root>/keys/                 mode 0700, never served, files 0600:
//                                snapshot.key, timestamp.key (+ .pub), and
//                                targets.key and root.key unless kept offline
//   <root>/pending/              staged documents awaiting an offline signature
//   <root>/store/                the tracker's layer store (layerstore/)
//   <root>/staging/              publish's scratch space, emptied by publish
//   <root>/publish.lock          flock: one metadata writer at a time
//   <root>/tracker.json          configuration for serve and publish
//   <root>/tracker.db            SQLite state (tracker/device_db.h)
#pragma once

#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/repository.h"
#include "metadata/tuf_types.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

std::string KeysDir(const RepositoryLayout& repo);
// <root>/keys/<role>.key
std::string RoleKeyPath(const RepositoryLayout& repo, metadata::RoleType role);
std::string LayerStoreDir(const RepositoryLayout& repo);
std::string StagingDir(const RepositoryLayout& repo);
std::string PublishLockPath(const RepositoryLayout& repo);
std::string ConfigPath(const RepositoryLayout& repo);
// The tracker database of the repository: its tracker.json's database_url
// (or database) when it names one, else <root>/tracker.db. publish and
// accept record releases there, so a repository made with `init
// --database-url` keeps them where serve reads them.
Result<std::string> RepositoryDatabaseUrl(const RepositoryLayout& repo);

struct InitOptions {
  // An existing root key file (e.g. made by `keygen` on an offline machine):
  // it signs root version 1 and is not copied. Empty: a root key is made in
  // <root>/keys/root.key, to be moved offline (publish never needs it).
  std::string root_key_file;
  // Non-empty: the targets key (and the root key, without root_key_file) is
  // written here, not to <root>/keys, to be moved offline (docs/signing.md).
  std::string offline_keys_dir;
  // Written into tracker.json: the base URL devices reach serve at.
  std::string public_url = "http://127.0.0.1:8080";
  std::string listen = "127.0.0.1:8080";
  // Empty: SQLite in <root>/tracker.db. Else the database (a PostgreSQL URL)
  // that init migrates and tracker.json names (tracker.json is then 0600:
  // the URL may hold a password).
  std::string database_url;
};

// Creates the repository `dir` as a whole: everything is built in a sibling
// temporary directory and renamed into place, so a crash leaves no half
// repository. AlreadyExists when `dir` exists and is not empty.
Status InitRepository(const std::string& dir, const InitOptions& options, const Clock& clock);

// Loads the key files of `roles` from <root>/keys, each checked against the
// role's keys in `root`. A missing file is NotFound.
Result<metadata::KeyRing> LoadRoleKeys(const RepositoryLayout& repo,
                                       const metadata::RootMetadata& root,
                                       std::initializer_list<metadata::RoleType> roles);

}  // namespace flotilla::tracker
