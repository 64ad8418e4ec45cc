// TufClient's target search through delegated targets roles (TUF 5.6.7).
#include <set>
#include <vector>

#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {
namespace {

std::string DelegatedWhat(std::string_view role) {
  return "delegated role " + PercentEncode(role.substr(0, 80));
}

}  // namespace

Result<TargetFile> TufClient::GetTargetInfo(std::string_view name) {
  if (!refreshed_ || !targets_) {
    return FailedPrecondition("refresh metadata before looking up targets");
  }
  RETURN_IF_ERROR(ValidateTargetName(name));
  const std::string target(name);
  // A role to visit and the delegations that named it (null: the top-level targets).
  struct Visit {
    std::string role;
    const Delegations* delegator;
  };
  std::vector<Visit> stack{{std::string(RoleName(RoleType::kTargets)), nullptr}};
  std::set<std::string> visited;
  while (!stack.empty() && visited.size() < limits_.max_delegations) {
    Visit visit = std::move(stack.back());
    stack.pop_back();
    if (visited.contains(visit.role)) continue;  // a cycle, or a role reached twice
    const TargetsMetadata* metadata = &*targets_;
    if (visit.delegator != nullptr) {
      ASSIGN_OR_RETURN(metadata, DelegatedTargets(visit.role, *visit.delegator)
                                     .WithContext("target " + PercentEncode(name)));
    }
    if (auto it = metadata->targets.find(target); it != metadata->targets.end()) return it->second;
    visited.insert(visit.role);
    if (!metadata->delegations) continue;
    std::vector<Visit> children;
    for (const auto& candidate : metadata->delegations->CandidatesFor(target)) {
      children.push_back({candidate.role, &*metadata->delegations});
      if (candidate.terminating) {
        stack.clear();  // nothing after a terminating delegation may sign this target
        break;
      }
    }
    stack.insert(stack.end(), children.rbegin(), children.rend());
  }
  return NotFound("no target named " + PercentEncode(name) + " in the signed targets (" +
                  std::to_string(visited.size()) + " role(s) searched)");
}

Result<const TargetsMetadata*> TufClient::DelegatedTargets(const std::string& role,
                                                           const Delegations& delegator) {
  const RoleKeys* keys = delegator.KeysOf(role);
  if (keys == nullptr) return Internal(DelegatedWhat(role) + " is not delegated here");
  auto info = snapshot_->meta.find(role + ".json");
  if (info == snapshot_->meta.end()) {
    return Corruption("the snapshot does not list " + PercentEncode(role) + ".json");
  }
  if (auto it = delegated_.find(role); it != delegated_.end()) {
    // Verified already, perhaps under another delegator: these keys must sign it too.
    RETURN_IF_ERROR(
        VerifyThreshold(it->second.document, delegator.keys, *keys, DelegatedWhat(role)));
    return &it->second.metadata;
  }
  ASSIGN_OR_RETURN(DelegatedState state, LoadDelegated(role, *keys, delegator, info->second));
  return &delegated_.emplace(role, std::move(state)).first->second.metadata;
}

Result<TufClient::DelegatedState> TufClient::VerifyDelegated(const std::string& role,
                                                             std::string_view bytes,
                                                             const RoleKeys& keys,
                                                             const Delegations& delegator) const {
  const std::string what = DelegatedWhat(role);
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(bytes, limits_.max_targets_bytes));
  if (Status type = CheckRoleType(doc.signed_json, RoleType::kTargets); !type.ok()) {
    return type.WithContext(what);
  }
  RETURN_IF_ERROR(VerifyThreshold(doc, delegator.keys, keys, what));
  ASSIGN_OR_RETURN(TargetsMetadata metadata, ParseTargets(doc.signed_json));
  return DelegatedState{std::move(doc), std::move(metadata)};
}

Result<TufClient::DelegatedState> TufClient::LoadDelegated(const std::string& role,
                                                           const RoleKeys& keys,
                                                           const Delegations& delegator,
                                                           const MetaFileInfo& info) {
  const std::string what = DelegatedWhat(role);
  // A trusted copy that still verifies is the rollback floor, and is used as
  // it is when it has the version, length and hashes the snapshot names.
  std::optional<uint64_t> trusted_version;
  ASSIGN_OR_RETURN(auto stored, store_.Load(role, limits_.max_targets_bytes));
  if (stored) {
    auto trusted = VerifyDelegated(role, *stored, keys, delegator);
    if (trusted.ok()) {
      trusted_version = trusted->metadata.common.version;
      if (*trusted_version == info.version &&
          CheckLengthAndHashes(what, AsBytes(*stored), info.length, info.hashes, false).ok()) {
        RETURN_IF_ERROR(CheckFresh(what, trusted->metadata.common.expires, update_start_));
        return trusted;
      }
    }
  }
  ASSIGN_OR_RETURN(std::string bytes, FetchVerifiedFile(role, info, limits_.max_targets_bytes));
  ASSIGN_OR_RETURN(DelegatedState fresh, VerifyDelegated(role, bytes, keys, delegator));
  const uint64_t version = fresh.metadata.common.version;
  if (version != info.version) {
    return Corruption(what + " version " + std::to_string(version) +
                      ", the snapshot names version " + std::to_string(info.version));
  }
  if (trusted_version && version < *trusted_version) {
    return Corruption(what + " version rollback: " + std::to_string(version) + " < trusted " +
                      std::to_string(*trusted_version));
  }
  RETURN_IF_ERROR(CheckFresh(what, fresh.metadata.common.expires, update_start_));
  RETURN_IF_ERROR(store_.Store(role, bytes));
  return fresh;
}

}  // namespace flotilla::metadata
