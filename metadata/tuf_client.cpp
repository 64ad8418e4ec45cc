#include "metadata/tuf_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "core/fd.h"
#include "core/file_io.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

// Longest encoded target file name; leaves room for the "%part-" prefix under NAME_MAX.
constexpr size_t kMaxTargetFileName = 240;

bool SameRoleKeys(const RootMetadata& a, const RootMetadata& b, RoleType role) {
  const RoleKeys& ka = a.roles.at(role);
  const RoleKeys& kb = b.roles.at(role);
  return ka.threshold == kb.threshold &&
         std::set<std::string>(ka.keyids.begin(), ka.keyids.end()) ==
             std::set<std::string>(kb.keyids.begin(), kb.keyids.end());
}

Status FsyncFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  if (::fsync(fd.get()) != 0) return IOErrorFromErrno("fsync " + path, errno);
  return Status::Ok();
}

// OK when the regular file at `path` has the target's signed length and hashes.
Status CheckFileAgainstTarget(const std::string& path, const TargetFile& target) {
  return CheckFileLengthAndHashes("target " + PercentEncode(target.name), path, target.length,
                                  target.hashes, /*require_hash=*/true);
}

// A target needs a hash flotilla computes; checked before anything is fetched.
Status CheckHashAlgorithms(const TargetFile& target) {
  for (const auto& [algorithm, hex] : target.hashes) {
    if (IsSupportedHash(algorithm)) return Status::Ok();
  }
  return Corruption("target " + PercentEncode(target.name) +
                    " lists no hash flotilla computes (sha256, sha512)");
}

std::string TargetUrlPath(const TargetFile& target, bool consistent_snapshot) {
  if (!consistent_snapshot) return EncodeTargetUrlPath(target.name);
  auto slash = target.name.rfind('/');
  std::string dir = slash == std::string::npos ? "" : target.name.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? target.name : target.name.substr(slash + 1);
  return EncodeTargetUrlPath(dir + HashForFileName(target.hashes) + "." + base);
}

}  // namespace

Status CheckNotExpired(std::string_view what, WallTime expires, WallTime now) {
  if (expires <= now) {
    return FailedPrecondition(std::string(what) + " metadata expired at " + FormatTufTime(expires) +
                              " (now " + FormatTufTime(now) + ")");
  }
  return Status::Ok();
}

Status TufClient::Initialize(const std::string& metadata_dir, std::string_view root_bytes,
                             Env& env) {
  ASSIGN_OR_RETURN(SignedDocument doc,
                   ParseSignedDocument(root_bytes, ClientLimits{}.max_root_bytes));
  ASSIGN_OR_RETURN(RootMetadata root, ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(VerifyThreshold(doc, root.keys, root.roles.at(RoleType::kRoot),
                                  "initial root (signed by its own root keys)"));
  RETURN_IF_ERROR(CreateDurableDirectories(env, metadata_dir, 0755));
  TrustedStore store(metadata_dir, env);
  for (RoleType role : {RoleType::kTimestamp, RoleType::kSnapshot, RoleType::kTargets}) {
    RETURN_IF_ERROR(store.Remove(role));
  }
  return store.Store(RoleType::kRoot, root_bytes);
}

Result<std::unique_ptr<TufClient>> TufClient::Open(const std::string& metadata_dir,
                                                   RemoteRepository& remote, const Clock& clock,
                                                   ClientLimits limits, Env& env) {
  TrustedStore store(metadata_dir, env);
  ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                   store.Load(RoleType::kRoot, limits.max_root_bytes));
  if (!bytes) {
    return FailedPrecondition("no trusted root in " + metadata_dir + "; run `tuf init` first");
  }
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(*bytes, limits.max_root_bytes));
  ASSIGN_OR_RETURN(RootMetadata root, ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(
      VerifyThreshold(doc, root.keys, root.roles.at(RoleType::kRoot), "trusted root.json"));
  std::unique_ptr<TufClient> client(new TufClient(std::move(store), remote, clock, limits));
  client->root_ = std::move(root);
  return client;
}

