#include "metadata/repository.h"

#include <set>

#include "core/file_io.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {
namespace {

constexpr uint64_t kMaxRepositoryFile = 64 << 20;

MetaFileInfo DescribeFile(uint64_t version, const std::string& bytes) {
  MetaFileInfo info;
  info.version = version;
  info.length = bytes.size();
  info.hashes["sha256"] = Digest::Of(bytes).Hex();
  return info;
}

Result<RoleKeys> MakeRoleKeys(const RoleKeyConfig& config, std::map<std::string, TufKey>& keys) {
  if (config.keys.empty()) return InvalidArgument("a role needs at least one key");
  if (config.threshold == 0 || config.threshold > config.keys.size()) {
    return InvalidArgument("threshold must be 1.." + std::to_string(config.keys.size()) + ", got " +
                           std::to_string(config.threshold));
  }
  RoleKeys role;
  role.threshold = config.threshold;
  std::set<std::string> seen;
  for (const auto& public_key : config.keys) {
    TufKey key = MakeTufKey(public_key);
    if (!seen.insert(key.keyid).second) return InvalidArgument("the same key is listed twice");
    role.keyids.push_back(key.keyid);
    keys.emplace(key.keyid, std::move(key));
  }
  return role;
}

// Drops keys that no role uses any more.
void PruneKeys(RootMetadata& root) {
  std::set<std::string> used;
  for (const auto& [role, keys] : root.roles) used.insert(keys.keyids.begin(), keys.keyids.end());
  std::erase_if(root.keys, [&](const auto& entry) { return !used.contains(entry.first); });
}

// Signs with every key of `keyids` the ring holds; returns how many signed.
uint32_t SignWithAvailable(SignedDocument& doc, const std::vector<std::string>& keyids,
                           const KeyRing& signers) {
  uint32_t signed_count = 0;
  for (const auto& keyid : keyids) {
    if (const Ed25519PrivateKey* key = signers.Find(keyid)) {
      AddSignature(doc, *key);
      ++signed_count;
    }
  }
  return signed_count;
}

Result<SignedDocument> ReadDocument(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(path, kMaxRepositoryFile));
  return ParseSignedDocument(bytes, kMaxRepositoryFile).WithContext(path);
}

}  // namespace

void KeyRing::Add(const Ed25519PrivateKey& key) {
  keys_.insert_or_assign(MakeTufKey(key.public_key()).keyid, key);
}

void KeyRing::Merge(const KeyRing& other) {
  for (const auto& [id, key] : other.keys_) keys_.insert_or_assign(id, key);
}

const Ed25519PrivateKey* KeyRing::Find(const std::string& keyid) const {
  auto it = keys_.find(keyid);
  return it == keys_.end() ? nullptr : &it->second;
}

Result<Ed25519PrivateKey> LoadRoleKey(const std::string& path, const RootMetadata& root,
                                      RoleType role) {
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::LoadFile(path));
  const std::string keyid = MakeTufKey(key.public_key()).keyid;
  const auto& keyids = root.roles.at(role).keyids;
  if (std::find(keyids.begin(), keyids.end(), keyid) == keyids.end()) {
    return PermissionDenied("key file " + path + " holds key " + keyid.substr(0, 16) +
                            "..., which is not a " + std::string(RoleName(role)) +
                            " key of root version " + std::to_string(root.common.version));
  }
  return key;
}

Status SignMetadataFile(const std::string& in_path, const std::string& key_file,
                        const std::optional<Ed25519PublicKey>& expected_public_key,
                        const std::string& out_path) {
  ASSIGN_OR_RETURN(SignedDocument doc, ReadDocument(in_path));
  ASSIGN_OR_RETURN(TufSigner signer, TufSigner::LoadFile(key_file));
  if (expected_public_key && signer.key().keyid != MakeTufKey(*expected_public_key).keyid) {
    return PermissionDenied("key file " + key_file + " holds a key that is not the expected key");
  }
  RETURN_IF_ERROR(AddSignature(doc, signer));
  return WriteFileAtomic(out_path, SerializeDocument(doc), 0644);
}

