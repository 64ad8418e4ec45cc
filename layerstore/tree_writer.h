// Internal to the unpacker: creates the entries of one layer tar inside a
// tree directory, fd-relative and confined (safe_path.h), with OCI whiteouts
// turned into overlayfs whiteouts.
#pragma once

#include <time.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "layerstore/safe_path.h"

struct archive;
struct archive_entry;

namespace flotilla::layerstore {

class TreeWriter {
 public:
  // Regular files are created and written through `env`.
  TreeWriter(Env& env, int tree_fd, bool allow_devices)
      : env_(env), tree_fd_(tree_fd), allow_devices_(allow_devices) {}

  // Creates the entry `e` whose content (for regular files) is read from `a`.
  // On success `content_path` names the regular file whose bytes were stored
  // (empty for entries without content) and `content_bytes` their count.
  // `before_content(size)` runs just before a regular file's content is read,
  // with the size its header declares (reading fails unless exactly that many
  // bytes follow), so the caller can stop keeping stream bytes it will not need.
  Status WriteEntry(archive* a, archive_entry* e, std::string& content_path,
                    uint64_t& content_bytes,
                    const std::function<void(uint64_t)>& before_content = {});

  // Sets the mtimes of the directories the layer listed (creating their
  // children changed them). Call once after the last entry.
  Status Finish();

 private:
  Result<int> ParentFd(std::string_view parent);
  Status WriteWhiteout(std::string_view parent, std::string_view base, const std::string& path);
  Status WriteDirectory(const std::string& path, archive_entry* e);
  Status WriteRegular(archive* a, archive_entry* e, int parent_fd, const std::string& name,
                      const std::string& path, uint64_t& content_bytes);
  Status WriteHardlink(archive_entry* e, int parent_fd, const std::string& name,
                       const std::string& path);
  Status WriteSpecial(archive_entry* e, int parent_fd, const std::string& name,
                      const std::string& path);

  struct DirTime {
    std::string path;
    timespec mtime;
  };

  Env& env_;
  int tree_fd_;
  bool allow_devices_;
  std::string cached_parent_path_;
  UniqueFd cached_parent_fd_;
  std::vector<DirTime> dir_times_;
};

}  // namespace flotilla::layerstore
