#include "metadata/remote_repository.h"

#include "core/bytes.h"
#include "core/file_io.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {
Result<std::string> PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) {
      return InvalidArgument("truncated percent escape");
    }
    int high = HexDigitValue(text[i + 1]), low = HexDigitValue(text[i + 2]);
    if (high < 0 || low < 0 || (high == 0 && low == 0)) {
      return InvalidArgument("malformed percent escape");
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

Result<std::string> DirectoryRemote::FetchMetadata(const std::string& name, uint64_t max_bytes) {
  if (name.find('/') != std::string::npos || name == "." || name == "..") {
    return PermissionDenied("metadata name '" + PercentEncode(name) + "' is not a plain file name");
  }
  return ReadTextFileBounded(metadata_dir_ + "/" + name, max_bytes);
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

}  // namespace flotilla::metadata
