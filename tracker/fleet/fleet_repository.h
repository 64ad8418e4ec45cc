// The fleet repository (docs/fleet.md, "Signed fleet metadata"): what each
// device should run, signed under keys separate from the image repository's.
//
//   <root>/fleet/root.json                  the fleet root, signed by the
//                                           offline fleet-root key, shared by
//                                           every device's repository
//   <root>/fleet/devices/<device-id>/       one TUF repository per device
//       metadata/ targets/                  (metadata/repository.h), whose
//                                           targets list one target,
//                                           device.json: the fleet document
//   <root>/keys/fleet-{targets,snapshot,timestamp}.key   online, 0600
//
// The fleet root reaches devices as the target fleet/root.json of the image
// repository. A device's document names, per app, a release target of the
// image repository with that target's exact length and hashes, so a node can
// check that the fleet chose among releases the image repository signed.
// Every writer holds the repository's PublishLock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/repository.h"
#include "metadata/tuf_keys.h"
#include "tracker/fleet/desired.h"
#include "tracker/publish/metadata_refresher.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

inline constexpr char kFleetRootTarget[] = "fleet/root.json";
inline constexpr char kFleetDocumentTarget[] = "device.json";
// The format of the fleet document this tracker writes (`format`, docs/fleet.md).
inline constexpr uint64_t kFleetDocumentFormat = 1;

std::string FleetDir(const RepositoryLayout& repo);
std::string FleetRootPath(const RepositoryLayout& repo);
// <root>/keys/fleet-<role>.key
std::string FleetKeyPath(const RepositoryLayout& repo, metadata::RoleType role);
// InvalidArgument unless `device_id` is a label (1-64 of [A-Za-z0-9._-], not
// starting with '.'): it names a directory.
Result<std::string> DeviceRepositoryDir(const RepositoryLayout& repo, const std::string& device_id);

// Expiry of each device's targets, snapshot and timestamp.
inline constexpr Duration kFleetMetadataExpiry = std::chrono::hours(24 * 7);
metadata::RepositoryOptions FleetRepositoryOptions();

struct FleetInitOptions {
  std::string repository;
  // An existing Ed25519 key file that signs the fleet root (not copied).
  std::string root_key_file;
  // Else: the fleet root key is made here as fleet-root.key (+ .pub), mode
  // 0600 in a 0700 directory, to be kept offline.
  std::string offline_keys_dir;
};

struct FleetInitOutcome {
  uint64_t root_version = 0;
  // The image repository's targets key is offline: the staged top-level
  // targets version listing fleet/root.json, to sign and accept.
  std::string pending_file;
  // Else the image repository's targets version that lists fleet/root.json.
  uint64_t targets_version = 0;
};

// Makes the online fleet keys and the fleet root v1, then offers the root to
// devices: adds the target fleet/root.json to the image repository when its
// targets key is online, else stages that targets version in pending/.
// AlreadyExists when the fleet root exists and the image repository offers it.
Result<FleetInitOutcome> InitFleet(const FleetInitOptions& options, const Clock& clock);

// Fleet root N+1 (docs/fleet.md, "Rotating the fleet root"): signed by the
// current root key and by the new one, naming new online keys for the roles
// in `rotate`. Every fleet root version is kept as fleet/<V>.root.json beside
// fleet/root.json (the current one), so a device repository can be walked to
// the newest from any version a node trusts.
struct FleetRotateOptions {
  std::string repository;
  // A key of the current fleet root's root role (Ed25519 key file).
  std::string root_key_file;
  // The new fleet root key (Ed25519 key file, e.g. from keygen); "" keeps
  // the current one.
  std::string new_root_key_file;
  // Online roles (targets, snapshot, timestamp) given new keys, made in
  // keys/ (the old keys sign nothing more).
  std::vector<metadata::RoleType> rotate;
};

struct FleetRotateOutcome {
  uint64_t root_version = 0;
  // As FleetInitOutcome: the image repository's targets version offering
  // the new root, or the staged one to sign and accept.
  std::string pending_file;
  uint64_t targets_version = 0;
  size_t devices = 0;  // device repositories moved to the new root
};

