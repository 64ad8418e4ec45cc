#include "metadata/remote_repository.h"

#include "core/bytes.h"
#include "core/file_io.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {

Result<std::string> DirectoryRemote::FetchMetadata(const std::string& name, uint64_t max_bytes) {
  // Encoded, a name is one file name ('/' -> %2F); only "." and ".." stay themselves.
  if (name == "." || name == "..") {
    return PermissionDenied("metadata name '" + name + "' is not a plain file name");
  }
  return ReadTextFileBounded(metadata_dir_ + "/" + PercentEncode(name), max_bytes);
}

Status DirectoryRemote::FetchTarget(const std::string& url_path, uint64_t max_bytes,
                                    const std::string& dest_path) {
  ++target_fetches_;
  std::string relative;
  size_t start = 0;
  for (;;) {
    size_t end = url_path.find('/', start);
    std::string_view segment(url_path.data() + start,
                             (end == std::string::npos ? url_path.size() : end) - start);
    ASSIGN_OR_RETURN(std::string decoded, PercentDecode(segment));
    if (decoded.find('\0') != std::string::npos) {
      return InvalidArgument("target path '" + url_path.substr(0, 80) + "' holds an encoded NUL");
    }
    if (decoded.empty() || decoded == "." || decoded == ".." ||
        decoded.find('/') != std::string::npos) {
      return PermissionDenied("target path '" + url_path.substr(0, 80) + "' leaves its root");
    }
    relative += (relative.empty() ? "" : "/") + decoded;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  ASSIGN_OR_RETURN(Bytes data, ReadFileBounded(targets_dir_ + "/" + relative, max_bytes));
  return WriteFileAtomic(dest_path, data, 0644);
}

Result<std::string> RecordingRemote::FetchMetadata(const std::string& name, uint64_t max_bytes) {
  auto bytes = inner_.FetchMetadata(name, max_bytes);
  if (bytes.ok()) files_[PercentEncode(name)] = *bytes;
  return bytes;
}

Result<std::string> MemoryRemote::FetchMetadata(const std::string& name, uint64_t max_bytes) {
  auto it = files_.find(PercentEncode(name));
  if (it == files_.end()) return NotFound("no metadata file " + PercentEncode(name));
  if (it->second.size() > max_bytes) {
    return ResourceExhausted(PercentEncode(name) + " is longer than " + std::to_string(max_bytes) +
                             " bytes");
  }
  return it->second;
}

Status MemoryRemote::FetchTarget(const std::string& url_path, uint64_t, const std::string&) {
  return NotFound("no target " + url_path.substr(0, 80) + " here: metadata only");
}

}  // namespace flotilla::metadata
