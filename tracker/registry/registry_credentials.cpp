#include "tracker/registry/registry_credentials.h"

#include <sys/stat.h>

#include <cerrno>

#include "core/canonical_json.h"
#include "core/file_io.h"

namespace flotilla::tracker::registry {
namespace {

constexpr uint64_t kMaxAuthFileBytes = 1 << 20;
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A key as docker writes it ("https://index.docker.io/v1/", "host:5000")
// reduced to HOST[:PORT].
std::string KeyHost(std::string key) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.starts_with(scheme)) key.erase(0, scheme.size());
  }
  if (const size_t slash = key.find('/'); slash != std::string::npos) key.erase(slash);
  return key;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t n = 0;
    int padding = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++padding;
        n <<= 6;
        continue;
      }
      const size_t value = kAlphabet.find(c);
      if (value == std::string_view::npos || padding > 0) return std::nullopt;
      n = (n << 6) | static_cast<uint32_t>(value);
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

Result<std::optional<RegistryCredentials>> LoadRegistryCredentials(const std::string& path,
                                                                   const std::string& host) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return IOErrorFromErrno("registry auth file " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("registry auth file " + path + ": not a file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("registry auth file " + path + " has mode " + mode +
                            ": it holds credentials, make it 0600 (chmod 600 " + path + ")");
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxAuthFileBytes));
  auto json = ParseJsonStrict(text);
  if (!json.ok() || !json->is_object() || !json->contains("auths") ||
      !(*json)["auths"].is_object()) {
    return InvalidArgument("registry auth file " + path +
                           ": expected {\"auths\": {\"HOST[:PORT]\": {\"auth\": \"...\"}}}");
  }
  for (const auto& [key, entry] : (*json)["auths"].items()) {
    if (KeyHost(key) != host) continue;
    if (!entry.is_object() || !entry.contains("auth") || !entry["auth"].is_string()) {
      return InvalidArgument("registry auth file " + path + ": the entry for " + host +
                             " has no \"auth\" string");
    }
    std::optional<std::string> decoded = Base64Decode(entry["auth"].get<std::string>());
    const size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos || colon == 0) {
      return InvalidArgument("registry auth file " + path + ": the \"auth\" of " + host +
                             " is not base64 of user:password");
    }
    return std::optional<RegistryCredentials>(
        RegistryCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
  }
  return std::optional<RegistryCredentials>();
}

}  // namespace flotilla::tracker::registry
