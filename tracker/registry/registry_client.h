// Fetches an image from an OCI registry into an OCI image layout on disk
// (docs/registry.md): the distribution API over http::Client, Basic and
// bearer-token authentication, https checked against the system store or a
// given CA bundle, every manifest and blob checked against its digest and
// size as it arrives. The layout then goes through the ordinary
// import (LayerStore::ImportImage).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "tracker/registry/registry_reference.h"

namespace flotilla::tracker::registry {

inline constexpr uint64_t kMaxManifestBytes = 4 << 20;  // manifests, indexes, configs
inline constexpr uint64_t kDefaultMaxBlobBytes = uint64_t{4} << 30;

struct PullOptions {
  std::string platform;   // "os/arch[/variant]" taken from an index; "": this machine's
  std::string auth_file;  // registry credentials file ("": none)
  bool insecure = false;  // plain http to a host that is not loopback
  // https to the registry and its token realm checked against these CAs (PEM)
  // instead of the system store; https even to a loopback host.
  std::string ca_file;
  uint64_t max_blob_bytes = kDefaultMaxBlobBytes;
  uint64_t progress_every_bytes = 64 << 20;  // a progress line per this much of a blob
  int connect_timeout_ms = 10'000;
  int read_timeout_ms = 30'000;
};

struct PulledImage {
  std::string platform;  // the platform the image is for, "os/arch[/variant]"
  Digest source_digest;  // what the reference resolved to (an index's or a manifest's)
  Digest manifest;       // the platform's manifest
  uint64_t blob_bytes = 0;
};

using PullProgressFn = std::function<void(const std::string& line)>;

// Writes the image `ref` names, for the wanted platform, as an OCI layout in
// the empty or absent directory `layout_dir`. Errors: PermissionDenied
// (credentials missing or refused), NotFound (no such repository, tag or
// platform), Corruption (bytes that do not match their digest or size),
// ResourceExhausted (over a bound), Unavailable (network).
Result<PulledImage> PullToLayout(const RegistryReference& ref, const PullOptions& options,
                                 const std::string& layout_dir, const PullProgressFn& progress);

// Resolves `ref` once and checks that it offers every one of `platforms`
// ("os/arch[/variant]") before anything is fetched: an index must list an
// image for each (NotFound naming every missing one and what the index
// offers); a single image manifest passes for one platform only (its
// platform is checked when it is pulled). Returns the digest `ref` resolved
// to, so that every platform is then pulled from the same index even if the
// tag moves meanwhile.
Result<Digest> ResolvePlatforms(const RegistryReference& ref, const PullOptions& options,
                                const std::vector<std::string>& platforms);

// Checks a --registry-ca file before any network: a readable regular file of
// at most 1 MiB holding at least one PEM certificate. InvalidArgument (or
// NotFound) naming the file otherwise.
Status CheckCaFile(const std::string& path);

// One WWW-Authenticate challenge: scheme (lower case) and its parameters
// (names lower case, values unquoted).
struct Challenge {
  std::string scheme;
  std::vector<std::pair<std::string, std::string>> params;
  std::string Param(std::string_view name) const;
};
Result<Challenge> ParseChallenge(std::string_view header);

}  // namespace flotilla::tracker::registry
