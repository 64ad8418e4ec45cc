#include "tracker/registry/registry_reference.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace flotilla::tracker::registry {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+([._-][a-z0-9]+)* (the distribution spec
// also allows "__" and runs of "-"; both are accepted).
bool IsRepositoryComponent(std::string_view part) {
  if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
  for (size_t i = 0; i < part.size(); ++i) {
    const char c = part[i];
    if (IsLowerAlnum(c)) continue;
    if (c != '.' && c != '_' && c != '-') return false;
    if (c == '.' && !IsLowerAlnum(part[i + 1])) return false;  // no "..", "._"
  }
  return true;
}

bool IsRepository(std::string_view repository) {
  if (repository.empty() || repository.size() > 255) return false;
  while (true) {
    const size_t slash = repository.find('/');
    if (!IsRepositoryComponent(repository.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    repository.remove_prefix(slash + 1);
  }
}

bool IsTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(tag.front())) return false;
  return std::all_of(tag.begin(), tag.end(),
                     [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool IsPort(std::string_view port) {
  unsigned value = 0;
  const char* end = port.data() + port.size();
  auto [ptr, ec] = std::from_chars(port.data(), end, value);
  return !port.empty() && ec == std::errc() && ptr == end && value >= 1 && value <= 65535;
}

// HOST[:PORT]: a host name, an IPv4 address or [IPv6]; sets `hostname`.
bool ParseHost(std::string_view host, std::string& hostname) {
  std::string_view name = host;
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(1, close - 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (!rest.starts_with(':') || !IsPort(rest.substr(1)))) return false;
    unsigned char address[16];
    if (::inet_pton(AF_INET6, std::string(name).c_str(), address) != 1) return false;
  } else {
    const size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      name = host.substr(0, colon);
      if (!IsPort(host.substr(colon + 1))) return false;
    }
    if (name.empty() || name.size() > 253) return false;
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
    }
  }
  hostname = std::string(name);
  std::transform(hostname.begin(), hostname.end(), hostname.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return true;
}

}  // namespace

bool IsRegistryReference(std::string_view image) { return image.starts_with(kReferencePrefix); }

Result<RegistryReference> ParseRegistryReference(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("registry reference: " + why +
                           " (expected docker://HOST[:PORT]/REPOSITORY[:TAG] or "
                           "docker://HOST[:PORT]/REPOSITORY@sha256:<64 hex>)");
  };
  if (!IsRegistryReference(text)) return bad("it does not start with docker://");
  if (text.size() > 1024) return bad("longer than 1024 characters");
  RegistryReference ref;
  ref.text = std::string(text);
  std::string_view rest = text.substr(kReferencePrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("no repository after the host");
  std::string_view host = rest.substr(0, slash);
  if (host.find('@') != std::string_view::npos) {
    return bad("credentials are not taken in a reference: give --registry-auth");
  }
  if (!ParseHost(host, ref.hostname)) return bad("the host must be HOST[:PORT]");
  ref.host = std::string(host);
  std::string_view name = rest.substr(slash + 1);
  if (const size_t at = name.find('@'); at != std::string_view::npos) {
    auto digest = Digest::Parse(name.substr(at + 1));
    if (!digest.ok()) return bad("the digest must be sha256:<64 lower-case hex>");
    ref.digest = *digest;
    name = name.substr(0, at);
    if (const size_t colon = name.rfind(':');
        colon != std::string_view::npos && name.find('/', colon) == std::string_view::npos) {
      return bad("give a tag or a digest, not both");
    }
  } else if (const size_t colon = name.rfind(':');
             colon != std::string_view::npos && name.find('/', colon) == std::string_view::npos) {
    ref.tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (!IsTag(ref.tag)) return bad("the tag must be [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  } else {
    ref.tag = "latest";
  }
  if (!IsRepository(name)) {
    return bad("the repository must be /-separated [a-z0-9]+([._-][a-z0-9]+)*");
  }
  ref.repository = std::string(name);
  return ref;
}

bool IsLoopbackHost(std::string_view hostname) {
  if (hostname == "localhost" || hostname == "::1") return true;
  unsigned char address[4];
  return ::inet_pton(AF_INET, std::string(hostname).c_str(), address) == 1 && address[0] == 127;
}

}  // namespace flotilla::tracker::registry
