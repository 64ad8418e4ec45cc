#include "metadata/tuf_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/file_io.h"
#include "metadata/json_fields.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

// Longest encoded target file name; leaves room for the "%part-" prefix under NAME_MAX.
constexpr size_t kMaxTargetFileName = 240;

bool SameRoleKeys(const RootMetadata& a, const RootMetadata& b, RoleType role) {
  const RoleKeys& ka = a.roles.at(role);
  const RoleKeys& kb = b.roles.at(role);
  return ka.threshold == kb.threshold && ka.keyids == kb.keyids;
}

Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IOErrorFromErrno("open " + path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IOErrorFromErrno("fsync " + path, err);
  return Status::Ok();
}

// OK when the regular file at `path` has the target's signed length and hashes.
Status CheckFileAgainstTarget(const std::string& path, const TargetFile& target) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Corruption(path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != target.length) {
    return Corruption("target " + PercentEncode(target.name) + " is " + std::to_string(st.st_size) +
                      " bytes, the signed length is " + std::to_string(target.length));
  }
  ASSIGN_OR_RETURN(Digest digest, HashFile(path));
  return CheckDigestAndLength("target " + PercentEncode(target.name), digest,
                              static_cast<uint64_t>(st.st_size), target.length, target.hashes,
                              /*require_hash=*/true);
}

// flotilla checks sha256 only: a target must carry it and nothing it cannot check.
Status CheckHashAlgorithms(const TargetFile& target) {
  for (const auto& [algorithm, hex] : target.hashes) {
    if (algorithm != "sha256") {
      return Corruption("target " + PercentEncode(target.name) + ": unsupported hash algorithm '" +
                        algorithm.substr(0, 32) + "'");
    }
  }
  if (!target.hashes.contains("sha256")) {
    return Corruption("target " + PercentEncode(target.name) + " has no sha256 hash");
  }
  return Status::Ok();
}

std::string TargetUrlPath(const TargetFile& target, bool consistent_snapshot) {
  if (!consistent_snapshot) return EncodeTargetUrlPath(target.name);
  auto slash = target.name.rfind('/');
  std::string dir = slash == std::string::npos ? "" : target.name.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? target.name : target.name.substr(slash + 1);
  auto hash = target.hashes.find("sha256");
  std::string prefix = hash == target.hashes.end() ? "" : hash->second + ".";
  return EncodeTargetUrlPath(dir + prefix + base);
}

}  // namespace

Status CheckNotExpired(std::string_view what, WallTime expires, WallTime now) {
  if (expires <= now) {
    return FailedPrecondition(std::string(what) + " metadata expired at " + FormatTufTime(expires) +
                              " (now " + FormatTufTime(now) + ")");
  }
  return Status::Ok();
}

