// The repository side of flotilla's TUF metadata, as the tracker uses it.
//
// A repository is a directory:
//   <dir>/metadata/  1.root.json ... N.root.json, root.json (= the latest),
//                    N.targets.json, N.snapshot.json (consistent snapshots)
//                    plus targets.json and snapshot.json copies, timestamp.json
//   <dir>/targets/   <path>/<sha256>.<name> (consistent) or <path>/<name>
// It can be served as-is over HTTP (metadata URL = .../metadata, target base
// URL = .../targets) or copied to a USB stick.
//
// Private keys are never stored here: every call that signs takes a KeyRing
// from the caller. Each publish writes target files first, then targets, then
// snapshot, and timestamp.json last, each atomically, so a crash at any point
// leaves the previous timestamp pointing at complete, previously published
// files (the commit point is the timestamp rename).
//
// Offline root key: StageRoot() returns the next root unsigned; write it with
// SerializeDocument, sign it on the offline machine with SignMetadataFile(),
// bring the file back and PublishRoot() it. Offline targets keys (the
// top-level targets key, the keys of roles it delegates; docs/signing.md):
// StageTargets() returns a role's next version unsigned, SignMetadataFile()
// signs it where the key lives, AcceptTargets() checks it as a client would
// and publishes it with a new snapshot and timestamp (online keys only).
// Delegated roles' files are metadata/V.<percent-encoded role>.json and the
// copy <percent-encoded role>.json, listed in the snapshot as "<role>.json".
//
// Thread-safety: none; one writer per repository directory.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ed25519.h"
#include "core/status.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

// Private keys handed to a signing call, by key id.
class KeyRing {
 public:
  void Add(const Ed25519PrivateKey& key);
  // Adds every key of `other`.
  void Merge(const KeyRing& other);
  const Ed25519PrivateKey* Find(const std::string& keyid) const;
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, Ed25519PrivateKey> keys_;
};

// Loads a private key file for `role`: the key's public half must be one of
// the role's keys in `root`, else PermissionDenied (a swapped key file must
// not sign, and must not be silently ignored either).
Result<Ed25519PrivateKey> LoadRoleKey(const std::string& path, const RootMetadata& root,
                                      RoleType role);

// Offline signing: reads the document in `in_path`, adds the signature of the
// key in `key_file` (TufSigner::LoadFile: Ed25519 seed or PEM; an Ed25519
// key's public half must equal `expected_public_key` when given), and writes
// `out_path` atomically. Needs nothing but the two files.
Status SignMetadataFile(const std::string& in_path, const std::string& key_file,
                        const std::optional<Ed25519PublicKey>& expected_public_key,
                        const std::string& out_path);

struct RoleKeyConfig {
  std::vector<Ed25519PublicKey> keys;
  uint32_t threshold = 1;
};

struct RepositoryOptions {
  Duration root_expiry = std::chrono::hours(24 * 365);
  Duration targets_expiry = std::chrono::hours(24 * 90);
  Duration snapshot_expiry = std::chrono::hours(24 * 7);
  Duration timestamp_expiry = std::chrono::hours(24);
  bool consistent_snapshot = true;
  // With consistent snapshots, whether targets and snapshot are also written
  // under their unversioned names (targets.json, snapshot.json) beside
  // N.targets.json and N.snapshot.json. Clients that follow consistent
  // snapshots never ask for them; without them the repository's current
  // versions are those its timestamp names, and Open reads those.
  bool unversioned_copies = true;
  // The highest version of each role already published by any signer of this
  // repository (a database that several signers share records them): a role's
  // next version is above both this and its current document, so a signer whose
  // files are behind never signs a version that was already used. Empty: the
  // next version follows the current document.
  std::map<RoleType, uint64_t> published_versions;
  // Called with each targets, delegated targets, snapshot and timestamp
  // document (role name, version, bytes) before any of its files is written;
  // an error stops the operation there, with nothing of that document
  // written. A shared database records the versions this way before the
  // timestamp makes them current. Null: none.
  std::function<Status(const std::string& role, uint64_t version, const std::string& bytes)>
      before_write;
};

struct TargetInput {
  std::string name;     // TUF target path, validated
  std::string content;  // the target's bytes
  Json custom;          // null for none
};

class Repository {
 public:
  // Creates a repository in the new or empty directory `dir`: root v1 with
  // `roles` (all four required), signed by `signers`, then empty targets,
  // snapshot and timestamp v1.
  static Result<std::unique_ptr<Repository>> Create(const std::string& dir,
                                                    const std::map<RoleType, RoleKeyConfig>& roles,
                                                    const KeyRing& signers, const Clock& clock,
                                                    RepositoryOptions options = {});
  // Creates a repository in the new or empty directory `dir` whose root is
  // `signed_root`, signed elsewhere by a threshold of its own root keys (so the
  // root key need not be here), then empty targets, snapshot and timestamp v1
  // signed by `signers`. Many repositories can share one root this way.
  static Result<std::unique_ptr<Repository>> CreateWithRoot(const std::string& dir,
                                                            std::string_view signed_root,
                                                            const KeyRing& signers,
                                                            const Clock& clock,
                                                            RepositoryOptions options = {});
  // Opens an existing repository and checks its current metadata.
  static Result<std::unique_ptr<Repository>> Open(const std::string& dir, const Clock& clock,
                                                  RepositoryOptions options = {});