WallTime Repository::ExpiryAfter(Duration d) const {
  return std::chrono::floor<std::chrono::seconds>(
      clock_.Now() + std::chrono::duration_cast<WallTime::duration>(d));
}

Result<std::unique_ptr<Repository>> Repository::Create(
    const std::string& dir, const std::map<RoleType, RoleKeyConfig>& roles, const KeyRing& signers,
    const Clock& clock, RepositoryOptions options) {
  std::unique_ptr<Repository> repo(new Repository(dir, clock, options));
  RETURN_IF_ERROR(CreateDirectories(repo->metadata_dir(), 0755));
  RETURN_IF_ERROR(CreateDirectories(repo->targets_dir(), 0755));
  if (ReadFileBounded(repo->metadata_dir() + "/root.json", 1).status().code() !=
      StatusCode::kNotFound) {
    return AlreadyExists("a repository exists in " + dir);
  }
  RootMetadata& root = repo->root_;
  root.common.expires = repo->ExpiryAfter(options.root_expiry);
  root.consistent_snapshot = options.consistent_snapshot;
  for (RoleType role : kAllRoles) {
    auto config = roles.find(role);
    if (config == roles.end())
      return InvalidArgument("no keys for role " + std::string(RoleName(role)));
    ASSIGN_OR_RETURN(RoleKeys keys,
                     MakeRoleKeys(config->second, root.keys).WithContext(RoleName(role)));
    root.roles.emplace(role, std::move(keys));
  }
  ASSIGN_OR_RETURN(SignedDocument doc, MakeUnsignedDocument(ToJson(root)));
  if (SignWithAvailable(doc, root.roles.at(RoleType::kRoot).keyids, signers) <
      root.roles.at(RoleType::kRoot).threshold) {
    return FailedPrecondition("not enough root keys to sign root version 1");
  }
  RETURN_IF_ERROR(repo->WriteVersioned(RoleType::kRoot, 1, SerializeDocument(doc)));
  repo->snapshot_.common.version = 0;
  repo->timestamp_.common.version = 0;
  TargetsMetadata first;
  first.common.version = 1;
  RETURN_IF_ERROR(repo->PublishTargets(std::move(first), signers));
  return repo;
}

Result<std::unique_ptr<Repository>> Repository::CreateWithRoot(const std::string& dir,
                                                               std::string_view signed_root,
                                                               const KeyRing& signers,
                                                               const Clock& clock,
                                                               RepositoryOptions options) {
  std::unique_ptr<Repository> repo(new Repository(dir, clock, options));
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(signed_root, kMaxRepositoryFile));
  ASSIGN_OR_RETURN(repo->root_, ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(VerifyThreshold(doc, repo->root_.keys, repo->root_.roles.at(RoleType::kRoot),
                                  "root, by its own root keys"));
  repo->options_.consistent_snapshot = repo->root_.consistent_snapshot;
  RETURN_IF_ERROR(CreateDirectories(repo->metadata_dir(), 0755));
  RETURN_IF_ERROR(CreateDirectories(repo->targets_dir(), 0755));
  if (ReadFileBounded(repo->metadata_dir() + "/root.json", 1).status().code() !=
      StatusCode::kNotFound) {
    return AlreadyExists("a repository exists in " + dir);
  }
  RETURN_IF_ERROR(
      repo->WriteVersioned(RoleType::kRoot, repo->root_.common.version, std::string(signed_root)));
  repo->snapshot_.common.version = 0;
  repo->timestamp_.common.version = 0;
  TargetsMetadata first;
  first.common.version = 1;
  RETURN_IF_ERROR(repo->PublishTargets(std::move(first), signers));
  return repo;
}

namespace {
// "N." when `versioned`, else "": the prefix of a role's file name.
std::string VersionedName(bool versioned, uint64_t version) {
  return versioned ? std::to_string(version) + "." : "";
}
}  // namespace

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& dir, const Clock& clock,
                                                     RepositoryOptions options) {
  std::unique_ptr<Repository> repo(new Repository(dir, clock, options));
  RETURN_IF_ERROR(repo->LoadCurrent());
  return repo;
}