Status TufClient::Initialize(const std::string& metadata_dir, std::string_view root_bytes) {
  ASSIGN_OR_RETURN(SignedDocument doc,
                   ParseSignedDocument(root_bytes, ClientLimits{}.max_root_bytes));
  ASSIGN_OR_RETURN(RootMetadata root, ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(VerifyThreshold(doc, root.keys, root.roles.at(RoleType::kRoot),
                                  "initial root (signed by its own root keys)"));
  RETURN_IF_ERROR(CreateDirectories(metadata_dir, 0755));
  TrustedStore store(metadata_dir);
  for (RoleType role : {RoleType::kTimestamp, RoleType::kSnapshot, RoleType::kTargets}) {
    RETURN_IF_ERROR(store.Remove(role));
  }
  return store.Store(RoleType::kRoot, root_bytes);
}

Result<std::unique_ptr<TufClient>> TufClient::Open(const std::string& metadata_dir,
                                                   RemoteRepository& remote, const Clock& clock,
                                                   ClientLimits limits) {
  TrustedStore store(metadata_dir);
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
  ASSIGN_OR_RETURN(WallTime floor, store_.LoadTimeFloor());
  const WallTime now = std::max(clock_.Now(), floor);
  RETURN_IF_ERROR_CTX(UpdateRoot(now), "update root");
  RETURN_IF_ERROR(LoadTrustedRoles());
  RETURN_IF_ERROR_CTX(UpdateTimestamp(now), "update timestamp");
  RETURN_IF_ERROR_CTX(UpdateSnapshot(now), "update snapshot");
  RETURN_IF_ERROR_CTX(UpdateTargets(now), "update targets");
  if (now > floor) RETURN_IF_ERROR(store_.StoreTimeFloor(now));
  refreshed_ = true;
  return Status::Ok();
}

Status TufClient::UpdateRoot(WallTime now) {
  const RootMetadata original = root_;
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
  // Fast-forward attack recovery (5.3.11): metadata signed by rotated-out keys
  // must not hold back the versions the new keys sign.
  if (!SameRoleKeys(original, root_, RoleType::kTimestamp) ||
      !SameRoleKeys(original, root_, RoleType::kSnapshot)) {
    RETURN_IF_ERROR(store_.Remove(RoleType::kTimestamp));
    RETURN_IF_ERROR(store_.Remove(RoleType::kSnapshot));
  }
  if (!SameRoleKeys(original, root_, RoleType::kTargets)) {
    RETURN_IF_ERROR(store_.Remove(RoleType::kTargets));
  }
  return CheckNotExpired("root", root_.common.expires, now);
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
  RETURN_IF_ERROR(store_.Store(RoleType::kRoot, bytes));
  root_ = std::move(next);
  return Status::Ok();
}

Result<SignedDocument> TufClient::VerifyRoleDocument(RoleType role, std::string_view bytes,
                                                     uint64_t max_bytes) const {
  ASSIGN_OR_RETURN(SignedDocument doc, ParseSignedDocument(bytes, max_bytes));
  ASSIGN_OR_RETURN(std::string type, json_fields::GetString(doc.signed_json, "_type"));
  if (type != RoleName(role)) {
    return Corruption("expected " + std::string(RoleName(role)) + " metadata, got _type '" +
                      type.substr(0, 32) + "'");
  }
  RETURN_IF_ERROR(VerifyThreshold(doc, root_.keys, root_.roles.at(role), RoleName(role)));
  return doc;
}

Status TufClient::LoadTrustedRoles() {
  timestamp_.reset();
  snapshot_.reset();
  targets_.reset();
  ASSIGN_OR_RETURN(auto ts, store_.Load(RoleType::kTimestamp, limits_.max_timestamp_bytes));
  if (ts) {
    auto doc = VerifyRoleDocument(RoleType::kTimestamp, *ts, limits_.max_timestamp_bytes);
    if (doc.ok()) {
      auto parsed = ParseTimestamp(doc->signed_json);
      if (parsed.ok()) timestamp_ = std::move(parsed).value();
    }
  }
  ASSIGN_OR_RETURN(auto sn, store_.Load(RoleType::kSnapshot, limits_.max_snapshot_bytes));
  if (sn) {
    auto doc = VerifyRoleDocument(RoleType::kSnapshot, *sn, limits_.max_snapshot_bytes);
    if (doc.ok()) {
      auto parsed = ParseSnapshot(doc->signed_json);
      if (parsed.ok()) snapshot_ = std::move(parsed).value();
    }
    if (snapshot_) trusted_snapshot_bytes_ = *sn;
  }
  ASSIGN_OR_RETURN(auto tg, store_.Load(RoleType::kTargets, limits_.max_targets_bytes));
  if (tg) {
    auto doc = VerifyRoleDocument(RoleType::kTargets, *tg, limits_.max_targets_bytes);
    if (doc.ok()) {
      auto parsed = ParseTargets(doc->signed_json);
      if (parsed.ok()) targets_ = std::move(parsed).value();
    }
    if (targets_) trusted_targets_bytes_ = *tg;
  }
  return Status::Ok();
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
  if (keep_trusted) return CheckNotExpired("timestamp", timestamp_->common.expires, now);
  RETURN_IF_ERROR(CheckNotExpired("timestamp", fresh.common.expires, now));
  RETURN_IF_ERROR(store_.Store(RoleType::kTimestamp, bytes));
  timestamp_ = std::move(fresh);
  return Status::Ok();
}

std::string TufClient::MetadataName(RoleType role, uint64_t version) const {
  std::string base = std::string(RoleName(role)) + ".json";
  if (!root_.consistent_snapshot || role == RoleType::kTimestamp) return base;
  return std::to_string(version) + "." + base;
}

Result<std::string> TufClient::FetchVerifiedFile(RoleType role, const MetaFileInfo& info,
                                                 uint64_t limit) {
  const std::string name = MetadataName(role, info.version);
  const uint64_t max_bytes = std::min(info.length.value_or(limit), limit);
  auto bytes = remote_.FetchMetadata(name, max_bytes);
  if (!bytes.ok()) return bytes.status().WithContext(name);
  RETURN_IF_ERROR(CheckLengthAndHashes(name, AsBytes(*bytes), info.length, info.hashes,
                                       /*require_hash=*/false));
  return bytes;
}

Status TufClient::CheckSnapshotRollback(const SnapshotMetadata& fresh) {
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

Status TufClient::UpdateSnapshot(WallTime now) {
  const MetaFileInfo& info = timestamp_->snapshot;
  if (snapshot_ && snapshot_->common.version == info.version &&
      CheckLengthAndHashes("snapshot", AsBytes(trusted_snapshot_bytes_), info.length, info.hashes,
                           false)
          .ok()) {
    return CheckNotExpired("snapshot", snapshot_->common.expires, now);
  }
  ASSIGN_OR_RETURN(std::string bytes,
                   FetchVerifiedFile(RoleType::kSnapshot, info, limits_.max_snapshot_bytes));
  ASSIGN_OR_RETURN(SignedDocument doc,
                   VerifyRoleDocument(RoleType::kSnapshot, bytes, limits_.max_snapshot_bytes));
  ASSIGN_OR_RETURN(SnapshotMetadata fresh, ParseSnapshot(doc.signed_json));
  if (fresh.common.version != info.version) {
    return Corruption("snapshot version " + std::to_string(fresh.common.version) +
                      ", the timestamp names version " + std::to_string(info.version));
  }
  RETURN_IF_ERROR(CheckSnapshotRollback(fresh));
  RETURN_IF_ERROR(CheckNotExpired("snapshot", fresh.common.expires, now));
  RETURN_IF_ERROR(store_.Store(RoleType::kSnapshot, bytes));
  snapshot_ = std::move(fresh);
  trusted_snapshot_bytes_ = std::move(bytes);
  return Status::Ok();
}

Status TufClient::UpdateTargets(WallTime now) {
  const MetaFileInfo& info = snapshot_->meta.at("targets.json");
  if (targets_ && targets_->common.version == info.version &&
      CheckLengthAndHashes("targets", AsBytes(trusted_targets_bytes_), info.length, info.hashes,
                           false)
          .ok()) {
    return CheckNotExpired("targets", targets_->common.expires, now);
  }
  ASSIGN_OR_RETURN(std::string bytes,
                   FetchVerifiedFile(RoleType::kTargets, info, limits_.max_targets_bytes));
  ASSIGN_OR_RETURN(SignedDocument doc,
                   VerifyRoleDocument(RoleType::kTargets, bytes, limits_.max_targets_bytes));
  ASSIGN_OR_RETURN(TargetsMetadata fresh, ParseTargets(doc.signed_json));
  if (fresh.common.version != info.version) {
    return Corruption("targets version " + std::to_string(fresh.common.version) +
                      ", the snapshot names version " + std::to_string(info.version));
  }
  if (targets_ && fresh.common.version < targets_->common.version) {
    return Corruption("targets version rollback: " + std::to_string(fresh.common.version) +
                      " < trusted " + std::to_string(targets_->common.version));
  }
  RETURN_IF_ERROR(CheckNotExpired("targets", fresh.common.expires, now));
  RETURN_IF_ERROR(store_.Store(RoleType::kTargets, bytes));
  targets_ = std::move(fresh);
  trusted_targets_bytes_ = std::move(bytes);
  return Status::Ok();
}

Result<TargetFile> TufClient::GetTargetInfo(std::string_view name) const {
  if (!refreshed_ || !targets_)
    return FailedPrecondition("refresh metadata before looking up targets");
  RETURN_IF_ERROR(ValidateTargetName(name));
  auto it = targets_->targets.find(std::string(name));
  if (it != targets_->targets.end()) return it->second;
  if (const DelegatedRole* role = targets_->DelegationFor(name)) {
    return FailedPrecondition("target " + PercentEncode(name) + " is delegated to role " +
                              PercentEncode(role->name) +
                              "; flotilla's client does not follow delegations");
  }
  return NotFound("no target named " + PercentEncode(name) + " in the signed targets");
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
