// The filesystem seam. Every durable change the layer store, the node's
// state and the runtime's state make goes through an Env: files written and
// fsynced, renames, unlinks, directories made and removed, directory fsyncs
// and file system syncs. Env::Default() is POSIX; a test passes a
// FaultInjectionEnv (core/testing/fault_injection_env.h) instead, which can
// fail any write or fsync, stop everything from the Nth durable step on as a
// killed process would, and simulate a power cut.
//
// Reads are not part of the seam: they go to the file system directly, and a
// test Env changes the real files at a simulated power cut, so a reader sees
// what a rebooted device would. What the seam does not cover is in
// docs/core.md ("The filesystem seam").
//
// Thread-safety: Env::Default() and its files are safe to use from any
// thread; one WritableFile is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla {

// A file open for writing. Nothing written is durable before Sync().
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes at the file offset, which starts at 0 and moves past what was written.
  virtual Status Append(ByteSpan data) = 0;
  // Writes at `offset` without moving the file offset.
  virtual Status WriteAt(ByteSpan data, uint64_t offset) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // fsync(2): the content and size written so far survive a power cut.
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // The descriptor, to read back what was written or to set metadata
  // (owner, mode, times, xattrs); never to write content.
  virtual int fd() const = 0;
};

enum class OpenMode {
  kCreateNew,  // O_CREAT | O_EXCL: AlreadyExists when the name is taken
  kTruncate,   // create, or truncate what is there
  kKeep,       // create when missing, keep the content otherwise
};

class Env {
 public:
  virtual ~Env() = default;
  // The POSIX file system. Never destroyed.
  static Env& Default();

  // Opens `path` for writing, created with permissions `mode` (umask applies).
  virtual Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path, OpenMode mode,
                                                             mode_t perms) = 0;
  // Like OpenForWrite for `name` in the directory open as `dir_fd`; refuses
  // to follow a symlink at `name`.
  virtual Result<std::unique_ptr<WritableFile>> OpenForWriteAt(int dir_fd, const std::string& name,
                                                               OpenMode mode, mode_t perms) = 0;
  // rename(2): replaces `to` if it exists (AlreadyExists when `to` is a
  // directory that is not empty). Durable once to's directory is synced.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // unlink(2); NotFound when missing.
  virtual Status Unlink(const std::string& path) = 0;
  // mkdir(2) of one directory; AlreadyExists when the name is taken.
  virtual Status MakeDir(const std::string& path, mode_t perms) = 0;
  // Removes a file or a directory tree, never following symlinks; missing is OK.
  virtual Status RemoveTree(const std::string& path) = 0;
  // fsync(2) of a directory: the creates, renames and unlinks in it are durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // syncfs(2) of the file system holding `path`: every file and directory
  // change on it is durable (one call instead of an fsync per file).
  virtual Status SyncFilesystem(const std::string& path) = 0;

  // The SQLite VFS that databases opened with this Env use (core/sqlite.h);
  // nullptr: SQLite's default.
  virtual const char* sqlite_vfs() const { return nullptr; }
};

}  // namespace flotilla
