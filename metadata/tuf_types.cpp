#include "metadata/tuf_types.h"

#include <fnmatch.h>

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

void PutCommon(const CommonFields& common, RoleType role, Json& out) {
  out["_type"] = std::string(RoleName(role));
  out["spec_version"] = common.spec_version;
  out["version"] = common.version;
  out["expires"] = FormatTufTime(common.expires);
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

Result<std::map<std::string, TufKey>> ParseKeys(const Json& keys_json) {
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

Result<DelegatedRole> ParseDelegatedRole(JsonObjectReader& r,
                                         const std::map<std::string, TufKey>& keys) {
  r.Require({"name", "terminating"});
  DelegatedRole role;
  r.String("name", role.name);
  r.Bool("terminating", role.terminating);
  const bool has_paths = r.Find("paths") != nullptr;
  const bool has_prefixes = r.Find("path_hash_prefixes") != nullptr;
  r.Strings("paths", role.paths);
  r.Strings("path_hash_prefixes", role.path_hash_prefixes);
  RETURN_IF_ERROR(r.status());
  RETURN_IF_ERROR(ValidateRoleName(role.name));
  for (RoleType top : kAllRoles) {
    if (role.name == RoleName(top)) return InvalidArgument("delegated role uses a top-level name");
  }
  ASSIGN_OR_RETURN(role.keys, ParseRoleKeys(r, keys));
  if (has_paths == has_prefixes) {
    return InvalidArgument("delegated role " + PercentEncode(role.name) +
                           " needs exactly one of paths and path_hash_prefixes");
  }
  return role;
}

Status ParseDelegations(const Json& delegations_json, TargetsMetadata& targets) {
  JsonObjectReader r(delegations_json, "delegations");
  r.Require({"keys", "roles"});
  const Json* keys = r.Object("keys");
  const Json* roles = r.Array("roles");
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(targets.delegation_keys, ParseKeys(*keys));
  std::set<std::string> names;
  for (size_t i = 0; i < roles->size(); ++i) {
    JsonObjectReader role_reader((*roles)[i], "delegations.roles[" + std::to_string(i) + "]");
    ASSIGN_OR_RETURN(DelegatedRole role, ParseDelegatedRole(role_reader, targets.delegation_keys));
    if (!names.insert(role.name).second) return InvalidArgument("delegated role named twice");
    targets.delegations.push_back(std::move(role));
  }
  return Status::Ok();
}

}  // namespace

std::string_view RoleName(RoleType role) {
  static constexpr EnumName<RoleType> kNames[] = {{RoleType::kRoot, "root"},
                                                  {RoleType::kTargets, "targets"},
                                                  {RoleType::kSnapshot, "snapshot"},
                                                  {RoleType::kTimestamp, "timestamp"}};
  return NameOf(kNames, role);
}

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

TufKey MakeTufKey(const Ed25519PublicKey& key) {
  TufKey out;
  out.public_key = key;
  out.json =
      Json{{"keytype", "ed25519"}, {"scheme", "ed25519"}, {"keyval", {{"public", key.Hex()}}}};
  out.keyid = Digest::Of(CanonicalJson(out.json).value()).Hex();
  return out;
}

Result<TufKey> ParseTufKey(std::string_view keyid, const Json& key_json) {
  JsonObjectReader r(key_json, "key");
  r.Require({"keytype", "scheme", "keyval"});
  std::string keytype, scheme, public_hex;
  r.String("keytype", keytype);
  r.String("scheme", scheme);
  const Json* keyval = r.Object("keyval");
  RETURN_IF_ERROR(r.status());
  if (keytype != "ed25519" || scheme != "ed25519") {
    return InvalidArgument("unsupported key type '" + keytype.substr(0, 32) + "'/'" +
                           scheme.substr(0, 32) + "' (flotilla supports ed25519)");
  }
  JsonObjectReader keyval_reader(*keyval, "key.keyval");
  keyval_reader.Require({"public"});
  keyval_reader.String("public", public_hex);
  RETURN_IF_ERROR(keyval_reader.status());
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
  JsonObjectReader r(signed_json, "signed");
  r.Require({"keys", "roles"});
  root.consistent_snapshot = false;
  r.Bool("consistent_snapshot", root.consistent_snapshot);
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
    auto parsed = ParseRoleKeys(role_reader, root.keys);
    if (!parsed.ok()) return parsed.status().WithContext("role " + std::string(RoleName(role)));
    root.roles.emplace(role, std::move(parsed).value());
  }
  if (roles->size() != 4) return InvalidArgument("root names a role other than the top-level four");
  return root;
}

Result<TimestampMetadata> ParseTimestamp(const Json& signed_json) {
  TimestampMetadata timestamp;
  ASSIGN_OR_RETURN(timestamp.common, ParseCommon(signed_json, RoleType::kTimestamp));
  JsonObjectReader r(signed_json, "signed");
  r.Require({"meta"});
  const Json* meta = r.Object("meta");
  RETURN_IF_ERROR(r.status());
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
  JsonObjectReader r(signed_json, "signed");
  r.Require({"meta"});
  const Json* meta = r.Object("meta");
  RETURN_IF_ERROR(r.status());
  for (auto it = meta->begin(); it != meta->end(); ++it) {
    const std::string& file = it.key();
    if (file.size() < 6 || file.substr(file.size() - 5) != ".json") {
      return InvalidArgument("snapshot meta name '" + PercentEncode(file.substr(0, 64)) +
                             "' does not end in .json");
    }
    RETURN_IF_ERROR(ValidateRoleName(std::string_view(file).substr(0, file.size() - 5)));
    ASSIGN_OR_RETURN(MetaFileInfo info, ParseMetaFileInfo(it.value(), "signed.meta." + file));
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
  JsonObjectReader r(signed_json, "signed");
  r.Require({"targets"});
  const Json* entries = r.Object("targets");
  const Json* delegations = r.Find("delegations");
  RETURN_IF_ERROR(r.status());
  for (auto it = entries->begin(); it != entries->end(); ++it) {
    ASSIGN_OR_RETURN(TargetFile target, ParseTargetFile(it.key(), it.value()));
    targets.targets.emplace(it.key(), std::move(target));
  }
  if (delegations != nullptr) RETURN_IF_ERROR(ParseDelegations(*delegations, targets));
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
