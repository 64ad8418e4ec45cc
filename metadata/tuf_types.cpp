#include "metadata/tuf_types.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "core/enum_names.h"
#include "core/json_object_reader.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

// TUF lets documents carry members of their own: readers here check
// status(), not Finish().
Result<CommonFields> ParseCommon(const Json& signed_json, RoleType expected) {
  RETURN_IF_ERROR(CheckRoleType(signed_json, expected));
  JsonObjectReader r(signed_json, "signed");
  r.Require({"spec_version", "version", "expires"});
  std::string expires;
  CommonFields common;
  r.String("spec_version", common.spec_version);
  r.Unsigned("version", common.version);
  r.String("expires", expires);
  RETURN_IF_ERROR(r.status());
  if (common.spec_version != "1" && common.spec_version.rfind("1.", 0) != 0) {
    return InvalidArgument("unsupported spec_version '" + common.spec_version.substr(0, 32) +
                           "' (flotilla reads 1.x)");
  }
  if (common.version == 0) return InvalidArgument("version must be >= 1");
  ASSIGN_OR_RETURN(common.expires, ParseTufTime(expires));
  return common;
}

// The signed part's member `key`, which must be an object.
Result<const Json*> SignedObject(const Json& signed_json, std::string_view key) {
  JsonObjectReader r(signed_json, "signed");
  r.Require({key});
  const Json* member = r.Object(key);
  RETURN_IF_ERROR(r.status());
  return member;
}

Json CommonToJson(const CommonFields& common, RoleType role) {
  return Json{{"_type", std::string(RoleName(role))},
              {"spec_version", common.spec_version},
              {"version", common.version},
              {"expires", FormatTufTime(common.expires)}};
}

// An object of each entry's ToJson, by name.
template <typename Map>
Json EntriesToJson(const Map& entries) {
  Json out = Json::object();
  for (const auto& [name, entry] : entries) out[name] = ToJson(entry);
  return out;
}

Result<RoleKeys> ParseRoleKeys(JsonObjectReader& r, const std::map<std::string, TufKey>& keys) {
  r.Require({"keyids", "threshold"});
  RoleKeys role;
  uint64_t threshold = 0;
  r.Strings("keyids", role.keyids);
  r.Unsigned("threshold", threshold);
  RETURN_IF_ERROR(r.status());
  if (std::set<std::string>(role.keyids.begin(), role.keyids.end()).size() != role.keyids.size()) {
    return InvalidArgument("key id listed twice in one role");
  }
  if (threshold == 0 || threshold > 1024) {
    return InvalidArgument("threshold must be 1..1024, got " + std::to_string(threshold));
  }
  role.threshold = static_cast<uint32_t>(threshold);
  for (const auto& id : role.keyids) {
    if (!keys.contains(id)) return InvalidArgument("role names unknown key id " + id.substr(0, 16));
  }
  return role;
}

// Each member of `object` parsed by `parse(name, value)`, by name.
template <typename T, typename Parse>
Result<std::map<std::string, T>> ParseEntries(const Json& object, const Parse& parse) {
  std::map<std::string, T> entries;
  for (auto it = object.begin(); it != object.end(); ++it) {
    ASSIGN_OR_RETURN(T entry, parse(it.key(), it.value()));
    entries.emplace(it.key(), std::move(entry));
  }
  return entries;
}

Result<std::map<std::string, TufKey>> ParseKeys(const Json& keys_json) {
  return ParseEntries<TufKey>(keys_json, ParseTufKey);
}

Json RoleKeysToJson(const RoleKeys& role) {
  return Json{{"keyids", role.keyids}, {"threshold", role.threshold}};
}

Json KeysToJson(const std::map<std::string, TufKey>& keys) {
  Json out = Json::object();
  for (const auto& [id, key] : keys) out[id] = key.json;
  return out;
}