Status Repository::LoadCurrent() {
  const std::string md = metadata_dir();
  ASSIGN_OR_RETURN(SignedDocument root_doc, ReadDocument(md + "/root.json"));
  ASSIGN_OR_RETURN(root_, ParseRoot(root_doc.signed_json));
  options_.consistent_snapshot = root_.consistent_snapshot;
  RETURN_IF_ERROR(VerifyThreshold(root_doc, root_.keys, root_.roles.at(RoleType::kRoot), "root"));
  ASSIGN_OR_RETURN(SignedDocument ts_doc, ReadDocument(md + "/timestamp.json"));
  ASSIGN_OR_RETURN(timestamp_, ParseTimestamp(ts_doc.signed_json));
  // Without unversioned copies, the versions the timestamp and snapshot name.
  const bool versioned = options_.consistent_snapshot && !options_.unversioned_copies;
  ASSIGN_OR_RETURN(
      snapshot_bytes_,
      ReadTextFileBounded(
          md + "/" + VersionedName(versioned, timestamp_.snapshot.version) + "snapshot.json",
          kMaxRepositoryFile));
  ASSIGN_OR_RETURN(SignedDocument sn_doc, ParseSignedDocument(snapshot_bytes_, kMaxRepositoryFile));
  ASSIGN_OR_RETURN(snapshot_, ParseSnapshot(sn_doc.signed_json));
  auto targets_meta = snapshot_.meta.find("targets.json");
  if (versioned && targets_meta == snapshot_.meta.end()) {
    return Corruption("repository snapshot names no targets.json");
  }
  ASSIGN_OR_RETURN(
      targets_bytes_,
      ReadTextFileBounded(
          md + "/" + VersionedName(versioned, versioned ? targets_meta->second.version : 0) +
              "targets.json",
          kMaxRepositoryFile));
  ASSIGN_OR_RETURN(SignedDocument tg_doc, ParseSignedDocument(targets_bytes_, kMaxRepositoryFile));
  ASSIGN_OR_RETURN(targets_, ParseTargets(tg_doc.signed_json));
  if (snapshot_.common.version != timestamp_.snapshot.version) {
    return Corruption("repository snapshot.json is not the version timestamp.json names");
  }
  return LoadDelegatedRoles();
}

Status Repository::LoadDelegatedRoles() {
  for (const auto& [name, info] : snapshot_.meta) {
    if (name == "targets.json" || !name.ends_with(".json")) continue;
    const std::string role = name.substr(0, name.size() - 5);
    std::string file = PercentEncode(role) + ".json";
    if (options_.consistent_snapshot) file = std::to_string(info.version) + "." + file;
    RoleFile& loaded = delegated_[role];
    ASSIGN_OR_RETURN(loaded.bytes,
                     ReadTextFileBounded(metadata_dir() + "/" + file, kMaxRepositoryFile));
    ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(loaded.bytes, kMaxRepositoryFile));
    ASSIGN_OR_RETURN(loaded.metadata, ParseTargets(doc.signed_json).WithContext(file));
  }
  return Status::Ok();
}

const TargetsMetadata* Repository::DelegatedTargets(const std::string& role) const {
  auto it = delegated_.find(role);
  return it == delegated_.end() ? nullptr : &it->second.metadata;
}

TargetsMetadata Repository::AllTargets() const {
  TargetsMetadata all = targets_;
  for (const auto& [role, file] : delegated_)
    all.targets.insert(file.metadata.targets.begin(), file.metadata.targets.end());
  return all;
}

Status Repository::BeforeWrite(const std::string& role, uint64_t version,
                               const std::string& bytes) const {
  return options_.before_write ? options_.before_write(role, version, bytes) : Status::Ok();
}

Status Repository::WriteVersioned(RoleType role, uint64_t version, const std::string& bytes) {
  const std::string base = std::string(RoleName(role)) + ".json";
  if (role != RoleType::kTimestamp && (role == RoleType::kRoot || options_.consistent_snapshot)) {
    RETURN_IF_ERROR(
        WriteFileAtomic(metadata_dir() + "/" + std::to_string(version) + "." + base, bytes));
    if (role != RoleType::kRoot && !options_.unversioned_copies) return Status::Ok();
  }
  return WriteFileAtomic(metadata_dir() + "/" + base, bytes);
}

