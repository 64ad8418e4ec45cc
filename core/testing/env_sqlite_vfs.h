// A SQLite VFS whose database, journal and WAL files are written, truncated
// and synced through an Env, so that a test Env sees SQLite's writes and
// fsyncs like any others (and can fail them or cut them at a power cut).
// Reads, locks, file controls and the WAL's shared memory (-shm, which a
// power cut does not need to keep: SQLite rebuilds it from the WAL when the
// first connection opens) are left to SQLite's default VFS, on the same
// path. Like SQLite's unix VFS, the directory of a journal or WAL file it
// creates is synced at the file's first sync.
//
// Registered (not as the default) for the lifetime of the object; an Env
// names it in Env::sqlite_vfs() and SqliteDb::Open passes that name.
#pragma once

#include <memory>
#include <string>

#include "core/env.h"

namespace flotilla::testing {

class EnvSqliteVfs {
 public:
  explicit EnvSqliteVfs(Env& env);
  ~EnvSqliteVfs();
  EnvSqliteVfs(const EnvSqliteVfs&) = delete;
  EnvSqliteVfs& operator=(const EnvSqliteVfs&) = delete;

  const char* name() const { return name_.c_str(); }

 private:
  struct Registration;
  std::string name_;
  std::unique_ptr<Registration> registration_;
};

}  // namespace flotilla::testing