// Makes fleet root N+1, commits it (fleet/<N+1>.root.json, then
// fleet/root.json), puts the new online keys in place, moves every device
// repository to it (FleetSigner::FollowRoot), then offers it to devices as
// the image repository's target fleet/root.json. Holds the publish lock.
// Cut short after the commit, the device repositories not yet moved still
// verify under the old root; the next `fleet publish` moves them (and
// `fleet init` run again offers the root).
Result<FleetRotateOutcome> RotateFleetRoot(const FleetRotateOptions& options, const Clock& clock);

// The fleet document of `device` (canonical JSON): each app with a desired
// release, with the image repository's target for it. FailedPrecondition
// when the image repository does not list a desired release. `windows` (the
// device's maintenance windows) go in as `windows`, absent when there are none.
Result<std::string> FleetDocument(const FleetDevice& device, const std::vector<DesiredApp>& desired,
                                  const metadata::TargetsMetadata& image_targets,
                                  const std::vector<MaintenanceWindow>& windows = {});

// Signs fleet documents into the devices' repositories with the online
// fleet keys. Versions only go up; a document equal to the published one is
// not re-signed.
//
// Each device's published versions and document hash are kept beside its
// metadata in metadata/fleet-index, written after each timestamp and
// naming the sha256 of the timestamp.json and of the fleet root it goes with.
// A publish reads the index and timestamp.json only, and signs the next
// targets, snapshot and timestamp from them. An index that is missing,
// unreadable or names another timestamp or root (a publish cut short, a
// repository written by other means) is not trusted: the device's whole
// repository is opened and verified (metadata::Repository) as the way to
// its versions, and the index is written again.
//
// The index also holds the earliest expiry of the three, so a refresher
// finds the repositories due for re-signing from the indexes alone.
//
// After each new version the superseded files are pruned: N.targets.json
// and N.snapshot.json below the previous version, and documents neither the
// current nor the previous targets lists (a client that read the previous
// timestamp can still fetch what it names). Root files are never removed.
//
// The fleet root is verified once, when the signer opens.
class DirectoryWriter;

class FleetSigner {
 public:
  enum class Mode {
    kIndexed,         // as above
    kReadRepository,  // every publish opens the device's whole repository;
                      // no index is read or written (bench/fleet-sign's baseline)
  };
  static Result<std::unique_ptr<FleetSigner>> Open(const RepositoryLayout& repo, const Clock& clock,
                                                   Mode mode = Mode::kIndexed);

  // Publishes `document` as device `device_id`'s device.json (creating its
  // repository from the fleet root first); true when it was re-signed.
  Result<bool> Publish(const std::string& device_id, const std::string& document) const;

  // Re-signs device `device_id`'s repository when its targets, snapshot or
  // timestamp expires within half of kFleetMetadataExpiry of `now` (the
  // same document under new versions; only the roles that are due when the
  // repository is opened whole). nullopt when the device has no published
  // repository (it is not made here).
  struct Refreshed {
    bool resigned = false;
    WallTime expires;  // the earliest expiry of the three after the call
  };
  Result<std::optional<Refreshed>> Refresh(const std::string& device_id, WallTime now) const;

  // Moves device `device_id`'s repository to the current fleet root: writes
  // each root version it lacks (N+1.root.json ..., then root.json), then,
  // when its targets, snapshot or timestamp are not signed by the keys the
  // root names, new versions of the three signed by the online keys (the
  // same document). True when anything was written; false when it was on
  // the root already or has no published repository.
  Result<bool> FollowRoot(const std::string& device_id) const;

  // Re-signs device `device_id`'s targets, snapshot and timestamp (the same
  // document) at versions `step` above the current ones, on the current
  // fleet root, and removes the versions it skipped past: a restored
  // repository's versions then exceed any a device trusted from the tracker
  // that went on signing after the backup. False when the device has no
  // published repository or `step` is 0.
  Result<bool> Advance(const std::string& device_id, uint64_t step) const;

