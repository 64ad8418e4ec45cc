// TUF 1.0 metadata: the four top-level roles as C++ values.
//
// Parse* functions take the `signed` object of a document (already parsed by
// ParseJsonStrict) and validate every field they read; they never trust
// their input. ToJson functions produce the `signed` object a repository
// signs. A verifier never re-serializes what it parsed: signatures are
// checked over the canonical form of the `signed` object exactly as received
// (see tuf_signing.h), so fields flotilla does not know survive untouched.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/ed25519.h"
#include "core/status.h"

namespace flotilla::metadata {

enum class RoleType { kRoot, kTargets, kSnapshot, kTimestamp };

// "root", "targets", "snapshot", "timestamp".
std::string_view RoleName(RoleType role);
inline constexpr RoleType kAllRoles[] = {RoleType::kRoot, RoleType::kTargets, RoleType::kSnapshot,
                                         RoleType::kTimestamp};

// The spec version flotilla writes; it reads any 1.x.y.
inline constexpr std::string_view kSpecVersion = "1.0.31";

// An Ed25519 key as TUF writes it:
// {"keytype":"ed25519","keyval":{"public":"<64 hex>"},"scheme":"ed25519"}.
// Its key id is the SHA-256 of the canonical JSON of that object, as given.
struct TufKey {
  std::string keyid;
  Ed25519PublicKey public_key;
  Json json;  // the key object exactly as it appeared (or as MakeTufKey built it)
};

// Builds the key object and key id for `key`.
TufKey MakeTufKey(const Ed25519PublicKey& key);
// Validates a key object: type and scheme ed25519, 32-byte public key, and
// `keyid` equal to the SHA-256 of its canonical JSON.
Result<TufKey> ParseTufKey(std::string_view keyid, const Json& key_json);

struct RoleKeys {
  std::vector<std::string> keyids;  // unique
  uint32_t threshold = 1;           // >= 1
};

// Fields every role carries.
struct CommonFields {
  std::string spec_version{kSpecVersion};
  uint64_t version = 1;  // >= 1
  WallTime expires;
};

struct RootMetadata {
  CommonFields common;
  bool consistent_snapshot = true;
  std::map<std::string, TufKey> keys;  // by key id
  std::map<RoleType, RoleKeys> roles;  // all four present
};

// An entry of timestamp's or snapshot's "meta": a metadata file's version and
// optionally its length and hashes (hex by algorithm name).
struct MetaFileInfo {
  uint64_t version = 1;
  std::optional<uint64_t> length;
  std::map<std::string, std::string> hashes;
};

struct TimestampMetadata {
  CommonFields common;
  MetaFileInfo snapshot;  // meta["snapshot.json"]
};

struct SnapshotMetadata {
  CommonFields common;
  std::map<std::string, MetaFileInfo> meta;  // by file name, "targets.json" required
};

struct TargetFile {
  std::string name;  // the target path, validated by ValidateTargetName
  uint64_t length = 0;
  std::map<std::string, std::string> hashes;  // "sha256" required
  Json custom;                                // null when absent
};

// A delegation is parsed and validated so that it can be refused clearly:
// flotilla's client does not follow delegations (see docs/tuf-client.md).
struct DelegatedRole {
  std::string name;
  RoleKeys keys;
  bool terminating = false;
  std::vector<std::string> paths;               // shell-style patterns
  std::vector<std::string> path_hash_prefixes;  // hex prefixes
};

struct TargetsMetadata {
  CommonFields common;
  std::map<std::string, TargetFile> targets;  // by name
  std::map<std::string, TufKey> delegation_keys;
  std::vector<DelegatedRole> delegations;

  // The delegated role whose paths cover `target_name`, if any.
  const DelegatedRole* DelegationFor(std::string_view target_name) const;
};

Result<RootMetadata> ParseRoot(const Json& signed_json);
Result<TimestampMetadata> ParseTimestamp(const Json& signed_json);
Result<SnapshotMetadata> ParseSnapshot(const Json& signed_json);
Result<TargetsMetadata> ParseTargets(const Json& signed_json);

Json ToJson(const RootMetadata& root);
Json ToJson(const TimestampMetadata& timestamp);
Json ToJson(const SnapshotMetadata& snapshot);
Json ToJson(const TargetsMetadata& targets);
Json ToJson(const MetaFileInfo& info);
Json ToJson(const TargetFile& target);

// Checks `data` against a signed length and hashes: the length must match if
// given, every listed hash must match, and at least one hash (sha256, the only
// algorithm flotilla computes) is required when `require_hash`. An algorithm
// other than sha256 is refused rather than skipped.
Status CheckLengthAndHashes(std::string_view what, ByteSpan data, std::optional<uint64_t> length,
                            const std::map<std::string, std::string>& hashes, bool require_hash);
// The same for a digest and length already computed (e.g. of a file).
Status CheckDigestAndLength(std::string_view what, const Digest& digest, uint64_t actual_length,
                            std::optional<uint64_t> length,
                            const std::map<std::string, std::string>& hashes, bool require_hash);

}  // namespace flotilla::metadata
