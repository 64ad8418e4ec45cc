// The registry credentials file (docs/registry.md, "Credentials"): the
// auth.json skopeo, podman and `docker login` write,
// {"auths": {"HOST[:PORT]": {"auth": "<base64 of user:password>"}}}, mode
// 0600 or stricter. Nothing here logs or prints a credential.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"

namespace flotilla::tracker::registry {

struct RegistryCredentials {
  std::string user;
  std::string password;
};

// The credentials `path` holds for `host` (HOST[:PORT] as in the reference;
// a key written with an http:// or https:// prefix or a trailing path
// matches too), or nullopt when it has none. PermissionDenied when the file
// is readable by group or others; InvalidArgument when it is not an auth
// file or the entry's `auth` is not base64 of user:password.
Result<std::optional<RegistryCredentials>> LoadRegistryCredentials(const std::string& path,
                                                                   const std::string& host);

// Base64 (RFC 4648, padded), for Basic authorization headers.
std::string Base64Encode(std::string_view bytes);
// nullopt when `text` is not padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace flotilla::tracker::registry