  // What a device's index holds.
  struct DeviceIndex {
    uint64_t targets = 0;
    uint64_t snapshot = 0;
    uint64_t timestamp = 0;
    std::string document_sha256;  // of the listed device.json
    // Of the device.json the previous targets version lists: "" none (or
    // not known when the index was written); nullopt when the line has no
    // such field (an older tracker's), so pruning lists the directories.
    std::optional<std::string> previous_document_sha256;
    std::string timestamp_sha256;  // of the timestamp.json these versions go with
    std::string root_sha256;       // of the root.json the device repository holds
    int64_t expires = 0;           // unix seconds: the earliest expiry of the three
  };

 private:
  FleetSigner(RepositoryLayout repo, const Clock& clock, Mode mode)
      : repo_(std::move(repo)), clock_(clock), mode_(mode) {}
  // Opens (or creates) the device's repository on the current fleet root
  // (FollowRoot's work); `moved` says whether that wrote anything.
  Result<std::unique_ptr<metadata::Repository>> OpenDevice(const std::string& dir,
                                                           bool* moved = nullptr) const;
  // Brings the opened repository to the current fleet root; true when it wrote.
  Result<bool> MoveToRoot(metadata::Repository& opened) const;
  // Opens the device's whole repository, publishes `document` through it and
  // (indexed) writes its index.
  Result<bool> PublishThroughRepository(const std::string& dir, const std::string& document) const;
  // The device's index when it matches its timestamp.json and the fleet root.
  std::optional<DeviceIndex> ReadIndex(const DirectoryWriter& metadata_dir) const {
    return ReadIndex(metadata_dir, root_sha256_);
  }
  // The same for the root whose sha256 is `root_sha256`.
  std::optional<DeviceIndex> ReadIndex(const DirectoryWriter& metadata_dir,
                                       const std::string& root_sha256) const;
  // Signs and writes the next targets (listing `document`), snapshot and
  // timestamp after `index`'s versions, then the new index; prunes. Returns
  // the new index.
  Result<DeviceIndex> PublishNext(const std::string& dir, const DirectoryWriter& metadata_dir,
                                  const DeviceIndex& index, const std::string& document,
                                  const std::string& document_sha256) const;
  // Removes what neither `after` nor the versions before it name: by name
  // (one version of each role before the previous, and the document
  // `before` called previous), or by listing the directories when the
  // index did not know its previous document.
  Status PruneSuperseded(const std::string& dir, const DirectoryWriter& metadata_dir,
                         const DirectoryWriter& targets_dir, const DeviceIndex& before,
                         const DeviceIndex& after) const;
  // Re-signs the roles of `dir`'s repository that are due, through
  // metadata::Repository (no trusted index), and (indexed) writes its index.
  Result<std::optional<Refreshed>> RefreshThroughRepository(const std::string& dir,
                                                            WallTime now) const;
  // (Indexed) writes the index of the opened repository, listing `document_sha256`.
  Result<DeviceIndex> WriteIndexOf(const metadata::Repository& opened,
                                   const std::string& document_sha256) const;

  RepositoryLayout repo_;
  const Clock& clock_;
  Mode mode_;
  std::string root_bytes_;
  std::string root_sha256_;
  metadata::RootMetadata root_;
  // Of fleet/<N-1>.root.json, the root the current one replaced ("" none):
  // a repository indexed on it is moved through its index.
  std::string previous_root_sha256_;
  // Whether the fleet root lets one online key per role sign consistent
  // snapshots, which the index's path writes; else every publish goes
  // through the repository.
  bool indexable_ = false;
  metadata::KeyRing online_;
  std::vector<metadata::TufSigner> signers_;  // targets, snapshot, timestamp
};