Result<std::map<std::string, std::string>> ParseHashes(const Json& hashes_json) {
  std::map<std::string, std::string> hashes;
  for (auto it = hashes_json.begin(); it != hashes_json.end(); ++it) {
    if (!it->is_string()) return InvalidArgument("hash values must be strings");
    hashes.emplace(it.key(), it->get<std::string>());
  }
  if (hashes.empty()) return InvalidArgument("hashes must not be empty");
  return hashes;
}

Result<MetaFileInfo> ParseMetaFileInfo(const Json& info_json, const std::string& path) {
  JsonObjectReader r(info_json, path);
  r.Require({"version"});
  MetaFileInfo info;
  r.Unsigned("version", info.version);
  if (r.Find("length") != nullptr) r.Unsigned("length", info.length.emplace());
  const Json* hashes = r.Object("hashes");
  RETURN_IF_ERROR(r.status());
  if (info.version == 0) return InvalidArgument("meta version must be >= 1");
  if (hashes != nullptr) {
    ASSIGN_OR_RETURN(info.hashes, ParseHashes(*hashes));
  }
  return info;
}

Result<TargetFile> ParseTargetFile(const std::string& name, const Json& target_json) {
  RETURN_IF_ERROR(ValidateTargetName(name));
  JsonObjectReader r(target_json, "target " + PercentEncode(name));
  r.Require({"length", "hashes"});
  TargetFile target;
  target.name = name;
  r.Unsigned("length", target.length);
  const Json* hashes = r.Object("hashes");
  const Json* custom = r.Object("custom");
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(target.hashes, ParseHashes(*hashes));
  if (custom != nullptr) target.custom = *custom;
  return target;
}

bool IsTopLevelName(std::string_view name) {
  for (RoleType top : kAllRoles) {
    if (name == RoleName(top)) return true;
  }
  return false;
}

Status ValidateDelegatedName(std::string_view name) {
  RETURN_IF_ERROR(ValidateRoleName(name));
  if (IsTopLevelName(name)) {
    return InvalidArgument("delegated role uses the top-level name '" + std::string(name) + "'");
  }
  return Status::Ok();
}

Result<DelegatedRole> ParseDelegatedRole(JsonObjectReader& r,
                                         const std::map<std::string, TufKey>& keys) {
  r.Require({"name", "terminating"});
  DelegatedRole role;
  r.String("name", role.name);
  r.Bool("terminating", role.terminating);
  if (r.Find("paths") != nullptr) r.Strings("paths", role.paths.emplace());
  if (r.Find("path_hash_prefixes") != nullptr) {
    r.Strings("path_hash_prefixes", role.path_hash_prefixes.emplace());
  }
  RETURN_IF_ERROR(r.status());
  RETURN_IF_ERROR(ValidateDelegatedName(role.name));
  ASSIGN_OR_RETURN(role.keys, ParseRoleKeys(r, keys));
  if (role.paths && role.path_hash_prefixes) {
    return InvalidArgument("delegated role " + PercentEncode(role.name) +
                           " sets both paths and path_hash_prefixes");
  }
  return role;
}

Result<SuccinctRoles> ParseSuccinctRoles(const Json& json,
                                         const std::map<std::string, TufKey>& keys) {
  JsonObjectReader r(json, "delegations.succinct_roles");
  r.Require({"bit_length", "name_prefix"});
  SuccinctRoles succinct;
  r.Unsigned("bit_length", succinct.bit_length, 1, 32);
  r.String("name_prefix", succinct.name_prefix);
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(succinct.keys, ParseRoleKeys(r, keys));
  // Every bin name must be a valid delegated role name; the last is the longest.
  RETURN_IF_ERROR(ValidateDelegatedName(succinct.name_prefix + "-" + std::string(8, 'f')));
  return succinct;
}

