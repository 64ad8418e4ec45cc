// A TUF repository assembled from parts, for tests and for the cross-check
// with other TUF implementations (library flotilla_metadata_testing, built
// with the tests only). Unlike metadata::Repository (the tracker's writer,
// Ed25519 and top-level roles only), it takes any key scheme per role,
// delegations (paths, hash prefixes, succinct hash bins, any role names),
// several hash algorithms per target, and lets a test tamper with what it
// signs.
//
// Layout, as a static server serves it:
//   <dir>/metadata/<percent-encoded file name>   "1.a%2Fb.json" for role "a/b"
//                                               (V.ROLE.json and ROLE.json)
//   <dir>/targets/<target dirs>/<hash>.<base>    one copy per listed hash
//                                               (consistent snapshots), else
//   <dir>/targets/<target path>
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

class TestRepository {
 public:
  // Every role starts with one fresh Ed25519 key and threshold 1.
  TestRepository(std::string dir, WallTime now);

  bool consistent_snapshot = true;
  Duration expiry = std::chrono::hours(24 * 30);
  // Called on every document before it is written (e.g. to add a bad signature).
  std::function<void(const std::string& role, SignedDocument&)> tamper;

  // Replaces a top-level role's keys (takes effect with the next PublishRoot()).
  void SetKeys(RoleType role, std::vector<TufSigner> signers, uint32_t threshold = 1);
  const std::vector<TufSigner>& Signers(const std::string& role) const;
  // Writes root version+1 (version 1 first), signed by the previous and the new root keys.
  Status PublishRoot();

  // `algorithms` other than sha256/sha512 get a made-up digest (clients ignore them).
  Status AddTarget(const std::string& role, const std::string& name, const std::string& content,
                   const std::vector<std::string>& algorithms = {"sha256"});
  // Appends a delegation from `parent` ("targets" or a delegated role).
  void Delegate(const std::string& parent, DelegatedRole child, std::vector<TufSigner> signers);
  // Succinct hash bins under `parent`, every bin a role of its own.
  void DelegateSuccinct(const std::string& parent, const SuccinctRoles& bins,
                        std::vector<TufSigner> signers);

  // Publishes each targets role changed since the last Publish (version+1),
  // then snapshot and timestamp (version+1). The first call also publishes root v1.
  Status Publish();

  TargetsMetadata& Role(const std::string& role);
  // Marks a role changed, so that the next Publish() re-signs it.
  void Touch(const std::string& role) { dirty_.insert(role); }
  SnapshotMetadata& snapshot() { return snapshot_; }
  TimestampMetadata& timestamp() { return timestamp_; }
  const RootMetadata& root() const { return root_; }
  std::string metadata_dir() const { return dir_ + "/metadata"; }
  std::string targets_dir() const { return dir_ + "/targets"; }

 private:
  Status WriteMetadata(const std::string& role, uint64_t version, Json signed_json);
  Status WriteTargetFiles(const std::string& name, const std::string& content,
                          const HashMap& hashes);
  RoleKeys& DelegationKeysFor(Delegations& delegations, std::vector<TufSigner>& signers,
                              std::vector<TufSigner> fresh, uint32_t threshold);
  Status PublishSnapshotAndTimestamp();

  std::string dir_;
  WallTime now_;
  RootMetadata root_;
  std::vector<TufSigner> previous_root_signers_;
  std::map<std::string, std::vector<TufSigner>> signers_;  // by role name
  std::map<std::string, TargetsMetadata> roles_;           // "targets" and delegated roles
  std::map<std::string, std::string> role_bytes_;          // last published document of each
  std::set<std::string> dirty_;
  SnapshotMetadata snapshot_;
  TimestampMetadata timestamp_;
  bool root_published_ = false;
};

}  // namespace flotilla::metadata