Result<std::string> Repository::SignAndWrite(RoleType role, uint64_t version, Json signed_json,
                                             const KeyRing& signers) {
  ASSIGN_OR_RETURN(SignedDocument doc, MakeUnsignedDocument(std::move(signed_json)));
  const RoleKeys& keys = root_.roles.at(role);
  uint32_t count = SignWithAvailable(doc, keys.keyids, signers);
  if (count < keys.threshold) {
    return FailedPrecondition("only " + std::to_string(count) + " of the " +
                              std::to_string(keys.threshold) + " " + std::string(RoleName(role)) +
                              " keys needed are available");
  }
  std::string bytes = SerializeDocument(doc);
  RETURN_IF_ERROR(BeforeWrite(std::string(RoleName(role)), version, bytes));
  RETURN_IF_ERROR(WriteVersioned(role, version, bytes));
  return bytes;
}

Status Repository::PublishTargets(TargetsMetadata next, const KeyRing& signers) {
  next.common.expires = ExpiryAfter(options_.targets_expiry);
  ASSIGN_OR_RETURN(targets_bytes_,
                   SignAndWrite(RoleType::kTargets, next.common.version, ToJson(next), signers));
  targets_ = std::move(next);
  return PublishSnapshot(signers);
}

uint64_t Repository::NextVersion(RoleType role, uint64_t current) const {
  auto published = options_.published_versions.find(role);
  if (published != options_.published_versions.end())
    current = std::max(current, published->second);
  return current + 1;
}

template <typename Metadata>
Result<std::string> Repository::SignNext(RoleType role, Metadata& current, Metadata next,
                                         Duration expiry, const KeyRing& signers) {
  next.common.version = NextVersion(role, current.common.version);
  next.common.expires = ExpiryAfter(expiry);
  ASSIGN_OR_RETURN(std::string bytes,
                   SignAndWrite(role, next.common.version, ToJson(next), signers));
  current = std::move(next);
  return bytes;
}

Status Repository::PublishSnapshot(const KeyRing& signers) {
  SnapshotMetadata next;
  next.meta["targets.json"] = DescribeFile(targets_.common.version, targets_bytes_);
  for (const auto& [role, file] : delegated_) {
    next.meta[role + ".json"] = DescribeFile(file.metadata.common.version, file.bytes);
  }
  ASSIGN_OR_RETURN(snapshot_bytes_, SignNext(RoleType::kSnapshot, snapshot_, std::move(next),
                                             options_.snapshot_expiry, signers));
  return PublishTimestamp(signers);
}

Status Repository::PublishTimestamp(const KeyRing& signers) {
  TimestampMetadata next;
  next.snapshot = DescribeFile(snapshot_.common.version, snapshot_bytes_);
  return SignNext(RoleType::kTimestamp, timestamp_, std::move(next), options_.timestamp_expiry,
                  signers)
      .status();
}

Result<SignedDocument> Repository::StageRoot(
    const std::map<RoleType, RoleKeyConfig>& changes,
    std::optional<uint32_t> offline_window_max_days) const {
  RootMetadata next = root_;
  if (offline_window_max_days) {
    if (*offline_window_max_days > kMaxOfflineWindowDays) {
      return InvalidArgument("the offline window cap must be at most " +
                             std::to_string(kMaxOfflineWindowDays) + " days");
    }
    next.offline_window_max_days = *offline_window_max_days;
    if (*offline_window_max_days == 0) next.offline_window_max_days.reset();
  }
  next.common.version = root_.common.version + 1;
  next.common.expires = ExpiryAfter(options_.root_expiry);
  for (const auto& [role, config] : changes) {
    ASSIGN_OR_RETURN(next.roles[role], MakeRoleKeys(config, next.keys).WithContext(RoleName(role)));
  }
  PruneKeys(next);
  return MakeUnsignedDocument(ToJson(next));
}

