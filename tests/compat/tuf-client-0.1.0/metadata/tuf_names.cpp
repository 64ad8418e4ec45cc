#include "metadata/tuf_names.h"

namespace flotilla::metadata {
namespace {

bool IsControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string Quoted(std::string_view name) { return "'" + PercentEncode(name.substr(0, 80)) + "'"; }

}  // namespace

Status ValidateTargetName(std::string_view name) {
  if (name.empty() || name.size() > 1024) {
    return InvalidArgument("target name must be 1..1024 bytes, got " + std::to_string(name.size()));
  }
  if (name.front() == '/') return PermissionDenied("target name " + Quoted(name) + " is absolute");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view segment = name.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return PermissionDenied("target name " + Quoted(name) +
                              " has an empty, '.' or '..' path segment");
    }
    start = end + 1;
  }
  for (char c : name) {
    if (IsControl(c) || c == '\\') {
      return PermissionDenied("target name " + Quoted(name) +
                              " contains a control character or backslash");
    }
  }
  return Status::Ok();
}

Status ValidateRoleName(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return InvalidArgument("role name must be 1..255 bytes, got " + std::to_string(name.size()));
  }
  for (char c : name) {
    if (IsControl(c)) {
      return InvalidArgument("role name " + Quoted(name) + " contains a control character");
    }
  }
  return Status::Ok();
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

std::string EncodeTargetUrlPath(std::string_view target_name) {
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t end = target_name.find('/', start);
    out += PercentEncode(target_name.substr(
        start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    out += '/';
    start = end + 1;
  }
  return out;
}

}  // namespace flotilla::metadata