Status TufClient::Refresh() {
  refreshed_ = false;
  stale_since_.reset();
  delegated_.clear();
  ASSIGN_OR_RETURN(WallTime floor, store_.LoadTimeFloor());
  const WallTime now = std::max(clock_.Now(), floor);
  update_start_ = now;
  RETURN_IF_ERROR_CTX(UpdateRoot(now), "update root");
  RETURN_IF_ERROR(LoadTrustedRoles());
  RETURN_IF_ERROR_CTX(UpdateTimestamp(now), "update timestamp");
  RETURN_IF_ERROR_CTX(UpdateSnapshot(now), "update snapshot");
  RETURN_IF_ERROR_CTX(UpdateTargets(now), "update targets");
  // A refresh that needed the offline window leaves the floor to the caller
  // (RaiseTimeFloorTo, at most the window's start).
  if (!stale_since_ && now > floor) RETURN_IF_ERROR(store_.StoreTimeFloor(now));
  refreshed_ = true;
  return Status::Ok();
}

Status TufClient::CheckFresh(std::string_view what, WallTime expires, WallTime now) {
  Status fresh = CheckNotExpired(what, expires, now);
  if (fresh.ok() || !offline_window_allowed_) return fresh;
  if (!stale_since_ || expires < *stale_since_) stale_since_ = expires;
  return Status::Ok();
}

Status TufClient::RaiseTimeFloorTo(WallTime to) {
  ASSIGN_OR_RETURN(WallTime floor, store_.LoadTimeFloor());
  if (to <= floor) return Status::Ok();
  return store_.StoreTimeFloor(to);
}

Status TufClient::UpdateRoot(WallTime now) {
  for (uint32_t rotations = 0;; ++rotations) {
    const std::string name = std::to_string(root_.common.version + 1) + ".root.json";
    auto fetched = remote_.FetchMetadata(name, limits_.max_root_bytes);
    if (!fetched.ok()) {
      if (fetched.status().code() == StatusCode::kNotFound) break;
      return fetched.status().WithContext(name);
    }
    if (rotations == limits_.max_root_rotations) {
      return ResourceExhausted("more than " + std::to_string(limits_.max_root_rotations) +
                               " root versions in one refresh; stopped at version " +
                               std::to_string(root_.common.version));
    }
    RETURN_IF_ERROR_CTX(AcceptNextRoot(*fetched), name);
  }
  return CheckNotExpired("root", root_.common.expires, now);
}

// Fast-forward attack recovery (5.3.11): metadata that rotated-out keys
// signed, with versions an attacker may have pushed up, must not hold back
// the versions the new keys sign. Runs before `next` is persisted: a crash or
// failure afterwards cannot leave the new root trusted beside the old files.
Status TufClient::ForgetRotatedRoles(const RootMetadata& next) {
  if (!SameRoleKeys(root_, next, RoleType::kTimestamp) ||
      !SameRoleKeys(root_, next, RoleType::kSnapshot)) {
    RETURN_IF_ERROR(store_.Remove(RoleType::kTimestamp));
    RETURN_IF_ERROR(store_.Remove(RoleType::kSnapshot));
  }
  if (!SameRoleKeys(root_, next, RoleType::kTargets)) {
    RETURN_IF_ERROR(store_.Remove(RoleType::kTargets));
  }
  return Status::Ok();
}

Status TufClient::AcceptNextRoot(std::string_view bytes) {
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(bytes, limits_.max_root_bytes));
  ASSIGN_OR_RETURN(RootMetadata next, ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(VerifyThreshold(doc, root_.keys, root_.roles.at(RoleType::kRoot),
                                  "new root, by the trusted root's keys"));
  RETURN_IF_ERROR(
      VerifyThreshold(doc, next.keys, next.roles.at(RoleType::kRoot), "new root, by its own keys"));
  if (next.common.version != root_.common.version + 1) {
    return Corruption("root version " + std::to_string(next.common.version) + " where version " +
                      std::to_string(root_.common.version + 1) + " was expected");
  }
  RETURN_IF_ERROR(ForgetRotatedRoles(next));
  RETURN_IF_ERROR(store_.Store(RoleType::kRoot, bytes));
  root_ = std::move(next);
  return Status::Ok();
}

Result<SignedDocument> TufClient::VerifyRoleDocument(RoleType role, std::string_view bytes,
                                                     uint64_t max_bytes) const {
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(bytes, max_bytes));
  RETURN_IF_ERROR(CheckRoleType(doc.signed_json, role));
  RETURN_IF_ERROR(VerifyThreshold(doc, root_.keys, root_.roles.at(role), RoleName(role)));
  return doc;
}