Status Repository::PublishRoot(std::string_view signed_root) {
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(signed_root, kMaxRepositoryFile));
  ASSIGN_OR_RETURN(RootMetadata next, ParseRoot(doc.signed_json));
  if (next.common.version != root_.common.version + 1) {
    return InvalidArgument("root version " + std::to_string(next.common.version) +
                           " is not the next version " + std::to_string(root_.common.version + 1));
  }
  RETURN_IF_ERROR(VerifyThreshold(doc, root_.keys, root_.roles.at(RoleType::kRoot),
                                  "new root, by the current root keys"));
  RETURN_IF_ERROR(VerifyThreshold(doc, next.keys, next.roles.at(RoleType::kRoot),
                                  "new root, by its own root keys"));
  RETURN_IF_ERROR(WriteVersioned(RoleType::kRoot, next.common.version, std::string(signed_root)));
  root_ = std::move(next);
  return Status::Ok();
}

Status Repository::RotateKeys(const std::map<RoleType, RoleKeyConfig>& changes,
                              const KeyRing& signers,
                              std::optional<uint32_t> offline_window_max_days) {
  ASSIGN_OR_RETURN(SignedDocument staged, StageRoot(changes, offline_window_max_days));
  ASSIGN_OR_RETURN(RootMetadata next, ParseRoot(staged.signed_json));
  SignWithAvailable(staged, root_.roles.at(RoleType::kRoot).keyids, signers);
  SignWithAvailable(staged, next.roles.at(RoleType::kRoot).keyids, signers);
  RETURN_IF_ERROR(PublishRoot(SerializeDocument(staged)));
  if (changes.contains(RoleType::kTargets)) return ResignTargets(signers);
  if (changes.contains(RoleType::kSnapshot)) return ResignSnapshot(signers);
  if (changes.contains(RoleType::kTimestamp)) return ResignTimestamp(signers);
  return Status::Ok();
}

Status Repository::WriteTargetFile(const TargetInput& input, const TargetFile& entry) {
  auto slash = input.name.rfind('/');
  std::string dir = targets_dir();
  if (slash != std::string::npos) dir += "/" + input.name.substr(0, slash);
  std::string base = slash == std::string::npos ? input.name : input.name.substr(slash + 1);
  if (options_.consistent_snapshot) base = entry.hashes.at("sha256") + "." + base;
  RETURN_IF_ERROR(CreateDirectories(dir, 0755));
  return WriteFileAtomic(dir + "/" + base, input.content, 0644);
}

Status Repository::AddTargetEntries(const std::vector<TargetInput>& inputs, TargetsMetadata& next) {
  for (const auto& input : inputs) {
    RETURN_IF_ERROR(ValidateTargetName(input.name));
    if (!input.custom.is_null() && !input.custom.is_object()) {
      return InvalidArgument("custom of " + PercentEncode(input.name) + " must be an object");
    }
    TargetFile entry;
    entry.name = input.name;
    entry.length = input.content.size();
    entry.hashes["sha256"] = Digest::Of(input.content).Hex();
    entry.custom = input.custom;
    RETURN_IF_ERROR(WriteTargetFile(input, entry));
    next.targets[input.name] = std::move(entry);
  }
  return Status::Ok();
}

Status Repository::AddTargets(const std::vector<TargetInput>& inputs, const KeyRing& signers) {
  TargetsMetadata next = targets_;
  next.common.version = targets_.common.version + 1;
  RETURN_IF_ERROR(AddTargetEntries(inputs, next));
  return PublishTargets(std::move(next), signers);
}

Result<SignedDocument> Repository::StageTargets(const std::string& role, TargetsMetadata next,
                                                const std::vector<TargetInput>& inputs,
                                                Duration expiry) {
  const bool top = role == RoleName(RoleType::kTargets);
  if (!top && (!targets_.delegations || !targets_.delegations->KeysOf(role))) {
    return FailedPrecondition("role " + PercentEncode(role) +
                              " is not delegated by the top-level targets");
  }
  const TargetsMetadata* current = top ? &targets_ : DelegatedTargets(role);
  next.common.version = current ? current->common.version + 1 : 1;
  next.common.expires = ExpiryAfter(expiry);
  RETURN_IF_ERROR(AddTargetEntries(inputs, next));
  return MakeUnsignedDocument(ToJson(next));
}

