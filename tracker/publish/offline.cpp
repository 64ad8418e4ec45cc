#include "tracker/publish/offline.h"

#include <algorithm>
#include <filesystem>

#include "core/bytes.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/offline_window.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/repository.h"
#include "metadata/tuf_names.h"
#include "tracker/publish/publish.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"

namespace flotilla::tracker {
namespace {

constexpr uint64_t kMaxSignedFile = 64 << 20;

// Every artifact of the releases `next` adds is in artifacts/ as signed
// (targets that are not releases, such as fleet/root.json, name none).
Status CheckArtifactsPresent(const RepositoryLayout& repo, const metadata::TargetsMetadata* current,
                             const metadata::TargetsMetadata& next) {
  for (const auto& [name, target] : next.targets) {
    if (current && current->targets.contains(name)) continue;
    if (!target.custom.is_object() || !target.custom.contains("flotilla"))
      continue;  // not a release
    ASSIGN_OR_RETURN(metadata::Release release, metadata::ParseRelease(target.custom));
    for (const auto& artifact : release.artifacts) {
      const std::string path = repo.artifact_path(artifact.sha256.Hex());
      auto digest = HashFile(path);
      std::error_code ec;
      if (!digest.ok() || *digest != artifact.sha256 ||
          std::filesystem::file_size(path, ec) != artifact.length) {
        return FailedPrecondition("release " + std::to_string(release.version) + " of " +
                                  release.app + ": artifact " + artifact.sha256.ToString() +
                                  " is not in " + repo.artifacts_dir() + " as signed");
      }
    }
  }
  return Status::Ok();
}

Status CheckAppRoleDocument(const RepositoryLayout& repo, const metadata::Repository& meta,
                            const std::string& role, std::string_view bytes) {
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(bytes, kMaxSignedFile));
  ASSIGN_OR_RETURN(metadata::TargetsMetadata next, metadata::ParseTargets(doc.signed_json));
  const std::string app = role.substr(5);
  const metadata::TargetsMetadata* current = meta.DelegatedTargets(role);
  RETURN_IF_ERROR(metadata::CheckAppRole(app, current, next));
  RETURN_IF_ERROR(metadata::CheckReleaseWindowsAllowed(next, meta.root()));
  return CheckArtifactsPresent(repo, current, next);
}

// A top-level targets version may list releases too (for nodes running
// 0.1.0): each as its app role lists it, never going down, artifacts present.
Status CheckTopLevelDocument(const RepositoryLayout& repo, const metadata::Repository& meta,
                             std::string_view bytes) {
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(bytes, kMaxSignedFile));
  ASSIGN_OR_RETURN(metadata::TargetsMetadata next, metadata::ParseTargets(doc.signed_json));
  RETURN_IF_ERROR(metadata::CheckReleasesMonotonic(meta.targets(), next));
  RETURN_IF_ERROR(metadata::CheckFloorsMonotonic(&meta.targets(), next));
  RETURN_IF_ERROR(metadata::CheckSameAsAppRoles(meta, next));
  RETURN_IF_ERROR(metadata::CheckReleaseWindowsAllowed(next, meta.root()));
  return CheckArtifactsPresent(repo, &meta.targets(), next);
}

constexpr std::initializer_list<metadata::RoleType> kOnlineRoles = {metadata::RoleType::kSnapshot,
                                                                    metadata::RoleType::kTimestamp};

// A new root, then snapshot and timestamp re-signed by its online keys.
Result<AcceptOutcome> AcceptRoot(const RepositoryLayout& repo, metadata::Repository& meta,
                                 const std::string& bytes) {
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(bytes, kMaxSignedFile));
  ASSIGN_OR_RETURN(metadata::RootMetadata next, metadata::ParseRoot(doc.signed_json));
  auto online = LoadRoleKeys(repo, next, kOnlineRoles);
  if (!online.ok()) {
    return online.status().WithContext("put the new root's online keys in " + KeysDir(repo) +
                                       " before accepting it");
  }
  RETURN_IF_ERROR(meta.PublishRoot(bytes));
  RETURN_IF_ERROR(meta.ResignSnapshot(*online));
  return AcceptOutcome{"root", meta.root().common.version};
}