  // The next root (version + 1, fresh expiry) with `changes` applied, unsigned.
  // `offline_window_max_days`, when given, sets root's cap on offline validity
  // windows (docs/metadata.md; 0 removes it); otherwise the cap is kept.
  Result<SignedDocument> StageRoot(
      const std::map<RoleType, RoleKeyConfig>& changes,
      std::optional<uint32_t> offline_window_max_days = std::nullopt) const;
  // Publishes a signed next root after checking it as a client would: version
  // N+1, a threshold of the current root keys and of its own.
  Status PublishRoot(std::string_view signed_root);
  // StageRoot + sign with `signers` + PublishRoot, then re-signs targets,
  // snapshot and timestamp with the new keys.
  Status RotateKeys(const std::map<RoleType, RoleKeyConfig>& changes, const KeyRing& signers,
                    std::optional<uint32_t> offline_window_max_days = std::nullopt);

  // The next version of targets role `role` ("targets", or a role the
  // top-level targets delegates) holding `next`'s targets and delegations,
  // expiring after `expiry`, unsigned; the files of `inputs` are written to
  // targets/ first (and listed). Nothing is published.
  Result<SignedDocument> StageTargets(const std::string& role, TargetsMetadata next,
                                      const std::vector<TargetInput>& inputs, Duration expiry);
  // Publishes a signed version of `role` after checking it as a client would:
  // targets type, a threshold of the keys that delegate it (root's targets
  // keys, or the top-level delegation's), version = current + 1, not expired,
  // every target covered by the delegation's paths. Then snapshot and
  // timestamp, signed by `online`. Nothing is written when a check fails.
  Status AcceptTargets(const std::string& role, std::string_view signed_document,
                       const KeyRing& online);

  // Adds (or replaces) targets and publishes targets, snapshot and timestamp.
  Status AddTargets(const std::vector<TargetInput>& targets, const KeyRing& signers);
  // New targets version with unchanged content (e.g. after a targets key rotation or before
  // expiry).
  Status ResignTargets(const KeyRing& signers);
  // New snapshot and timestamp versions.
  Status ResignSnapshot(const KeyRing& signers);
  // New timestamp version with a fresh expiry: run it well before the timestamp expires.
  Status ResignTimestamp(const KeyRing& signers);

  const RootMetadata& root() const { return root_; }
  const TargetsMetadata& targets() const { return targets_; }
  const SnapshotMetadata& snapshot() const { return snapshot_; }
  const TimestampMetadata& timestamp() const { return timestamp_; }
  // A delegated role's published metadata; null when none was accepted.
  const TargetsMetadata* DelegatedTargets(const std::string& role) const;
  // The top-level targets' entries and those of every delegated role.
  TargetsMetadata AllTargets() const;
  std::string metadata_dir() const { return dir_ + "/metadata"; }
  std::string targets_dir() const { return dir_ + "/targets"; }

 private:
  Repository(std::string dir, const Clock& clock, RepositoryOptions options)
      : dir_(std::move(dir)), clock_(clock), options_(options) {}

  Status WriteVersioned(RoleType role, uint64_t version, const std::string& bytes);
  // options_.before_write, when set.
  Status BeforeWrite(const std::string& role, uint64_t version, const std::string& bytes) const;
  // Signs `signed_json` with the role's available keys (at least its
  // threshold), writes it as `version` and returns the bytes written.
  Result<std::string> SignAndWrite(RoleType role, uint64_t version, Json signed_json,
                                   const KeyRing& signers);
  // The version after `current` and after options_.published_versions's.
  uint64_t NextVersion(RoleType role, uint64_t current) const;
  // Signs and writes `next` as the version after `current`, expiring after
  // `expiry`, then makes it current; the bytes written.
  template <typename Metadata>
  Result<std::string> SignNext(RoleType role, Metadata& current, Metadata next, Duration expiry,
                               const KeyRing& signers);
  Status PublishTargets(TargetsMetadata next, const KeyRing& signers);
  Status PublishSnapshot(const KeyRing& signers);
  Status PublishTimestamp(const KeyRing& signers);
  Status WriteTargetFile(const TargetInput& input, const TargetFile& entry);
  // Validates `inputs`, writes their files and lists them in `next`.
  Status AddTargetEntries(const std::vector<TargetInput>& inputs, TargetsMetadata& next);
  Status VerifyDelegatedRole(const std::string& role, const SignedDocument& doc,
                             const TargetsMetadata& next) const;
  Status WriteDelegated(const std::string& role, uint64_t version, const std::string& bytes);
  Status LoadDelegatedRoles();
  Status LoadCurrent();
  WallTime ExpiryAfter(Duration d) const;

  std::string dir_;
  const Clock& clock_;
  RepositoryOptions options_;
  RootMetadata root_;
  TargetsMetadata targets_;
  SnapshotMetadata snapshot_;
  TimestampMetadata timestamp_;
  std::string targets_bytes_;   // the published targets document, as written
  std::string snapshot_bytes_;  // the published snapshot document, as written
  struct RoleFile {
    TargetsMetadata metadata;
    std::string bytes;  // the published document, as written
  };
  std::map<std::string, RoleFile> delegated_;  // by role name
};

}  // namespace flotilla::metadata
