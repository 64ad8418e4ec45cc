#include "metadata/tuf_types.h"

#include <fnmatch.h>

#include <set>

#include "metadata/json_fields.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace jf = json_fields;
namespace {

Result<CommonFields> ParseCommon(const Json& signed_json, RoleType expected) {
  RETURN_IF_ERROR(jf::RequireObject(signed_json, "signed"));
  ASSIGN_OR_RETURN(std::string type, jf::GetString(signed_json, "_type"));
  if (type != RoleName(expected)) {
    return Corruption("expected " + std::string(RoleName(expected)) + " metadata, got _type '" +
                      type.substr(0, 32) + "'");
  }
  CommonFields common;
  ASSIGN_OR_RETURN(common.spec_version, jf::GetString(signed_json, "spec_version"));
  if (common.spec_version != "1" && common.spec_version.rfind("1.", 0) != 0) {
    return InvalidArgument("unsupported spec_version '" + common.spec_version.substr(0, 32) +
                           "' (flotilla reads 1.x)");
  }
  ASSIGN_OR_RETURN(common.version, jf::GetUint(signed_json, "version"));
  if (common.version == 0) return InvalidArgument("version must be >= 1");
  ASSIGN_OR_RETURN(std::string expires, jf::GetString(signed_json, "expires"));
  ASSIGN_OR_RETURN(common.expires, ParseTufTime(expires));
  return common;
}

void PutCommon(const CommonFields& common, RoleType role, Json& out) {
  out["_type"] = std::string(RoleName(role));
  out["spec_version"] = common.spec_version;
  out["version"] = common.version;
  out["expires"] = FormatTufTime(common.expires);
}

Result<std::vector<std::string>> ParseKeyIds(const Json& role_json) {
  ASSIGN_OR_RETURN(const Json* ids, jf::GetArray(role_json, "keyids"));
  std::vector<std::string> keyids;
  std::set<std::string> seen;
  for (const Json& id : *ids) {
    if (!id.is_string()) return InvalidArgument("keyids must be strings");
    if (!seen.insert(id.get<std::string>()).second) {
      return InvalidArgument("key id listed twice in one role");
    }
    keyids.push_back(id.get<std::string>());
  }
  return keyids;
}

Result<RoleKeys> ParseRoleKeys(const Json& role_json, const std::map<std::string, TufKey>& keys) {
  RETURN_IF_ERROR(jf::RequireObject(role_json, "role"));
  RoleKeys role;
  ASSIGN_OR_RETURN(role.keyids, ParseKeyIds(role_json));
  ASSIGN_OR_RETURN(uint64_t threshold, jf::GetUint(role_json, "threshold"));
  if (threshold == 0 || threshold > 1024) {
    return InvalidArgument("threshold must be 1..1024, got " + std::to_string(threshold));
  }
  role.threshold = static_cast<uint32_t>(threshold);
  for (const auto& id : role.keyids) {
    if (!keys.contains(id)) return InvalidArgument("role names unknown key id " + id.substr(0, 16));
  }
  return role;
}

Result<std::map<std::string, TufKey>> ParseKeys(const Json& keys_json) {
  RETURN_IF_ERROR(jf::RequireObject(keys_json, "keys"));
  std::map<std::string, TufKey> keys;
  for (auto it = keys_json.begin(); it != keys_json.end(); ++it) {
    ASSIGN_OR_RETURN(TufKey key, ParseTufKey(it.key(), it.value()));
    keys.emplace(it.key(), std::move(key));
  }
  return keys;
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
  RETURN_IF_ERROR(jf::RequireObject(hashes_json, "hashes"));
  std::map<std::string, std::string> hashes;
  for (auto it = hashes_json.begin(); it != hashes_json.end(); ++it) {
    if (!it->is_string()) return InvalidArgument("hash values must be strings");
    hashes.emplace(it.key(), it->get<std::string>());
  }
  if (hashes.empty()) return InvalidArgument("hashes must not be empty");
  return hashes;
}

Result<MetaFileInfo> ParseMetaFileInfo(const Json& info_json) {
  RETURN_IF_ERROR(jf::RequireObject(info_json, "meta entry"));
  MetaFileInfo info;
  ASSIGN_OR_RETURN(info.version, jf::GetUint(info_json, "version"));
  if (info.version == 0) return InvalidArgument("meta version must be >= 1");
  if (jf::Has(info_json, "length")) {
    ASSIGN_OR_RETURN(info.length, jf::GetUint(info_json, "length"));
  }
  if (jf::Has(info_json, "hashes")) {
    ASSIGN_OR_RETURN(info.hashes, ParseHashes(info_json["hashes"]));
  }
  return info;
}

Result<TargetFile> ParseTargetFile(const std::string& name, const Json& target_json) {
  RETURN_IF_ERROR(ValidateTargetName(name));
  RETURN_IF_ERROR(jf::RequireObject(target_json, "target " + PercentEncode(name)));
  TargetFile target;
  target.name = name;
  ASSIGN_OR_RETURN(target.length, jf::GetUint(target_json, "length"));
  ASSIGN_OR_RETURN(const Json* hashes, jf::GetObject(target_json, "hashes"));
  ASSIGN_OR_RETURN(target.hashes, ParseHashes(*hashes));
  if (jf::Has(target_json, "custom")) {
    ASSIGN_OR_RETURN(const Json* custom, jf::GetObject(target_json, "custom"));
    target.custom = *custom;
  }
  return target;
}

Result<std::vector<std::string>> ParseStringArray(const Json& array, std::string_view what) {
  if (!array.is_array()) return InvalidArgument(std::string(what) + " must be an array");
  std::vector<std::string> out;
  for (const Json& item : array) {
    if (!item.is_string()) return InvalidArgument(std::string(what) + " must hold strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<DelegatedRole> ParseDelegatedRole(const Json& role_json,
                                         const std::map<std::string, TufKey>& keys) {
  DelegatedRole role;
  ASSIGN_OR_RETURN(role.name, jf::GetString(role_json, "name"));
  RETURN_IF_ERROR(ValidateRoleName(role.name));
  for (RoleType top : kAllRoles) {
    if (role.name == RoleName(top)) return InvalidArgument("delegated role uses a top-level name");
  }
  ASSIGN_OR_RETURN(role.keys, ParseRoleKeys(role_json, keys));
  ASSIGN_OR_RETURN(role.terminating, jf::GetBool(role_json, "terminating"));
  bool has_paths = jf::Has(role_json, "paths");
  if (has_paths == jf::Has(role_json, "path_hash_prefixes")) {
    return InvalidArgument("delegated role " + PercentEncode(role.name) +
                           " needs exactly one of paths and path_hash_prefixes");
  }
  if (has_paths) {
    ASSIGN_OR_RETURN(role.paths, ParseStringArray(role_json["paths"], "paths"));
  } else {
    ASSIGN_OR_RETURN(role.path_hash_prefixes,
                     ParseStringArray(role_json["path_hash_prefixes"], "path_hash_prefixes"));
  }
  return role;
}

Status ParseDelegations(const Json& delegations_json, TargetsMetadata& targets) {
  RETURN_IF_ERROR(jf::RequireObject(delegations_json, "delegations"));
  ASSIGN_OR_RETURN(const Json* keys, jf::GetObject(delegations_json, "keys"));
  ASSIGN_OR_RETURN(targets.delegation_keys, ParseKeys(*keys));
  ASSIGN_OR_RETURN(const Json* roles, jf::GetArray(delegations_json, "roles"));
  std::set<std::string> names;
  for (const Json& role_json : *roles) {
    RETURN_IF_ERROR(jf::RequireObject(role_json, "delegated role"));
    ASSIGN_OR_RETURN(DelegatedRole role, ParseDelegatedRole(role_json, targets.delegation_keys));
    if (!names.insert(role.name).second) return InvalidArgument("delegated role named twice");
    targets.delegations.push_back(std::move(role));
  }
  return Status::Ok();
}

}  // namespace

std::string_view RoleName(RoleType role) {
  switch (role) {
    case RoleType::kRoot:
      return "root";
    case RoleType::kTargets:
      return "targets";
    case RoleType::kSnapshot:
      return "snapshot";
    case RoleType::kTimestamp:
      return "timestamp";
  }
  return "unknown";
}

TufKey MakeTufKey(const Ed25519PublicKey& key) {
  TufKey out;
  out.public_key = key;
  out.json =
      Json{{"keytype", "ed25519"}, {"scheme", "ed25519"}, {"keyval", {{"public", key.Hex()}}}};
  out.keyid = Digest::Of(CanonicalJson(out.json).value()).Hex();
  return out;
}

Result<TufKey> ParseTufKey(std::string_view keyid, const Json& key_json) {
  RETURN_IF_ERROR(jf::RequireObject(key_json, "key"));
  ASSIGN_OR_RETURN(std::string keytype, jf::GetString(key_json, "keytype"));
  ASSIGN_OR_RETURN(std::string scheme, jf::GetString(key_json, "scheme"));
  if (keytype != "ed25519" || scheme != "ed25519") {
    return InvalidArgument("unsupported key type '" + keytype.substr(0, 32) + "'/'" +
                           scheme.substr(0, 32) + "' (flotilla supports ed25519)");
  }
  ASSIGN_OR_RETURN(const Json* keyval, jf::GetObject(key_json, "keyval"));
  ASSIGN_OR_RETURN(std::string public_hex, jf::GetString(*keyval, "public"));
  TufKey key;
  ASSIGN_OR_RETURN(key.public_key, Ed25519PublicKey::FromHex(public_hex));
  ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(key_json));
  key.keyid = Digest::Of(canonical).Hex();
  if (key.keyid != keyid) {
    return Corruption("key id " + std::string(keyid.substr(0, 16)) +
                      "... is not the SHA-256 of its key (" + key.keyid.substr(0, 16) + "...)");
  }
  key.json = key_json;
  return key;
}

const DelegatedRole* TargetsMetadata::DelegationFor(std::string_view target_name) const {
  std::string name(target_name);
  std::string name_hash = Digest::Of(target_name).Hex();
  for (const auto& role : delegations) {
    for (const auto& pattern : role.paths) {
      if (::fnmatch(pattern.c_str(), name.c_str(), FNM_PATHNAME) == 0) return &role;
    }
    for (const auto& prefix : role.path_hash_prefixes) {
      if (name_hash.rfind(prefix, 0) == 0) return &role;
    }
  }
  return nullptr;
}

Result<RootMetadata> ParseRoot(const Json& signed_json) {
  RootMetadata root;
  ASSIGN_OR_RETURN(root.common, ParseCommon(signed_json, RoleType::kRoot));
  if (jf::Has(signed_json, "consistent_snapshot")) {
    ASSIGN_OR_RETURN(root.consistent_snapshot, jf::GetBool(signed_json, "consistent_snapshot"));
  } else {
    root.consistent_snapshot = false;
  }
  ASSIGN_OR_RETURN(const Json* keys, jf::GetObject(signed_json, "keys"));
  ASSIGN_OR_RETURN(root.keys, ParseKeys(*keys));
  ASSIGN_OR_RETURN(const Json* roles, jf::GetObject(signed_json, "roles"));
  for (RoleType role : kAllRoles) {
    ASSIGN_OR_RETURN(const Json* role_json, jf::GetObject(*roles, RoleName(role)));
    auto parsed = ParseRoleKeys(*role_json, root.keys);
    if (!parsed.ok()) return parsed.status().WithContext("role " + std::string(RoleName(role)));
    root.roles.emplace(role, std::move(parsed).value());
  }
  if (roles->size() != 4) return InvalidArgument("root names a role other than the top-level four");
  return root;
}

Result<TimestampMetadata> ParseTimestamp(const Json& signed_json) {
  TimestampMetadata timestamp;
  ASSIGN_OR_RETURN(timestamp.common, ParseCommon(signed_json, RoleType::kTimestamp));
  ASSIGN_OR_RETURN(const Json* meta, jf::GetObject(signed_json, "meta"));
  if (meta->size() != 1) return InvalidArgument("timestamp meta must hold snapshot.json only");
  ASSIGN_OR_RETURN(const Json* info, jf::GetObject(*meta, "snapshot.json"));
  ASSIGN_OR_RETURN(timestamp.snapshot, ParseMetaFileInfo(*info));
  return timestamp;
}

Result<SnapshotMetadata> ParseSnapshot(const Json& signed_json) {
  SnapshotMetadata snapshot;
  ASSIGN_OR_RETURN(snapshot.common, ParseCommon(signed_json, RoleType::kSnapshot));
  ASSIGN_OR_RETURN(const Json* meta, jf::GetObject(signed_json, "meta"));
  for (auto it = meta->begin(); it != meta->end(); ++it) {
    const std::string& file = it.key();
    if (file.size() < 6 || file.substr(file.size() - 5) != ".json") {
      return InvalidArgument("snapshot meta name '" + PercentEncode(file.substr(0, 64)) +
                             "' does not end in .json");
    }
    RETURN_IF_ERROR(ValidateRoleName(std::string_view(file).substr(0, file.size() - 5)));
    ASSIGN_OR_RETURN(MetaFileInfo info, ParseMetaFileInfo(it.value()));
    snapshot.meta.emplace(file, std::move(info));
  }
  if (!snapshot.meta.contains("targets.json")) {
    return InvalidArgument("snapshot meta does not list targets.json");
  }
  return snapshot;
}

Result<TargetsMetadata> ParseTargets(const Json& signed_json) {
  TargetsMetadata targets;
  ASSIGN_OR_RETURN(targets.common, ParseCommon(signed_json, RoleType::kTargets));
  ASSIGN_OR_RETURN(const Json* entries, jf::GetObject(signed_json, "targets"));
  for (auto it = entries->begin(); it != entries->end(); ++it) {
    ASSIGN_OR_RETURN(TargetFile target, ParseTargetFile(it.key(), it.value()));
    targets.targets.emplace(it.key(), std::move(target));
  }
  if (jf::Has(signed_json, "delegations")) {
    RETURN_IF_ERROR(ParseDelegations(signed_json["delegations"], targets));
  }
  return targets;
}

Json ToJson(const RootMetadata& root) {
  Json out;
  PutCommon(root.common, RoleType::kRoot, out);
  out["consistent_snapshot"] = root.consistent_snapshot;
  out["keys"] = KeysToJson(root.keys);
  Json roles = Json::object();
  for (const auto& [role, keys] : root.roles)
    roles[std::string(RoleName(role))] = RoleKeysToJson(keys);
  out["roles"] = roles;
  return out;
}

Json ToJson(const MetaFileInfo& info) {
  Json out{{"version", info.version}};
  if (info.length) out["length"] = *info.length;
  if (!info.hashes.empty()) out["hashes"] = info.hashes;
  return out;
}

Json ToJson(const TimestampMetadata& timestamp) {
  Json out;
  PutCommon(timestamp.common, RoleType::kTimestamp, out);
  out["meta"] = Json{{"snapshot.json", ToJson(timestamp.snapshot)}};
  return out;
}

Json ToJson(const SnapshotMetadata& snapshot) {
  Json out;
  PutCommon(snapshot.common, RoleType::kSnapshot, out);
  Json meta = Json::object();
  for (const auto& [file, info] : snapshot.meta) meta[file] = ToJson(info);
  out["meta"] = meta;
  return out;
}

Json ToJson(const TargetFile& target) {
  Json out{{"length", target.length}, {"hashes", target.hashes}};
  if (!target.custom.is_null()) out["custom"] = target.custom;
  return out;
}

Json ToJson(const TargetsMetadata& targets) {
  Json out;
  PutCommon(targets.common, RoleType::kTargets, out);
  Json entries = Json::object();
  for (const auto& [name, target] : targets.targets) entries[name] = ToJson(target);
  out["targets"] = entries;
  return out;
}

Status CheckDigestAndLength(std::string_view what, const Digest& digest, uint64_t actual_length,
                            std::optional<uint64_t> length,
                            const std::map<std::string, std::string>& hashes, bool require_hash) {
  if (length && *length != actual_length) {
    return Corruption(std::string(what) + " is " + std::to_string(actual_length) +
                      " bytes, the signed length is " + std::to_string(*length));
  }
  if (require_hash && hashes.empty()) return Corruption(std::string(what) + " has no signed hash");
  for (const auto& [algorithm, hex] : hashes) {
    if (algorithm != "sha256") {
      return Corruption(std::string(what) + ": unsupported hash algorithm '" +
                        algorithm.substr(0, 32) + "'");
    }
    auto expected = Digest::ParseHex(hex);
    if (!expected.ok() || !ConstantTimeEqual(expected->bytes(), digest.bytes())) {
      return Corruption(std::string(what) + " does not match its signed sha256");
    }
  }
  return Status::Ok();
}

Status CheckLengthAndHashes(std::string_view what, ByteSpan data, std::optional<uint64_t> length,
                            const std::map<std::string, std::string>& hashes, bool require_hash) {
  return CheckDigestAndLength(what, Digest::Of(data), data.size(), length, hashes, require_hash);
}

}  // namespace flotilla::metadata
