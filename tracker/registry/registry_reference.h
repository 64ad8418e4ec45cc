// Registry references (docs/registry.md, "References"): an image argument
// that starts with docker:// names an image in an OCI registry,
// docker://HOST[:PORT]/REPOSITORY[:TAG] or ...@sha256:<hex>; anything else is
// a file or directory.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/status.h"

namespace flotilla::tracker::registry {

inline constexpr std::string_view kReferencePrefix = "docker://";

struct RegistryReference {
  std::string text;        // as written, docker:// included
  std::string host;        // "HOST[:PORT]" as written: the credentials file's key
  std::string hostname;    // HOST without port and brackets, lower case
  std::string repository;  // "shop/kiosk"
  std::string tag;         // "latest" when neither a tag nor a digest is given; "" with a digest
  std::optional<Digest> digest;

  // The manifest reference the registry API takes: the digest, else the tag.
  std::string ManifestRef() const { return digest ? digest->ToString() : tag; }
};

bool IsRegistryReference(std::string_view image);

// InvalidArgument naming the part that is wrong; never holds credentials.
Result<RegistryReference> ParseRegistryReference(std::string_view text);

// localhost, 127.0.0.0/8 or ::1: reached over plain http.
bool IsLoopbackHost(std::string_view hostname);

}  // namespace flotilla::tracker::registry