// metadata/fleet-index of a device repository: one line,
//   fleet-index-3 TARGETS SNAPSHOT TIMESTAMP DOCUMENT_SHA256 PREVIOUS_DOCUMENT
//                 TIMESTAMP_SHA256 ROOT_SHA256 EXPIRES
// (PREVIOUS_DOCUMENT a sha256 or "-" for none; EXPIRES in unix seconds).
// A fleet-index-2 line (an older tracker's) is read as PREVIOUS_DOCUMENT
// "-". A fleet-index-1 line (no EXPIRES) is refused like any other: the
// repository is read and the index written again.
inline constexpr std::string_view kDeviceIndexFormat = "fleet-index-3";
inline constexpr std::string_view kDeviceIndexFormatWithoutPrevious = "fleet-index-2";
std::string FormatDeviceIndex(const FleetSigner::DeviceIndex& index);
// Corruption unless `text` is exactly that line.
Result<FleetSigner::DeviceIndex> ParseDeviceIndex(std::string_view text);

struct FleetPublishOutcome {
  size_t devices = 0;   // documents computed
  size_t resigned = 0;  // of which changed and re-signed
};

// FleetSigner::Advance for every device repository of `repository` (one
// no serve runs on: `restore` calls it on the directory it builds); the
// number of devices advanced, 0 when `fleet init` never ran.
Result<size_t> AdvanceFleetVersions(const std::string& repository, uint64_t step,
                                    const Clock& clock);

// Computes every device's document from `state` (or only that of the device
// named `device_name`) against the image repository and publishes it;
// `rollouts` (may be null: no limit) is the rollout seam of the desired rule.
Result<FleetPublishOutcome> PublishFleet(const std::string& repository, const FleetState& state,
                                         const std::optional<std::string>& device_name,
                                         const Clock& clock,
                                         const RolloutLimit* rollouts = nullptr);
// The same for the devices `which` selects (the rollout duty's re-signing).
Result<FleetPublishOutcome> PublishFleetDevices(
    const std::string& repository, const FleetState& state,
    const std::function<bool(const FleetDevice&)>& which, const Clock& clock,
    const RolloutLimit* rollouts);

// Removes a device repository's superseded files: N.targets.json and
// N.snapshot.json below `targets_version` - 1 and `snapshot_version` - 1, and
// documents (targets/<sha256>.device.json) not in `keep_documents` (nullopt:
// every document is kept). Never a root file. Removals are not fsynced: one
// a power cut brings back is removed again by the next prune.
Status PruneDeviceRepository(const std::string& dir, uint64_t targets_version,
                             uint64_t snapshot_version,
                             const std::optional<std::vector<std::string>>& keep_documents);

// Re-signs fleet metadata before it expires, as a duty of the replica that
// holds the signing lease (`serve`: SigningDuty's holder duties). Each round
// reads the next indexes of a scan of fleet/devices (at most kScanPerRound,
// a full scan each hour: repositories only ever expire later, so a stale
// schedule only costs a look), then re-signs at most `batch` repositories
// that are due (half of kFleetMetadataExpiry left), under the publish lock
// (busy: again in 30 s). An error stops the round (the device is tried
// again ten minutes later, the others at the next round).
class FleetRefresher final : public MetadataRefresher {
 public:
  static constexpr size_t kDefaultBatch = 100;
  static constexpr size_t kScanPerRound = 2000;
  FleetRefresher(std::string repository, const Clock& clock, size_t batch = kDefaultBatch)
      : repo_{std::move(repository)}, clock_(clock), batch_(batch) {}

  Result<Duration> Refresh(WallTime now) override;

  // Repositories re-signed by the last round (for tests and logs).
  size_t last_resigned() const { return last_resigned_; }

 private:
  void Schedule(const std::string& device_id, WallTime due);
  // Reads up to kScanPerRound more entries of the scan.
  Status ScanSome(WallTime now);

  RepositoryLayout repo_;
  const Clock& clock_;
  const size_t batch_;
  std::set<std::pair<WallTime, std::string>> queue_;  // (due, device id)
  std::map<std::string, WallTime> due_;               // device id -> its entry in queue_
  std::optional<std::filesystem::directory_iterator> scan_;
  WallTime next_scan_{};
  size_t last_resigned_ = 0;
};

}  // namespace flotilla::tracker