template <typename Metadata>
Status TufClient::LoadTrusted(RoleType role, uint64_t max_bytes,
                              Result<Metadata> (*parse)(const Json&),
                              std::optional<Metadata>& trusted, std::string* trusted_bytes) {
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, store_.Load(role, max_bytes));
  if (!bytes) return Status::Ok();
  auto doc = VerifyRoleDocument(role, *bytes, max_bytes);
  if (!doc.ok()) return Status::Ok();
  auto parsed = parse(doc->signed_json);
  if (!parsed.ok()) return Status::Ok();
  trusted = std::move(parsed).value();
  if (trusted_bytes != nullptr) *trusted_bytes = std::move(*bytes);
  return Status::Ok();
}

Status TufClient::LoadTrustedRoles() {
  timestamp_.reset();
  snapshot_.reset();
  targets_.reset();
  RETURN_IF_ERROR(LoadTrusted(RoleType::kTimestamp, limits_.max_timestamp_bytes, ParseTimestamp,
                              timestamp_, nullptr));
  RETURN_IF_ERROR(LoadTrusted(RoleType::kSnapshot, limits_.max_snapshot_bytes, ParseSnapshot,
                              snapshot_, &trusted_snapshot_bytes_));
  return LoadTrusted(RoleType::kTargets, limits_.max_targets_bytes, ParseTargets, targets_,
                     &trusted_targets_bytes_);
}

Status TufClient::CheckTimestampRollback(const TimestampMetadata& fresh, bool& keep_trusted) {
  keep_trusted = false;
  if (!timestamp_) return Status::Ok();
  const uint64_t trusted_version = timestamp_->common.version;
  if (fresh.common.version < trusted_version) {
    return Corruption("timestamp version rollback: " + std::to_string(fresh.common.version) +
                      " < trusted " + std::to_string(trusted_version));
  }
  if (fresh.common.version == trusted_version) {
    keep_trusted = true;  // nothing new: not an error (TUF 5.4.3.1)
    return Status::Ok();
  }
  if (fresh.snapshot.version < timestamp_->snapshot.version) {
    return Corruption(
        "snapshot version rollback in timestamp: " + std::to_string(fresh.snapshot.version) +
        " < trusted " + std::to_string(timestamp_->snapshot.version));
  }
  return Status::Ok();
}

Status TufClient::UpdateTimestamp(WallTime now) {
  ASSIGN_OR_RETURN(std::string bytes,
                   remote_.FetchMetadata("timestamp.json", limits_.max_timestamp_bytes));
  ASSIGN_OR_RETURN(SignedDocument doc,
                   VerifyRoleDocument(RoleType::kTimestamp, bytes, limits_.max_timestamp_bytes));
  ASSIGN_OR_RETURN(TimestampMetadata fresh, ParseTimestamp(doc.signed_json));
  bool keep_trusted = false;
  RETURN_IF_ERROR(CheckTimestampRollback(fresh, keep_trusted));
  if (keep_trusted) return CheckFresh("timestamp", timestamp_->common.expires, now);
  RETURN_IF_ERROR(CheckFresh("timestamp", fresh.common.expires, now));
  RETURN_IF_ERROR(store_.Store(RoleType::kTimestamp, bytes));
  timestamp_ = std::move(fresh);
  return Status::Ok();
}

std::string TufClient::MetadataName(std::string_view role, uint64_t version) const {
  std::string base = std::string(role) + ".json";
  if (!root_.consistent_snapshot || role == RoleName(RoleType::kTimestamp)) return base;
  return std::to_string(version) + "." + base;
}

Result<std::string> TufClient::FetchVerifiedFile(std::string_view role, const MetaFileInfo& info,
                                                 uint64_t limit) {
  const std::string name = MetadataName(role, info.version);
  const uint64_t max_bytes = std::min(info.length.value_or(limit), limit);
  ASSIGN_OR_RETURN(auto bytes, remote_.FetchMetadata(name, max_bytes).WithContext(name));
  RETURN_IF_ERROR(CheckLengthAndHashes(name, AsBytes(bytes), info.length, info.hashes,
                                       /*require_hash=*/false));
  return bytes;
}

