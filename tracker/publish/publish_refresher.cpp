#include "tracker/publish/publish_refresher.h"

#include <filesystem>

#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"

namespace flotilla::tracker {
namespace {

using metadata::RoleType;

constexpr Duration kBusyRetry = std::chrono::seconds(30);
constexpr Duration kMinWait = std::chrono::minutes(1);
constexpr Duration kMaxWait = std::chrono::hours(1);

// The moment a role with `expires` and `lifetime` is due for re-signing.
WallTime DueAt(WallTime expires, Duration lifetime) {
  return expires - std::chrono::duration_cast<WallTime::duration>(lifetime / 2);
}

// Adds the role's key to `ring` if its file exists; a file that exists but
// is not the role's key is an error.
Result<bool> AddKeyIfPresent(const RepositoryLayout& repo, const metadata::RootMetadata& root,
                             RoleType role, metadata::KeyRing& ring) {
  std::error_code ec;
  if (!std::filesystem::exists(RoleKeyPath(repo, role), ec)) return false;
  ASSIGN_OR_RETURN(auto keys, LoadRoleKeys(repo, root, {role}));
  ring.Merge(keys);
  return true;
}

}  // namespace

Result<Duration> RepositoryRefresher::Refresh(WallTime now) {
  auto lock = PublishLock::Acquire(repo_, /*wait=*/false);
  if (!lock.ok()) {
    if (lock.status().code() == StatusCode::kFailedPrecondition) return kBusyRetry;
    return lock.status();
  }
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo_, notes));
  ASSIGN_OR_RETURN(auto repo, metadata::Repository::Open(repo_.root, clock_, options_));
  metadata::KeyRing ring;
  ASSIGN_OR_RETURN(bool have_timestamp,
                   AddKeyIfPresent(repo_, repo->root(), RoleType::kTimestamp, ring));
  if (!have_timestamp) return NotFound("no timestamp key in " + KeysDir(repo_));
  ASSIGN_OR_RETURN(bool have_snapshot,
                   AddKeyIfPresent(repo_, repo->root(), RoleType::kSnapshot, ring));
  ASSIGN_OR_RETURN(bool have_targets,
                   AddKeyIfPresent(repo_, repo->root(), RoleType::kTargets, ring));

  const WallTime targets_due = DueAt(repo->targets().common.expires, options_.targets_expiry);
  const WallTime snapshot_due = DueAt(repo->snapshot().common.expires, options_.snapshot_expiry);
  if (have_targets && have_snapshot && now >= targets_due) {
    RETURN_IF_ERROR_CTX(repo->ResignTargets(ring), "re-sign targets");
  } else if (have_snapshot && now >= snapshot_due) {
    RETURN_IF_ERROR_CTX(repo->ResignSnapshot(ring), "re-sign snapshot");
  } else if (now >= DueAt(repo->timestamp().common.expires, options_.timestamp_expiry)) {
    RETURN_IF_ERROR_CTX(repo->ResignTimestamp(ring), "re-sign timestamp");
  }

  WallTime next = DueAt(repo->timestamp().common.expires, options_.timestamp_expiry);
  if (have_snapshot) {
    next = std::min(next, DueAt(repo->snapshot().common.expires, options_.snapshot_expiry));
  }
  if (have_targets && have_snapshot) {
    next = std::min(next, DueAt(repo->targets().common.expires, options_.targets_expiry));
  }
  Duration wait = std::chrono::duration_cast<Duration>(next - now);
  return std::clamp(wait, kMinWait, kMaxWait);
}

std::unique_ptr<MetadataRefresher> MakeRepositoryRefresher(const std::string& repository,
                                                           const Clock& clock) {
  RepositoryLayout repo{repository};
  std::error_code ec;
  if (!std::filesystem::exists(RoleKeyPath(repo, RoleType::kTimestamp), ec)) return nullptr;
  return std::make_unique<RepositoryRefresher>(std::move(repo), clock);
}

}  // namespace flotilla::tracker
