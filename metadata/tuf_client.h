// The TUF 1.0 client workflow (specification section 5), as a device runs it.
//
// Refresh():
//  1. fixes the update start time: max(clock, time floor) (see below);
//  2. walks the root chain one version at a time (N+1.root.json), each new
//     root signed by a threshold of the old root's root keys AND of its own,
//     with version exactly N+1; at most limits.max_root_rotations per refresh;
//     the final root must not be expired. Fast-forward attack recovery
//     (5.3.11): when a new root changes the timestamp or snapshot keys, the
//     trusted timestamp and snapshot are deleted (targets too when the
//     targets keys change) before that root is persisted, so the recovery
//     holds even if the refresh stops right after;
//  3. timestamp.json: signed by the timestamp keys, no version rollback, an
//     equal version is a quiet no-op (the trusted one stays), snapshot version
//     not rolled back, not expired;
//  4. snapshot: the version, length and hashes the timestamp names
//     (N.snapshot.json with consistent snapshots), signed, no targets version
//     rolled back or removed, not expired; a trusted copy that already matches
//     is used without a download;
//  5. targets: likewise against the snapshot's entry for targets.json.
// GetTargetInfo() then searches the delegation graph for a target (5.6.7):
// pre-order depth-first from the top-level targets, delegations in order of
// appearance, a terminating delegation ends the search below it, a visited
// set against cycles, at most limits.max_delegations roles. A delegated
// role's metadata is fetched (V.ROLE.json with consistent snapshots, the
// name percent-encoded) and checked like targets: the snapshot's version,
// length and hashes, a threshold of the keys its delegator names, not
// expired; then persisted under its percent-encoded name.
// Every fetch is bounded (ClientLimits, or the signed length when smaller).
// Metadata is persisted only after it passed every check, atomically; a
// rejection leaves the trusted files exactly as they were.
//
// Time: a device without a real-time clock may boot in 1970 or at a stale
// saved time. The client keeps a time floor in the metadata directory: the
// start time of the last successful refresh. "Now" is max(clock, floor), so
// setting the clock back never makes expired metadata valid again, and a
// clock set far ahead cannot raise the floor because a refresh at that time
// fails (all metadata looks expired) and the floor only moves on success.
//
// Offline use (docs/metadata.md, "The offline validity window"): with
// AllowOfflineWindow(), set only when the device cannot reach its tracker,
// an expired timestamp, snapshot, targets or delegated role does not fail the
// refresh; every other check still applies. The earliest such expiry is
// stale_since(), and such a refresh leaves the time floor where it was: the
// caller checks the release's window (offline_window.h) and raises the floor
// to at most the window's start (RaiseTimeFloorTo). Expired metadata that
// verified is persisted like any other, so a caller verifies on a copy of
// the trusted directory first and commits after the window check.
//
// Thread-safety: none; one client per metadata directory at a time.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/remote_repository.h"
#include "metadata/trusted_store.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

struct ClientLimits {
  uint64_t max_root_bytes = 512 << 10;
  uint64_t max_timestamp_bytes = 16 << 10;
  uint64_t max_snapshot_bytes = 2 << 20;
  uint64_t max_targets_bytes = 8 << 20;
  uint32_t max_root_rotations = 32;
  uint32_t max_delegations = 32;  // roles visited in one target search
};

struct DownloadedTarget {
  std::string path;      // where the verified target is: target_dir/PercentEncode(name)
  bool fetched = false;  // false when a file already there matched and no fetch was made
};

class TufClient {
 public:
  // Makes `root_bytes` the trusted root of `metadata_dir` (created if needed),
  // after checking that it parses as root metadata signed by its own
  // threshold. Removes other trusted role files; keeps the time floor. The
  // trusted files are written through `env`, here and by Open's client.
  static Status Initialize(const std::string& metadata_dir, std::string_view root_bytes,
                           Env& env = Env::Default());

  // Loads the trusted root of `metadata_dir`. `remote` and `clock` must outlive the client.
  static Result<std::unique_ptr<TufClient>> Open(const std::string& metadata_dir,
                                                 RemoteRepository& remote, const Clock& clock,
                                                 ClientLimits limits = {},
                                                 Env& env = Env::Default());

  // Runs the workflow above. On error, the trusted files are unchanged except
  // for root versions that verified before the failure (as the spec requires).
  Status Refresh();

  // REQUIRES: a successful Refresh(). The signed entry for `name` from the
  // top-level targets or the delegated role the search finds it in (fetching
  // and persisting delegated metadata as needed); NotFound if no role that
  // may sign it lists it.
  Result<TargetFile> GetTargetInfo(std::string_view name);

  // Fetches `target` into target_dir (created if needed) unless a file there
  // already has its signed length and hashes, verifies length and every
  // supported hash (tuf_hashes.h), and renames it into place atomically.
  // Nothing unverified keeps the final name.
  Result<DownloadedTarget> DownloadTarget(const TargetFile& target, const std::string& target_dir);

