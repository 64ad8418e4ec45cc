// Plain tar files holding only regular files (offline bundles,
// docs/bundle.md): written uncompressed in the pax format; read in two passes,
// every header checked before any data is copied. Only layerstore links
// libarchive; this gives the rest of flotilla that much of it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

struct archive;

namespace flotilla::layerstore {

struct PlainTarEntry {
  std::string name;  // the path in the tar, as written
  uint64_t size = 0;
};

class PlainTarWriter {
 public:
  // Creates (or truncates) `path`. Entries get mode 0444 (unless AddFile
  // says otherwise), owner 0, time 0.
  static Result<std::unique_ptr<PlainTarWriter>> Create(const std::string& path);
  ~PlainTarWriter();
  Status AddBytes(const std::string& name, std::string_view bytes);
  // The file at `path`, which must be `length` bytes long; `mode`: its permissions.
  Status AddFile(const std::string& name, const std::string& path, uint64_t length,
                 uint32_t mode = 0444);
  // Writes the end of the archive and closes the file (not synced).
  Status Close();

 private:
  explicit PlainTarWriter(archive* a) : archive_(a) {}
  Status Header(const std::string& name, uint64_t size, uint32_t mode);
  Status Data(const void* data, size_t size);
  Status Error(const std::string& what) const;
  archive* archive_;
};

// Every header of `path`, no data read. Refuses (PermissionDenied) any entry
// that is not a regular file (a link, device, fifo, or a directory other than
// those named in `skipped_directories`, which are left out); refuses a
// duplicate name, more than `max_entries` entries, an entry reaching past the
// end of the file, and a damaged or truncated archive (Corruption).
Result<std::vector<PlainTarEntry>> ScanPlainTar(const std::string& path,
                                                const std::vector<std::string>& skipped_directories,
                                                uint32_t max_entries);

// Copies each entry of `path` named in `destinations` to its new file there,
// exactly its header's size (Corruption when the data is cut short);
// `copied` (when set) is told of each entry once it is copied.
Status ExtractPlainTar(const std::string& path,
                       const std::map<std::string, std::string>& destinations,
                       const std::function<void(const PlainTarEntry&)>& copied = {});

}  // namespace flotilla::layerstore
