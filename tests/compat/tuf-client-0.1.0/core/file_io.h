// Small, careful file operations every module needs.
//
// Crash safety: WriteFileAtomic writes a temporary file beside the target,
// fsyncs it, renames it over the target and fsyncs the directory, so after a
// power cut the target holds either its old or its new content.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla {

// Reads a whole file; refuses files larger than `max_bytes` (without reading them).
Result<Bytes> ReadFileBounded(const std::string& path, uint64_t max_bytes);
Result<std::string> ReadTextFileBounded(const std::string& path, uint64_t max_bytes);

// Replaces `path` atomically with `data`, created with `mode` (umask not applied).
Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode = 0644);
inline Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644) {
  return WriteFileAtomic(path, AsBytes(data), mode);
}

// fsync of a directory, so that a rename or create inside it is durable.
Status FsyncDirectory(const std::string& dir);

// mkdir -p with `mode` for the directories it creates.
Status CreateDirectories(const std::string& dir, mode_t mode = 0755);

}  // namespace flotilla