  // REQUIRES: a successful Refresh(). The verified metadata of `role`, which
  // `delegator` delegates (loaded and checked as the target search does).
  Result<const TargetsMetadata*> DelegatedTargets(const std::string& role,
                                                  const Delegations& delegator);

  // Sets expiry of every role but root aside (above). Off by default.
  void AllowOfflineWindow() { offline_window_allowed_ = true; }
  // The earliest expiry set aside since the last Refresh(); nullopt: none.
  const std::optional<WallTime>& stale_since() const { return stale_since_; }
  // The start time of the last Refresh(): max(clock, time floor).
  WallTime update_start() const { return update_start_; }
  // Raises the time floor to `to` (never lowers it).
  Status RaiseTimeFloorTo(WallTime to);

  const RootMetadata& root() const { return root_; }
  const std::optional<TimestampMetadata>& timestamp() const { return timestamp_; }
  const std::optional<SnapshotMetadata>& snapshot() const { return snapshot_; }
  const std::optional<TargetsMetadata>& targets() const { return targets_; }

 private:
  TufClient(TrustedStore store, RemoteRepository& remote, const Clock& clock, ClientLimits limits)
      : store_(std::move(store)), remote_(remote), clock_(clock), limits_(limits) {}

  // A delegated role's verified metadata, kept for the client's lifetime.
  struct DelegatedState {
    SignedDocument document;
    TargetsMetadata metadata;
  };

  // CheckNotExpired, except that with the offline window allowed an expired
  // role is remembered in stale_since_ instead of failing.
  Status CheckFresh(std::string_view what, WallTime expires, WallTime now);
  Status UpdateRoot(WallTime now);
  Status AcceptNextRoot(std::string_view bytes);
  Status ForgetRotatedRoles(const RootMetadata& next);
  Status UpdateTimestamp(WallTime now);
  Status CheckTimestampRollback(const TimestampMetadata& fresh, bool& keep_trusted);
  Status UpdateSnapshot(WallTime now);
  Status UpdateTargets(WallTime now);
  // Brings `trusted` (and its bytes) to the file `info` names, which the role
  // `named_by` lists: kept when the trusted copy is that file, else fetched,
  // verified, parsed, checked for its version, rollback and expiry, stored.
  template <typename Metadata>
  Status UpdateRole(RoleType role, const MetaFileInfo& info, std::string_view named_by,
                    uint64_t max_bytes, Result<Metadata> (*parse)(const Json&),
                    std::optional<Metadata>& trusted, std::string& trusted_bytes, WallTime now);
  // A version lower than the trusted one's (and, for the snapshot, a file
  // it lists dropped or at a lower version) is a rollback.
  Status CheckRollback(const SnapshotMetadata& fresh) const;
  Status CheckRollback(const TargetsMetadata& fresh) const;
  Result<std::string> FetchVerifiedFile(std::string_view role, const MetaFileInfo& info,
                                        uint64_t limit);
  Status LoadTrustedRoles();
  // The trusted copy of `role` in the store into `trusted` (its bytes into
  // `trusted_bytes` when not null), when it verifies and parses.
  template <typename Metadata>
  Status LoadTrusted(RoleType role, uint64_t max_bytes, Result<Metadata> (*parse)(const Json&),
                     std::optional<Metadata>& trusted, std::string* trusted_bytes);
  // Parses and verifies `bytes` as `role` against the current trusted root.
  Result<SignedDocument> VerifyRoleDocument(RoleType role, std::string_view bytes,
                                            uint64_t max_bytes) const;
  std::string MetadataName(std::string_view role, uint64_t version) const;
  Result<DelegatedState> LoadDelegated(const std::string& role, const RoleKeys& keys,
                                       const Delegations& delegator, const MetaFileInfo& info);
  Result<DelegatedState> VerifyDelegated(const std::string& role, std::string_view bytes,
                                         const RoleKeys& keys, const Delegations& delegator) const;

  TrustedStore store_;
  RemoteRepository& remote_;
  const Clock& clock_;
  ClientLimits limits_;
  RootMetadata root_;
  std::optional<TimestampMetadata> timestamp_;
  std::string trusted_snapshot_bytes_;
  std::optional<SnapshotMetadata> snapshot_;
  std::string trusted_targets_bytes_;
  std::optional<TargetsMetadata> targets_;
  std::map<std::string, DelegatedState> delegated_;  // by role name
  WallTime update_start_;                            // "now" of the last refresh
  bool refreshed_ = false;
  bool offline_window_allowed_ = false;
  std::optional<WallTime> stale_since_;
};

// Checks `expires` against `now`: metadata whose expiry is at or before the
// update start time is expired (TUF 5.3.10 and its siblings).
Status CheckNotExpired(std::string_view what, WallTime expires, WallTime now);

}  // namespace flotilla::metadata
