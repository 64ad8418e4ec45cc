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
#include "core/status.h"
#include "metadata/tuf_hashes.h"
#include "metadata/tuf_keys.h"

namespace flotilla::metadata {

enum class RoleType { kRoot, kTargets, kSnapshot, kTimestamp };

// "root", "targets", "snapshot", "timestamp".
std::string_view RoleName(RoleType role);
// Corruption unless `signed_json`'s "_type" names `role` (checked before
// signatures, so a document of another role is never counted against this one).
Status CheckRoleType(const Json& signed_json, RoleType role);
inline constexpr RoleType kAllRoles[] = {RoleType::kRoot, RoleType::kTargets, RoleType::kSnapshot,
                                         RoleType::kTimestamp};

// The spec version flotilla writes; it reads any 1.x.y.
inline constexpr std::string_view kSpecVersion = "1.0.31";

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
  // "flotilla_offline_window_max_days": the longest offline validity window a
  // release signer may give (docs/metadata.md); nullopt: none allowed.
  std::optional<uint32_t> offline_window_max_days;
};

inline constexpr std::string_view kOfflineWindowCapField = "flotilla_offline_window_max_days";
inline constexpr uint32_t kMaxOfflineWindowDays = 3650;

// An entry of timestamp's or snapshot's "meta": a metadata file's version and
// optionally its length and hashes (hex by algorithm name).
struct MetaFileInfo {
  uint64_t version = 1;
  std::optional<uint64_t> length;
  HashMap hashes;
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
  HashMap hashes;  // at least one; see tuf_hashes.h
  Json custom;     // null when absent
};

// A delegated targets role (TUF 4.5 "delegations.roles"): trusted for the
// targets its `paths` patterns or `path_hash_prefixes` cover. Neither set
// covers nothing; both set is refused.
struct DelegatedRole {
  std::string name;
  RoleKeys keys;
  bool terminating = false;
  std::optional<std::vector<std::string>> paths;               // shell-style, per path segment
  std::optional<std::vector<std::string>> path_hash_prefixes;  // of the hex SHA-256 of the path

  // Pattern matching is fnmatch(3) with FNM_PATHNAME and FNM_NOESCAPE (as
  // python's fnmatch, per '/'-separated segment): '*' and '?' never match
  // '/', and a leading '.' is matched by wildcards.
  bool Covers(std::string_view target_name) const;
};

// Succinct hash-bin delegation (TAP 15): 2^bit_length terminating roles named
// "<name_prefix>-<hex bin>", the bin being the first bit_length bits of the
// SHA-256 of the target path; all share `keys`.
struct SuccinctRoles {
  RoleKeys keys;
  uint32_t bit_length = 1;  // 1..32
  std::string name_prefix;

  std::string RoleFor(std::string_view target_name) const;
  bool IsBin(std::string_view role_name) const;
  // The name of bin `bin` (< 2^bit_length): the prefix, '-', the bin in zero-padded hex.
  std::string BinName(uint32_t bin) const;
};

struct Delegations {
  std::map<std::string, TufKey> keys;  // by key id
  std::vector<DelegatedRole> roles;    // in priority order (empty with succinct_roles)
  std::optional<SuccinctRoles> succinct_roles;

  struct Candidate {
    std::string role;
    bool terminating;
  };
  // The roles that may sign `target_name`, in the order the search visits them.
  std::vector<Candidate> CandidatesFor(std::string_view target_name) const;
  // The keys and threshold of delegated role `role`, or null if it is not delegated here.
  const RoleKeys* KeysOf(std::string_view role) const;
};

struct TargetsMetadata {
  CommonFields common;
  std::map<std::string, TargetFile> targets;  // by name
  std::optional<Delegations> delegations;
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

}  // namespace flotilla::metadata
