// fd-relative path handling that cannot be talked out of a root directory.
//
// Every path that comes from a tar entry, a manifest or a caller is first
// normalized lexically (refusing absolute paths and "..", so that a hostile
// name gets a clear error) and then resolved by the kernel with openat2()
// under RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV: even a name the lexical check missed, or a symlink planted
// by an earlier entry, cannot reach outside the root. The string check is for
// the message; openat2 is the guard.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "core/fd.h"
#include "core/status.h"

namespace flotilla::layerstore {

inline constexpr size_t kMaxPathBytes = 4096;

// Normalizes a relative path: drops "." components, repeated and trailing
// slashes and one leading "./"; refuses absolute paths, ".." components, NUL
// bytes and paths longer than kMaxPathBytes (PermissionDenied, naming the
// path). Returns "" for the root itself.
Result<std::string> NormalizeRelativePath(std::string_view raw);

// Splits a normalized non-empty path into (parent, base name); parent "" is the root.
std::pair<std::string_view, std::string_view> SplitParent(std::string_view normalized);

// Opens the normalized `path` beneath `root_fd` with open(2) `flags`, never
// following a symlink or leaving the root. "" opens the root itself.
Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags);

// Opens the directory `path` beneath `root_fd` (O_RDONLY | O_DIRECTORY),
// creating missing components with `mode` (owner root). A component that
// exists and is not a directory (a symlink included) is an error.
Result<UniqueFd> OpenOrCreateDirInRoot(int root_fd, std::string_view path, unsigned mode = 0755);

// Removes a directory tree, never following symlinks. Missing is not an error.
Status RemoveTree(const std::string& path);

}  // namespace flotilla::layerstore