Status TufClient::CheckRollback(const SnapshotMetadata& fresh) const {
  if (!snapshot_) return Status::Ok();
  if (fresh.common.version < snapshot_->common.version) {
    return Corruption("snapshot version rollback: " + std::to_string(fresh.common.version) +
                      " < trusted " + std::to_string(snapshot_->common.version));
  }
  for (const auto& [file, trusted] : snapshot_->meta) {
    auto it = fresh.meta.find(file);
    if (it == fresh.meta.end()) {
      return Corruption("new snapshot no longer lists " + PercentEncode(file));
    }
    if (it->second.version < trusted.version) {
      return Corruption("version rollback of " + PercentEncode(file) + ": " +
                        std::to_string(it->second.version) + " < trusted " +
                        std::to_string(trusted.version));
    }
  }
  return Status::Ok();
}

Status TufClient::CheckRollback(const TargetsMetadata& fresh) const {
  if (targets_ && fresh.common.version < targets_->common.version) {
    return Corruption("targets version rollback: " + std::to_string(fresh.common.version) +
                      " < trusted " + std::to_string(targets_->common.version));
  }
  return Status::Ok();
}

template <typename Metadata>
Status TufClient::UpdateRole(RoleType role, const MetaFileInfo& info, std::string_view named_by,
                             uint64_t max_bytes, Result<Metadata> (*parse)(const Json&),
                             std::optional<Metadata>& trusted, std::string& trusted_bytes,
                             WallTime now) {
  const std::string name(RoleName(role));
  if (trusted && trusted->common.version == info.version &&
      CheckLengthAndHashes(name, AsBytes(trusted_bytes), info.length, info.hashes, false).ok()) {
    return CheckFresh(name, trusted->common.expires, now);
  }
  ASSIGN_OR_RETURN(std::string bytes, FetchVerifiedFile(name, info, max_bytes));
  ASSIGN_OR_RETURN(SignedDocument doc, VerifyRoleDocument(role, bytes, max_bytes));
  ASSIGN_OR_RETURN(Metadata fresh, parse(doc.signed_json));
  if (fresh.common.version != info.version) {
    return Corruption(name + " version " + std::to_string(fresh.common.version) + ", the " +
                      std::string(named_by) + " names version " + std::to_string(info.version));
  }
  RETURN_IF_ERROR(CheckRollback(fresh));
  RETURN_IF_ERROR(CheckFresh(name, fresh.common.expires, now));
  RETURN_IF_ERROR(store_.Store(role, bytes));
  trusted = std::move(fresh);
  trusted_bytes = std::move(bytes);
  return Status::Ok();
}

Status TufClient::UpdateSnapshot(WallTime now) {
  return UpdateRole(RoleType::kSnapshot, timestamp_->snapshot, "timestamp",
                    limits_.max_snapshot_bytes, ParseSnapshot, snapshot_, trusted_snapshot_bytes_,
                    now);
}

Status TufClient::UpdateTargets(WallTime now) {
  return UpdateRole(RoleType::kTargets, snapshot_->meta.at("targets.json"), "snapshot",
                    limits_.max_targets_bytes, ParseTargets, targets_, trusted_targets_bytes_, now);
}

Result<DownloadedTarget> TufClient::DownloadTarget(const TargetFile& target,
                                                   const std::string& target_dir) {
  RETURN_IF_ERROR(ValidateTargetName(target.name));
  const std::string file_name = PercentEncode(target.name);
  if (file_name.size() > kMaxTargetFileName) {
    return InvalidArgument("target name too long for a local file name");
  }
  RETURN_IF_ERROR(CheckHashAlgorithms(target));  // before fetching anything
  RETURN_IF_ERROR(CreateDirectories(target_dir, 0755));
  const std::string path = target_dir + "/" + file_name;
  if (CheckFileAgainstTarget(path, target).ok()) return DownloadedTarget{path, false};
  // '%' followed by a non-hex letter is never produced by PercentEncode: no clash with a target.
  const std::string temp = target_dir + "/%part-" + file_name;
  ::unlink(temp.c_str());
  auto discard = [&](Status st) {
    ::unlink(temp.c_str());
    return st.WithContext("target " + file_name);
  };
  Status fetched =
      remote_.FetchTarget(TargetUrlPath(target, root_.consistent_snapshot), target.length, temp);
  if (!fetched.ok()) return discard(fetched);
  if (Status st = CheckFileAgainstTarget(temp, target); !st.ok()) return discard(st);
  if (Status st = FsyncFile(temp); !st.ok()) return discard(st);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return discard(IOErrorFromErrno("rename into " + path, errno));
  }
  RETURN_IF_ERROR(FsyncDirectory(target_dir));
  return DownloadedTarget{path, true};
}

}  // namespace flotilla::metadata
