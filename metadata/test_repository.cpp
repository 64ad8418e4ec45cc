#include "metadata/test_repository.h"

#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {
namespace {

MetaFileInfo Describe(uint64_t version, const std::string& bytes) {
  MetaFileInfo info;
  info.version = version;
  info.length = bytes.size();
  info.hashes["sha256"] = Digest::Of(bytes).Hex();
  return info;
}

// Adds `signers`' keys to `keys` and returns their key ids.
std::vector<std::string> AddKeys(std::map<std::string, TufKey>& keys,
                                 const std::vector<TufSigner>& signers) {
  std::vector<std::string> ids;
  for (const auto& signer : signers) {
    keys[signer.key().keyid] = signer.key();
    ids.push_back(signer.key().keyid);
  }
  return ids;
}

}  // namespace

TestRepository::TestRepository(std::string dir, WallTime now)
    : dir_(std::move(dir)), now_(std::chrono::floor<std::chrono::seconds>(now)) {
  root_.common.version = 0;
  for (RoleType role : kAllRoles) {
    SetKeys(role, {TufSigner::FromEd25519(Ed25519PrivateKey::Generate())});
  }
  previous_root_signers_.clear();
  Role("targets");
  snapshot_.common.version = 0;
  timestamp_.common.version = 0;
}

void TestRepository::SetKeys(RoleType role, std::vector<TufSigner> signers, uint32_t threshold) {
  const std::string name(RoleName(role));
  if (role == RoleType::kRoot && previous_root_signers_.empty() && signers_.contains(name)) {
    previous_root_signers_ = signers_[name];
  }
  root_.roles[role] = RoleKeys{AddKeys(root_.keys, signers), threshold};
  signers_[name] = std::move(signers);
  std::set<std::string> used;
  for (const auto& [r, keys] : root_.roles) used.insert(keys.keyids.begin(), keys.keyids.end());
  std::erase_if(root_.keys, [&](const auto& entry) { return !used.contains(entry.first); });
}

const std::vector<TufSigner>& TestRepository::Signers(const std::string& role) const {
  return signers_.at(role);
}

Status TestRepository::PublishRoot() {
  root_.common.version += 1;
  root_.common.expires = now_ + expiry;
  root_.consistent_snapshot = consistent_snapshot;
  ASSIGN_OR_RETURN(SignedDocument doc, MakeUnsignedDocument(ToJson(root_)));
  for (const auto& signer : previous_root_signers_) RETURN_IF_ERROR(AddSignature(doc, signer));
  for (const auto& signer : signers_["root"]) RETURN_IF_ERROR(AddSignature(doc, signer));
  if (tamper) tamper("root", doc);
  const std::string bytes = SerializeDocument(doc);
  const std::string version = std::to_string(root_.common.version);
  RETURN_IF_ERROR(CreateDirectories(metadata_dir()));
  RETURN_IF_ERROR(WriteFileAtomic(metadata_dir() + "/" + version + ".root.json", bytes));
  RETURN_IF_ERROR(WriteFileAtomic(metadata_dir() + "/root.json", bytes));
  previous_root_signers_.clear();
  root_published_ = true;
  return Status::Ok();
}

TargetsMetadata& TestRepository::Role(const std::string& role) {
  auto [it, inserted] = roles_.try_emplace(role);
  if (inserted) {
    it->second.common.version = 0;
    dirty_.insert(role);
  }
  return it->second;
}

Status TestRepository::AddTarget(const std::string& role, const std::string& name,
                                 const std::string& content,
                                 const std::vector<std::string>& algorithms) {
  TargetFile target;
  target.name = name;
  target.length = content.size();
  for (const auto& algorithm : algorithms) {
    if (IsSupportedHash(algorithm)) {
      ASSIGN_OR_RETURN(HashMap computed, ComputeHashes(AsBytes(content), {algorithm}));
      target.hashes.merge(computed);
    } else {
      target.hashes[algorithm] = Digest::Of("made up " + algorithm + content).Hex();
    }
  }
  RETURN_IF_ERROR(WriteTargetFiles(name, content, target.hashes));
  Role(role).targets[name] = std::move(target);
  Touch(role);
  return Status::Ok();
}