Result<AcceptOutcome> AcceptLocked(const RepositoryLayout& repo, const std::string& bytes,
                                   const std::string& role, const Clock& clock) {
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, notes));
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repo.root, clock));
  if (role == "root") {
    AcceptOutcome outcome;
    RETURN_IF_ERROR(WriteRecorded(repo, clock, {}, [&](metadata::Repository& recorded) -> Status {
      ASSIGN_OR_RETURN(outcome, AcceptRoot(repo, recorded, bytes));
      return Status::Ok();
    }));
    return outcome;
  }
  ASSIGN_OR_RETURN(auto online, LoadRoleKeys(repo, meta->root(), kOnlineRoles));
  if (role.starts_with("apps/")) RETURN_IF_ERROR(CheckAppRoleDocument(repo, *meta, role, bytes));
  if (role == "targets") RETURN_IF_ERROR(CheckTopLevelDocument(repo, *meta, bytes));
  metadata::TargetsMetadata all;
  uint64_t accepted_version = 0;
  RETURN_IF_ERROR(WriteRecorded(repo, clock, {}, [&](metadata::Repository& recorded) -> Status {
    RETURN_IF_ERROR(recorded.AcceptTargets(role, bytes, online));
    all = recorded.AllTargets();
    const metadata::TargetsMetadata* accepted =
        role == "targets" ? &recorded.targets() : recorded.DelegatedTargets(role);
    accepted_version = accepted->common.version;
    return Status::Ok();
  }));
  RETURN_IF_ERROR_CTX(RecordReleases(repo, all, clock), "record releases");
  return AcceptOutcome{role, accepted_version};
}

}  // namespace

std::string PendingDir(const RepositoryLayout& repo) { return repo.root + "/pending"; }

Result<std::string> WritePending(const RepositoryLayout& repo, const std::string& role,
                                 const metadata::SignedDocument& doc) {
  ASSIGN_OR_RETURN(metadata::TargetsMetadata staged, metadata::ParseTargets(doc.signed_json));
  RETURN_IF_ERROR(CreateDirectories(PendingDir(repo), 0700));
  const std::string path = PendingDir(repo) + "/" + std::to_string(staged.common.version) + "." +
                           metadata::PercentEncode(role) + ".json";
  RETURN_IF_ERROR(WriteFileAtomic(path, metadata::SerializeDocument(doc), 0644));
  return path;
}

Result<std::string> RoleOfPendingFile(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  const size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || !name.ends_with(".json") ||
      name.find_first_not_of("0123456789") != dot || name.size() <= dot + 6) {
    return InvalidArgument("cannot tell the role from the file name " + name +
                           " (expected <version>.<role>.json): give --role");
  }
  return PercentDecode(name.substr(dot + 1, name.size() - dot - 6));
}

Result<std::string> StageApp(const StageAppRequest& request, const Clock& clock) {
  const RepositoryLayout repo{request.repository};
  std::vector<metadata::TufKey> keys;
  for (const auto& file : request.public_key_files) {
    ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(file, 64 << 10));
    auto key = metadata::ParsePublicKeyText(text);
    if (!key.ok()) return key.status().WithContext(file);
    keys.push_back(std::move(key).value());
  }
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, notes));
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repo.root, clock));
  ASSIGN_OR_RETURN(
      metadata::SignedDocument doc,
      metadata::StageAppDelegation(*meta, request.app, keys, request.threshold, request.expiry));
  return WritePending(repo, "targets", doc);
}

Result<std::string> StageRootRotation(const StageRootRequest& request, const Clock& clock) {
  std::map<metadata::RoleType, metadata::RoleKeyConfig> changes;
  for (const auto& [name, files] : request.rotate) {
    auto role = std::find_if(std::begin(metadata::kAllRoles), std::end(metadata::kAllRoles),
                             [&](metadata::RoleType r) { return metadata::RoleName(r) == name; });
    if (role == std::end(metadata::kAllRoles)) return InvalidArgument("no top-level role " + name);
    for (const auto& file : files) {
      ASSIGN_OR_RETURN(std::string hex, ReadTextFileBounded(file, 1 << 10));
      while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) hex.pop_back();
      auto key = Ed25519PublicKey::FromHex(hex);
      if (!key.ok()) return key.status().WithContext(file);
      changes[*role].keys.push_back(*key);
    }
  }
  const RepositoryLayout repo{request.repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repo.root, clock));
  if (changes.empty() && !request.offline_window_max_days) {
    return InvalidArgument("nothing to stage: give --rotate or --offline-window-max-days");
  }
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   meta->StageRoot(changes, request.offline_window_max_days));
  RETURN_IF_ERROR(CreateDirectories(PendingDir(repo), 0700));
  const std::string path =
      PendingDir(repo) + "/" + std::to_string(meta->root().common.version + 1) + ".root.json";
  RETURN_IF_ERROR(WriteFileAtomic(path, metadata::SerializeDocument(doc), 0644));
  return path;
}

Result<AcceptOutcome> AcceptSigned(const std::string& repository, const std::string& file,
                                   std::string role, const Clock& clock) {
  if (role.empty()) {
    ASSIGN_OR_RETURN(role, RoleOfPendingFile(file));
  }
  if (role != "root" && role != "targets" && !role.starts_with("apps/")) {
    return InvalidArgument("role " + role + ": only root, targets and apps/<app> are accepted");
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(file, kMaxSignedFile));
  const RepositoryLayout repo{repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  auto outcome = AcceptLocked(repo, bytes, role, clock);
  if (!outcome.ok()) return std::move(outcome).WithContext("accept " + file);
  return outcome;
}

}  // namespace flotilla::tracker
