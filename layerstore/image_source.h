// Internal to the importer: read access to an image given as a directory
// (OCI layout, unpacked docker save) or as a tar file (docker-archive,
// oci-archive), without extracting it. Paths are relative to the image root
// and normalized; none can leave it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "layerstore/byte_source.h"

namespace flotilla::layerstore {

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // A directory or a tar file (optionally gzip/zstd-compressed as a whole).
  static Result<std::unique_ptr<ImageSource>> Open(const std::string& path);

  virtual bool Exists(const std::string& path) = 0;
  // Reads a small file whole; refuses more than `max_bytes`.
  virtual Result<Bytes> ReadSmall(const std::string& path, uint64_t max_bytes) = 0;

  using BlobVisitor = std::function<Status(const std::string& path, ByteSource& stream)>;
  // Calls `visit` once for each of `paths`, in whatever order the source
  // reads fastest (for a tar: the order of its entries, in one pass).
  virtual Status StreamBlobs(const std::vector<std::string>& paths, const BlobVisitor& visit) = 0;
};

}  // namespace flotilla::layerstore
