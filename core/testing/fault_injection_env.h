// An Env for crash tests: it writes through to the real file system and
// remembers what is not yet durable, so that it can
//  (a) fail the Nth write (Append/WriteAt) once, with IOError;
//  (b) fail the Nth fsync of a file once, leaving its data unsynced;
//  (c) simulate a power cut (PowerCut): every write to a file since its last
//      Sync is undone (files are rewritten in place, so each keeps its last
//      synced content, not just its synced length), and every create,
//      mkdir, rename, unlink and tree removal whose directory was not synced
//      since is undone, newest first;
//  (d) crash at a step: from the Nth durable boundary (a file Sync, a
//      Rename, a SyncDir or a SyncFilesystem) or the Nth write on, every
//      operation fails, as if the process had been killed there.
// The model is a journaling file system (ext4, f2fs): a rename is atomic and
// durable once the directory of its new name is synced; SyncFilesystem
// makes everything durable. Files and directories that existed before the
// Env first saw them, and those created behind its back (the unpacker's
// directories, symlinks and hardlinks), count as durable. Removed entries
// are kept in `stash_dir` (on the same file system) until their removal is
// durable, so that a power cut can bring them back.
//
// REQUIRES: the paths given to it go through no symlink (the test's
// directory is canonical), so that each file has one name.
//
// Databases opened with this Env (core/sqlite.h) go through a SQLite VFS
// (env_sqlite_vfs.h) that routes their writes, truncates and syncs here.
//
// Thread-safety: all methods may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/env.h"

namespace flotilla::testing {

class EnvSqliteVfs;

class FaultInjectionEnv final : public Env {
 public:
  // `stash_dir` is created if missing; it must be on the file system under
  // test. A test on tmpfs (/dev/shm) runs far faster than on a loaded disk,
  // and loses nothing: this Env decides what a power cut keeps.
  explicit FaultInjectionEnv(std::string stash_dir);
  ~FaultInjectionEnv() override;

  // Counted from 1 after the last Reset(); 0 disables. Each fires once.
  void FailWriteAt(uint64_t n);
  void FailSyncAt(uint64_t n);
  // From this write / this durable boundary on, everything fails.
  void CrashAtWrite(uint64_t n);
  void CrashAtBoundary(uint64_t n);

  // Undoes what a power cut loses (see above), then forgets everything: the
  // state left on disk counts as durable. REQUIRES: no file of this Env is open.
  Status PowerCut();
  // Clears the counters, the faults and the crashed state (not the undo
  // records: what is unsynced stays unsynced).
  void Reset();

  bool crashed() const;
  uint64_t writes() const;
  uint64_t syncs() const;  // file fsyncs
  uint64_t boundaries() const;

  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path, OpenMode mode,
                                                     mode_t perms) override;
  Result<std::unique_ptr<WritableFile>> OpenForWriteAt(int dir_fd, const std::string& name,
                                                       OpenMode mode, mode_t perms) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Unlink(const std::string& path) override;
  Status MakeDir(const std::string& path, mode_t perms) override;
  Status RemoveTree(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Status SyncFilesystem(const std::string& path) override;
  const char* sqlite_vfs() const override;

 private:
  class File;
  friend class File;

  // What a power cut restores of one file: the bytes its unsynced writes
  // replaced (newest last) and its size at the last Sync.
  struct Undo {
    uint64_t offset = 0;
    Bytes old_bytes;
  };
  struct FileState {
    uint64_t synced_size = 0;
    std::vector<Undo> undo;
  };
  using FileStatePtr = std::shared_ptr<FileState>;
  // One namespace change not yet durable: undone by a power cut.
  struct DirOp {
    enum Kind { kCreate, kMakeDir, kRename, kRemove } kind;
    std::string path;        // created, made, removed, or the new name
    std::string from;        // kRename: the old name
    std::string stash;       // kRemove: where it went; kRename: the replaced entry, if any
    std::string durable_in;  // the directory whose sync makes it durable
  };

  enum class Step { kOther, kWrite, kSync, kBoundary };
  // Counts the step and fails it when a fault says so. REQUIRES: mu_ held.
  Status Check(Step step);
  // Opens (creating) `path` for writing and starts tracking it.
  Result<std::unique_ptr<WritableFile>> Open(const std::string& path, OpenMode mode, mode_t perms);
  // Moves `path` into the stash; returns where it went.
  Result<std::string> Stash(const std::string& path);
  // The tracked files at or below `from` are now at or below `to`.
  void Rekey(const std::string& from, const std::string& to);
  void Forget(const std::string& path);
  // An op is durable: a removed entry goes for good.
  void Settle(const DirOp& op);
  Status UndoDirOp(const DirOp& op);
  static Status UndoFile(const std::string& path, const FileState& state);

  mutable std::mutex mu_;
  const std::string stash_dir_;
  uint64_t stash_counter_ = 0;
  uint64_t writes_ = 0, syncs_ = 0, boundaries_ = 0;
  uint64_t fail_write_at_ = 0, fail_sync_at_ = 0, crash_write_at_ = 0, crash_boundary_at_ = 0;
  bool crashed_ = false;
  int open_files_ = 0;
  std::map<std::string, FileStatePtr> files_;
  std::vector<DirOp> ops_;
  std::unique_ptr<EnvSqliteVfs> vfs_;
};

}  // namespace flotilla::testing