Result<Delegations> ParseDelegations(const Json& json) {
  JsonObjectReader r(json, "delegations");
  r.Require({"keys"});
  const Json* keys = r.Object("keys");
  const Json* roles = r.Array("roles");
  const Json* succinct = r.Object("succinct_roles");
  RETURN_IF_ERROR(r.status());
  if ((roles == nullptr) == (succinct == nullptr)) {
    return InvalidArgument("delegations need exactly one of roles and succinct_roles");
  }
  Delegations delegations;
  ASSIGN_OR_RETURN(delegations.keys, ParseKeys(*keys));
  if (succinct != nullptr) {
    ASSIGN_OR_RETURN(delegations.succinct_roles, ParseSuccinctRoles(*succinct, delegations.keys));
    return delegations;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < roles->size(); ++i) {
    JsonObjectReader role_reader((*roles)[i], "delegations.roles[" + std::to_string(i) + "]");
    ASSIGN_OR_RETURN(DelegatedRole role, ParseDelegatedRole(role_reader, delegations.keys));
    if (!names.insert(role.name).second) {
      return InvalidArgument("delegated role " + PercentEncode(role.name) + " named twice");
    }
    delegations.roles.push_back(std::move(role));
  }
  return delegations;
}

Json ToJson(const DelegatedRole& role) {
  Json out = RoleKeysToJson(role.keys);
  out["name"] = role.name;
  out["terminating"] = role.terminating;
  if (role.paths) out["paths"] = *role.paths;
  if (role.path_hash_prefixes) out["path_hash_prefixes"] = *role.path_hash_prefixes;
  return out;
}

Json ToJson(const Delegations& delegations) {
  Json out{{"keys", KeysToJson(delegations.keys)}};
  if (delegations.succinct_roles) {
    const SuccinctRoles& succinct = *delegations.succinct_roles;
    Json json = RoleKeysToJson(succinct.keys);
    json["bit_length"] = succinct.bit_length;
    json["name_prefix"] = succinct.name_prefix;
    out["succinct_roles"] = json;
    return out;
  }
  Json roles = Json::array();
  for (const auto& role : delegations.roles) roles.push_back(ToJson(role));
  out["roles"] = roles;
  return out;
}

// Hex digits needed for the highest bin number of `bits` bits.
size_t BinSuffixLength(uint32_t bits) { return (bits + 3) / 4; }

bool SegmentsMatch(std::string_view pattern, std::string_view name) {
  // fnmatch with FNM_PATHNAME matches segment by segment: '*', '?' and
  // bracket expressions never match '/'.
  return ::fnmatch(std::string(pattern).c_str(), std::string(name).c_str(),
                   FNM_PATHNAME | FNM_NOESCAPE) == 0;
}

}  // namespace

constexpr EnumName<RoleType> kRoleNames[] = {{RoleType::kRoot, "root"},
                                             {RoleType::kTargets, "targets"},
                                             {RoleType::kSnapshot, "snapshot"},
                                             {RoleType::kTimestamp, "timestamp"}};

std::string_view RoleName(RoleType role) { return NameOf(kRoleNames, role); }

Status CheckRoleType(const Json& signed_json, RoleType role) {
  JsonObjectReader r(signed_json, "signed");
  r.Require({"_type"});
  std::string type;
  r.String("_type", type);
  RETURN_IF_ERROR(r.status());
  if (type != RoleName(role)) {
    return Corruption("expected " + std::string(RoleName(role)) + " metadata, got _type '" +
                      type.substr(0, 32) + "'");
  }
  return Status::Ok();
}

bool DelegatedRole::Covers(std::string_view target_name) const {
  if (paths) {
    return std::any_of(paths->begin(), paths->end(), [&](const std::string& pattern) {
      return SegmentsMatch(pattern, target_name);
    });
  }
  if (path_hash_prefixes) {
    const std::string hash = Digest::Of(target_name).Hex();
    return std::any_of(path_hash_prefixes->begin(), path_hash_prefixes->end(),
                       [&](const std::string& prefix) { return hash.starts_with(prefix); });
  }
  return false;
}

