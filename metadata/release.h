// flotilla's release schema, carried in a TUF target's `custom` field.
//
// Each release of an app is one target, "apps/<app>/release-<version>.json",
// whose bytes are the canonical JSON of its `custom` object and whose
// `custom` is {"flotilla": {...}} (docs/metadata.md has the full format and
// an example). The signature over targets covers it; the node reads it to
// plan downloads (artifacts), to rebuild and check layers (image) and to run
// the app (app_spec, carried verbatim: the runtime defines its fields).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/status.h"
#include "metadata/offline_window.h"
#include "metadata/repository.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

class TufClient;

inline constexpr uint64_t kReleaseSchemaVersion = 1;

struct LayerRef {
  Digest diff_id;       // digest of the uncompressed layer tar (OCI diff_id)
  uint64_t length = 0;  // its length in bytes
};

struct ImageRef {
  Digest manifest;               // OCI manifest digest
  Digest config;                 // OCI config digest
  std::string platform;          // "os/arch[/variant]", e.g. "linux/arm64", "linux/arm/v7"
  std::vector<LayerRef> layers;  // bottom to top
};

enum class ArtifactKind { kFull, kDelta };

// What crosses the network to produce one layer: a full layer, or a delta that
// rebuilds it from one or more layers the device holds (named by diff_id).
struct Artifact {
  Digest layer;  // diff_id of the layer this artifact produces
  ArtifactKind kind = ArtifactKind::kFull;
  std::vector<Digest> bases;            // deltas only: the diff_ids it applies to, in order
  Digest sha256;                        // of the artifact's bytes
  uint64_t length = 0;                  // of the artifact's bytes
  std::array<uint8_t, 32> info_hash{};  // BitTorrent v2 info-hash (SHA-256 of the info dict)
  std::string compression;              // "zstd" or "none"
};

// Where a release's image came from when it was fetched (a registry,
// docs/registry.md): `custom.source`, beside `custom.flotilla`, which is all
// a node reads (0.1.0 included), so nodes ignore it.
struct ReleaseSource {
  std::string reference;  // as the operator wrote it, e.g. "docker://host:5000/shop/kiosk:2"
  Digest digest;          // what the reference resolved to (the index's or the manifest's)
  bool operator==(const ReleaseSource&) const = default;
};

struct Release {
  std::string app;       // [a-z0-9][a-z0-9._-]{0,62}
  uint64_t version = 0;  // >= 1, strictly increasing per app
  ImageRef image;
  std::vector<Artifact> artifacts;
  Json app_spec = Json::object();  // verbatim; must be an object
  std::optional<ReleaseSource> source;
  // `custom.offline_window`, beside `custom.flotilla` (0.1.0 ignores it).
  std::optional<OfflineWindow> offline_window;
};

// An app name: 1-63 of [a-z0-9._-], starting with a letter or digit.
bool IsAppName(std::string_view name);

// "apps/<app>/release-<version>.json".
std::string ReleaseTargetName(const std::string& app, uint64_t version);

// Checks names, digests, that every artifact produces a layer of the image,
// that each layer has exactly one full artifact, that deltas name distinct
// bases other than their own layer, and that info-hashes are unique.
Status ValidateRelease(const Release& release);

// Parses and validates a target's `custom` ({"flotilla": {...}} and, when
// present, "source"). Unknown fields inside "flotilla" are refused (a typo
// must not silently drop a setting), except inside app_spec, which is carried
// verbatim; other members beside "flotilla" are ignored.
Result<Release> ParseRelease(const Json& custom);
// The `custom` object for `release`.
Json ReleaseToJson(const Release& release);

// The newest release of each app among `targets` (targets whose custom has no
// "flotilla" member are ignored; a malformed one is an error). A target name
// that disagrees with its release's app or version is an error.
Result<std::map<std::string, Release>> LatestReleases(const TargetsMetadata& targets);

// Refuses `fresh` when an app's newest release in it is older than in
// `trusted`: release versions are monotonic per app. (An app whose releases
// are all gone was retired; that is allowed.)
Status CheckReleasesMonotonic(const TargetsMetadata& trusted, const TargetsMetadata& fresh);

// Adds `release` to `repo` as a target (refusing a version that is not above
// the app's newest) and publishes targets, snapshot and timestamp.
Status PublishRelease(Repository& repo, const Release& release, const KeyRing& signers);

// Offline app keys (docs/signing.md). "apps/<app>": the delegated role that
// signs `app`'s releases, delegated by the top-level targets with the path
// pattern "apps/<app>/*", terminating.
std::string AppRoleName(const std::string& app);

// The top-level targets' next version with `app`'s delegation set to `keys`
// and `threshold` (added, or replacing the app's keys), unsigned.
Result<SignedDocument> StageAppDelegation(Repository& repo, const std::string& app,
                                          const std::vector<TufKey>& keys, uint32_t threshold,
                                          Duration expiry);

// Where StageRelease lists a release: in its app's role (what the app key
// signs), or also in the top-level targets, which is all a node running
// 0.1.0 reads (signed by the offline targets key; docs/signing.md).
enum class StageIn { kAppRole, kTopLevel };

// The next version of the app role (or of the top-level targets) with every
// target it holds plus `release` (whose version must be above the app's
// newest anywhere in `repo`, except that the top-level may take the release
// its app role already lists, as it is), unsigned; the release's target file
// is written.
Result<SignedDocument> StageRelease(Repository& repo, const Release& release, Duration expiry,
                                    StageIn where = StageIn::kAppRole);

// For a top-level targets version: every release target it adds that the
// app's role lists too has the same length and hashes there (a node's target
// search takes the top-level entry first: both must name the same bytes).
Status CheckSameAsAppRoles(const Repository& repo, const TargetsMetadata& next);

// Refuses `next` as a version of `app`'s role unless every target is a valid
// release of `app` under its own name or the app's floor (release_floor.h),
// no release version goes down from `current` (null: none yet) and the floor
// is neither lowered nor removed.
Status CheckAppRole(const std::string& app, const TargetsMetadata* current,
                    const TargetsMetadata& next);

// REQUIRES: client.Refresh() succeeded. The newest release of each app the
// device may trust: the top-level targets' release targets and those of every
// role the top-level targets delegates, each resolved by the specification's
// target search (GetTargetInfo), so a role's entry counts only where its
// delegation covers the path and no earlier role lists it. A delegated role
// that fails to load (signature, expiry, rollback...) takes out every target
// its delegation covers, wherever listed (so no older release of that app
// stands in), and its error goes to `refused`; other apps are unaffected.
Result<std::map<std::string, Release>> TrustedReleases(TufClient& client,
                                                       std::vector<Status>* refused = nullptr);

}  // namespace flotilla::metadata