Status TestRepository::WriteTargetFiles(const std::string& name, const std::string& content,
                                        const HashMap& hashes) {
  RETURN_IF_ERROR(ValidateTargetName(name));
  const auto slash = name.rfind('/');
  const std::string dir =
      targets_dir() + (slash == std::string::npos ? "" : "/" + name.substr(0, slash));
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  RETURN_IF_ERROR(CreateDirectories(dir));
  if (!consistent_snapshot) return WriteFileAtomic(dir + "/" + base, content);
  for (const auto& [algorithm, hex] : hashes) {
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + hex + "." + base, content));
  }
  return Status::Ok();
}

void TestRepository::Delegate(const std::string& parent, DelegatedRole child,
                              std::vector<TufSigner> signers) {
  TargetsMetadata& delegator = Role(parent);
  if (!delegator.delegations) delegator.delegations.emplace();
  child.keys.keyids = AddKeys(delegator.delegations->keys, signers);
  signers_[child.name] = std::move(signers);
  Role(child.name);
  Touch(child.name);
  delegator.delegations->roles.push_back(std::move(child));
  Touch(parent);
}

void TestRepository::DelegateSuccinct(const std::string& parent, const SuccinctRoles& bins,
                                      std::vector<TufSigner> signers) {
  TargetsMetadata& delegator = Role(parent);
  delegator.delegations.emplace();
  SuccinctRoles succinct = bins;
  succinct.keys.keyids = AddKeys(delegator.delegations->keys, signers);
  delegator.delegations->succinct_roles = succinct;
  for (uint64_t bin = 0; bin < (uint64_t{1} << bins.bit_length); ++bin) {
    const std::string name = succinct.BinName(static_cast<uint32_t>(bin));
    signers_[name] = signers;
    Role(name);
  }
  Touch(parent);
}

Status TestRepository::WriteMetadata(const std::string& role, uint64_t version, Json signed_json) {
  ASSIGN_OR_RETURN(SignedDocument doc, MakeUnsignedDocument(std::move(signed_json)));
  for (const auto& signer : signers_.at(role)) RETURN_IF_ERROR(AddSignature(doc, signer));
  if (tamper) tamper(role, doc);
  const std::string bytes = SerializeDocument(doc);
  RETURN_IF_ERROR(CreateDirectories(metadata_dir()));
  if (consistent_snapshot && role != "timestamp") {
    const std::string versioned = std::to_string(version) + "." + role + ".json";
    RETURN_IF_ERROR(WriteFileAtomic(metadata_dir() + "/" + PercentEncode(versioned), bytes));
  }
  RETURN_IF_ERROR(WriteFileAtomic(metadata_dir() + "/" + PercentEncode(role + ".json"), bytes));
  role_bytes_[role] = bytes;
  return Status::Ok();
}

Status TestRepository::Publish() {
  if (!root_published_) RETURN_IF_ERROR(PublishRoot());
  for (const auto& role : dirty_) {
    TargetsMetadata& metadata = roles_.at(role);
    metadata.common.version += 1;
    metadata.common.expires = now_ + expiry;
    RETURN_IF_ERROR(WriteMetadata(role, metadata.common.version, ToJson(metadata)));
    snapshot_.meta[role + ".json"] = Describe(metadata.common.version, role_bytes_[role]);
  }
  dirty_.clear();
  return PublishSnapshotAndTimestamp();
}

Status TestRepository::PublishSnapshotAndTimestamp() {
  snapshot_.common.version += 1;
  snapshot_.common.expires = now_ + expiry;
  RETURN_IF_ERROR(WriteMetadata("snapshot", snapshot_.common.version, ToJson(snapshot_)));
  timestamp_.common.version += 1;
  timestamp_.common.expires = now_ + expiry;
  timestamp_.snapshot = Describe(snapshot_.common.version, role_bytes_["snapshot"]);
  return WriteMetadata("timestamp", timestamp_.common.version, ToJson(timestamp_));
}

}  // namespace flotilla::metadata