std::string SuccinctRoles::RoleFor(std::string_view target_name) const {
  const Digest digest = Digest::Of(target_name);
  const auto& hash = digest.bytes();
  uint32_t first = uint32_t{hash[0]} << 24 | uint32_t{hash[1]} << 16 | uint32_t{hash[2]} << 8 |
                   uint32_t{hash[3]};
  return BinName(static_cast<uint32_t>(uint64_t{first} >> (32 - bit_length)));
}

std::string SuccinctRoles::BinName(uint32_t bin) const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix(BinSuffixLength(bit_length), '0');
  for (size_t i = suffix.size(); i-- > 0; bin >>= 4) suffix[i] = kHex[bin & 0xf];
  return name_prefix + "-" + suffix;
}

bool SuccinctRoles::IsBin(std::string_view role_name) const {
  const std::string prefix = name_prefix + "-";
  if (!role_name.starts_with(prefix)) return false;
  std::string_view suffix = role_name.substr(prefix.size());
  if (suffix.size() != BinSuffixLength(bit_length)) return false;
  uint64_t bin = 0;
  for (char c : suffix) {
    int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    bin = bin << 4 | static_cast<uint64_t>(digit);
  }
  return bin < (uint64_t{1} << bit_length);
}

std::vector<Delegations::Candidate> Delegations::CandidatesFor(std::string_view target_name) const {
  if (succinct_roles) return {{succinct_roles->RoleFor(target_name), true}};
  std::vector<Candidate> out;
  for (const auto& role : roles) {
    if (role.Covers(target_name)) out.push_back({role.name, role.terminating});
  }
  return out;
}

const RoleKeys* Delegations::KeysOf(std::string_view role) const {
  if (succinct_roles) return succinct_roles->IsBin(role) ? &succinct_roles->keys : nullptr;
  for (const auto& candidate : roles) {
    if (candidate.name == role) return &candidate.keys;
  }
  return nullptr;
}

Result<RootMetadata> ParseRoot(const Json& signed_json) {
  RootMetadata root;
  ASSIGN_OR_RETURN(root.common, ParseCommon(signed_json, RoleType::kRoot));
  JsonObjectReader r(signed_json, "signed");
  r.Require({"keys", "roles"});
  root.consistent_snapshot = false;
  r.Bool("consistent_snapshot", root.consistent_snapshot);
  if (signed_json.contains(kOfflineWindowCapField)) {
    uint32_t days = 0;
    r.Unsigned(kOfflineWindowCapField, days, 1, kMaxOfflineWindowDays);
    root.offline_window_max_days = days;
  }
  const Json* keys = r.Object("keys");
  const Json* roles = r.Object("roles");
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(root.keys, ParseKeys(*keys));
  JsonObjectReader roles_reader(*roles, "signed.roles");
  for (RoleType role : kAllRoles) {
    roles_reader.Require({RoleName(role)});
    const Json* role_json = roles_reader.Object(RoleName(role));
    RETURN_IF_ERROR(roles_reader.status());
    JsonObjectReader role_reader(*role_json, roles_reader.PathOf(RoleName(role)));
    ASSIGN_OR_RETURN(
        root.roles[role],
        ParseRoleKeys(role_reader, root.keys).WithContext("role " + std::string(RoleName(role))));
  }
  if (roles->size() != 4) return InvalidArgument("root names a role other than the top-level four");
  return root;
}

Result<TimestampMetadata> ParseTimestamp(const Json& signed_json) {
  TimestampMetadata timestamp;
  ASSIGN_OR_RETURN(timestamp.common, ParseCommon(signed_json, RoleType::kTimestamp));
  ASSIGN_OR_RETURN(const Json* meta, SignedObject(signed_json, "meta"));
  if (meta->size() != 1 || !meta->contains("snapshot.json")) {
    return InvalidArgument("timestamp meta must hold snapshot.json only");
  }
  ASSIGN_OR_RETURN(timestamp.snapshot,
                   ParseMetaFileInfo((*meta)["snapshot.json"], "signed.meta.snapshot.json"));
  return timestamp;
}

