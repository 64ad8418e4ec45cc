// Small, careful file operations every module needs.
//
// Crash safety: WriteFileAtomic writes a temporary file beside the target,
// fsyncs it, renames it over the target and fsyncs the directory, so after a
// power cut the target holds either its old or its new content. The writes
// go through an Env (core/env.h), so a test can fail or cut any of them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/env.h"
#include "core/status.h"

namespace flotilla {

// Reads a whole file; refuses files larger than `max_bytes` (without reading them).
Result<Bytes> ReadFileBounded(const std::string& path, uint64_t max_bytes);
Result<std::string> ReadTextFileBounded(const std::string& path, uint64_t max_bytes);
// The regular file at `path`, opened without following a symlink in its
// last component, at most `max_bytes`: for paths built from names a client
// gave. NotFound when there is none (or it is a symlink, a directory, ...).
Result<std::string> ReadRegularFileNoFollow(const std::string& path, uint64_t max_bytes);

// Replaces `path` atomically with `data`, created with `mode` (umask not applied).
Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode = 0644,
                       Env& env = Env::Default());
inline Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                              Env& env = Env::Default()) {
  return WriteFileAtomic(path, AsBytes(data), mode, env);
}

// fsync of a directory, so that a rename or create inside it is durable.
Status FsyncDirectory(const std::string& dir);

// Whether `path` names something (a symbolic link is followed).
bool PathExists(const std::string& path);

// mkdir -p with `mode` for the directories it creates, for scratch space:
// nothing is synced.
Status CreateDirectories(const std::string& dir, mode_t mode = 0755);

// mkdir -p through `env` for directories that hold state: each directory it
// creates is made durable (its parent is synced), so that what is later
// synced inside it is reachable after a power cut.
Status CreateDurableDirectories(Env& env, const std::string& dir, mode_t mode);

}  // namespace flotilla
