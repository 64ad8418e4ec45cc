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

// The timestamp is due at half its lifetime; also when it expires later than
// a lifetime from now, and when devices may have seen a newer version.
bool TimestampDue(const metadata::TimestampMetadata& timestamp, WallTime now,
                  const metadata::RepositoryOptions& options) {
  const auto lifetime = std::chrono::duration_cast<WallTime::duration>(options.timestamp_expiry);
  auto published = options.published_versions.find(RoleType::kTimestamp);
  return now >= DueAt(timestamp.common.expires, options.timestamp_expiry) ||
         timestamp.common.expires > now + lifetime ||
         (published != options.published_versions.end() &&
          timestamp.common.version < published->second);
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

// The roles' highest published versions as the metadata module takes them.
std::map<RoleType, uint64_t> PublishedVersions(const std::map<std::string, uint64_t>& published) {
  std::map<RoleType, uint64_t> versions;
  for (RoleType role : {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp}) {
    auto it = published.find(std::string(metadata::RoleName(role)));
    if (it != published.end()) versions[role] = it->second;
  }
  return versions;
}

}  // namespace

Result<Duration> RepositoryRefresher::RefreshAbove(
    WallTime now, const std::map<std::string, uint64_t>& published) {
  auto lock = PublishLock::Acquire(repo_, /*wait=*/false);
  if (!lock.ok()) {
    if (lock.status().code() == StatusCode::kFailedPrecondition) return kBusyRetry;
    return lock.status();
  }
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo_, notes));
  metadata::RepositoryOptions options = options_;
  options.published_versions = PublishedVersions(published);
  ASSIGN_OR_RETURN(auto repo, metadata::Repository::Open(repo_.root, clock_, options));
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
  } else if (TimestampDue(repo->timestamp(), now, options)) {
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
  return std::clamp(wait, std::min(kMinWait, options_.timestamp_expiry / 4), kMaxWait);
}

std::unique_ptr<MetadataRefresher> MakeRepositoryRefresher(const std::string& repository,
                                                           const Clock& clock,
                                                           metadata::RepositoryOptions options) {
  RepositoryLayout repo{repository};
  std::error_code ec;
  if (!std::filesystem::exists(RoleKeyPath(repo, RoleType::kTimestamp), ec)) return nullptr;
  return std::make_unique<RepositoryRefresher>(std::move(repo), clock, std::move(options));
}

}  // namespace flotilla::tracker