Status Repository::VerifyDelegatedRole(const std::string& role, const SignedDocument& doc,
                                       const TargetsMetadata& next) const {
  const std::string what = "role " + PercentEncode(role);
  const DelegatedRole* delegation = nullptr;
  if (targets_.delegations) {
    for (const auto& candidate : targets_.delegations->roles) {
      if (candidate.name == role) delegation = &candidate;
    }
  }
  if (delegation == nullptr) {
    return FailedPrecondition(what + " is not delegated by the top-level targets");
  }
  RETURN_IF_ERROR(VerifyThreshold(doc, targets_.delegations->keys, delegation->keys, what));
  for (const auto& [name, target] : next.targets) {
    if (!delegation->Covers(name)) {
      return PermissionDenied(what + " may not sign target " + PercentEncode(name));
    }
  }
  return Status::Ok();
}

Status Repository::WriteDelegated(const std::string& role, uint64_t version,
                                  const std::string& bytes) {
  const std::string base = PercentEncode(role) + ".json";
  if (options_.consistent_snapshot) {
    RETURN_IF_ERROR(
        WriteFileAtomic(metadata_dir() + "/" + std::to_string(version) + "." + base, bytes));
  }
  return WriteFileAtomic(metadata_dir() + "/" + base, bytes);
}

Status Repository::AcceptTargets(const std::string& role, std::string_view signed_document,
                                 const KeyRing& online) {
  const bool top = role == RoleName(RoleType::kTargets);
  const std::string what = "role " + PercentEncode(role);
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(signed_document, kMaxRepositoryFile));
  RETURN_IF_ERROR(CheckRoleType(doc.signed_json, RoleType::kTargets).WithContext(what));
  ASSIGN_OR_RETURN(TargetsMetadata next, ParseTargets(doc.signed_json).WithContext(what));
  if (top) {
    RETURN_IF_ERROR(VerifyThreshold(doc, root_.keys, root_.roles.at(RoleType::kTargets), what));
  } else {
    RETURN_IF_ERROR(VerifyDelegatedRole(role, doc, next));
  }
  const TargetsMetadata* current = top ? &targets_ : DelegatedTargets(role);
  const uint64_t expected = current ? current->common.version + 1 : 1;
  if (next.common.version != expected) {
    return InvalidArgument(what + " version " + std::to_string(next.common.version) +
                           " is not the next version " + std::to_string(expected));
  }
  RETURN_IF_ERROR(CheckNotExpired(what, next.common.expires, clock_.Now()));
  for (RoleType online_role : {RoleType::kSnapshot, RoleType::kTimestamp}) {
    const RoleKeys& keys = root_.roles.at(online_role);
    uint32_t held = 0;
    for (const auto& keyid : keys.keyids) held += online.Find(keyid) != nullptr;
    if (held < keys.threshold) {
      return FailedPrecondition(std::string("the ") + std::string(RoleName(online_role)) +
                                " keys needed to publish are not available");
    }
  }
  std::string bytes(signed_document);
  RETURN_IF_ERROR(BeforeWrite(role, next.common.version, bytes));
  if (top) {
    RETURN_IF_ERROR(WriteVersioned(RoleType::kTargets, next.common.version, bytes));
    targets_ = std::move(next);
    targets_bytes_ = std::move(bytes);
  } else {
    RETURN_IF_ERROR(WriteDelegated(role, next.common.version, bytes));
    delegated_[role] = RoleFile{std::move(next), std::move(bytes)};
  }
  return PublishSnapshot(online);
}

Status Repository::ResignTargets(const KeyRing& signers) {
  TargetsMetadata next = targets_;
  next.common.version = NextVersion(RoleType::kTargets, targets_.common.version);
  return PublishTargets(std::move(next), signers);
}

Status Repository::ResignSnapshot(const KeyRing& signers) { return PublishSnapshot(signers); }

Status Repository::ResignTimestamp(const KeyRing& signers) { return PublishTimestamp(signers); }

}  // namespace flotilla::metadata