Result<SnapshotMetadata> ParseSnapshot(const Json& signed_json) {
  SnapshotMetadata snapshot;
  ASSIGN_OR_RETURN(snapshot.common, ParseCommon(signed_json, RoleType::kSnapshot));
  ASSIGN_OR_RETURN(const Json* meta, SignedObject(signed_json, "meta"));
  auto parse = [](const std::string& file, const Json& info) -> Result<MetaFileInfo> {
    if (file.size() < 6 || file.substr(file.size() - 5) != ".json") {
      return InvalidArgument("snapshot meta name '" + PercentEncode(file.substr(0, 64)) +
                             "' does not end in .json");
    }
    RETURN_IF_ERROR(ValidateRoleName(std::string_view(file).substr(0, file.size() - 5)));
    return ParseMetaFileInfo(info, "signed.meta." + file);
  };
  ASSIGN_OR_RETURN(snapshot.meta, ParseEntries<MetaFileInfo>(*meta, parse));
  if (!snapshot.meta.contains("targets.json")) {
    return InvalidArgument("snapshot meta does not list targets.json");
  }
  return snapshot;
}

Result<TargetsMetadata> ParseTargets(const Json& signed_json) {
  TargetsMetadata targets;
  ASSIGN_OR_RETURN(targets.common, ParseCommon(signed_json, RoleType::kTargets));
  ASSIGN_OR_RETURN(const Json* entries, SignedObject(signed_json, "targets"));
  ASSIGN_OR_RETURN(targets.targets, ParseEntries<TargetFile>(*entries, ParseTargetFile));
  JsonObjectReader r(signed_json, "signed");
  if (const Json* delegations = r.Find("delegations")) {
    ASSIGN_OR_RETURN(targets.delegations, ParseDelegations(*delegations));
  }
  return targets;
}

Json ToJson(const RootMetadata& root) {
  Json out = CommonToJson(root.common, RoleType::kRoot);
  out["consistent_snapshot"] = root.consistent_snapshot;
  out["keys"] = KeysToJson(root.keys);
  Json roles = Json::object();
  for (const auto& [role, keys] : root.roles)
    roles[std::string(RoleName(role))] = RoleKeysToJson(keys);
  out["roles"] = roles;
  if (root.offline_window_max_days) {
    out[std::string(kOfflineWindowCapField)] = *root.offline_window_max_days;
  }
  return out;
}

Json ToJson(const MetaFileInfo& info) {
  Json out{{"version", info.version}};
  if (info.length) out["length"] = *info.length;
  if (!info.hashes.empty()) out["hashes"] = info.hashes;
  return out;
}

Json ToJson(const TimestampMetadata& timestamp) {
  Json out = CommonToJson(timestamp.common, RoleType::kTimestamp);
  out["meta"] = Json{{"snapshot.json", ToJson(timestamp.snapshot)}};
  return out;
}

Json ToJson(const SnapshotMetadata& snapshot) {
  Json out = CommonToJson(snapshot.common, RoleType::kSnapshot);
  out["meta"] = EntriesToJson(snapshot.meta);
  return out;
}

Json ToJson(const TargetFile& target) {
  Json out{{"length", target.length}, {"hashes", target.hashes}};
  if (!target.custom.is_null()) out["custom"] = target.custom;
  return out;
}

Json ToJson(const TargetsMetadata& targets) {
  Json out = CommonToJson(targets.common, RoleType::kTargets);
  out["targets"] = EntriesToJson(targets.targets);
  if (targets.delegations) out["delegations"] = ToJson(*targets.delegations);
  return out;
}

}  // namespace flotilla::metadata
