// The fleet repository (docs/fleet.md, "Signed fleet metadata"): what each
// device should run, signed under keys separate from the image repository's.
//
//   <root>/fleet/root.json                  the fleet root, signed by the
//                                           offline fleet-root key, shared by
//                                           every device's repository
//   <root>/fleet/<V>.root.json              every fleet root version
//   <root>/fleet/devices/<device-id>/state  one TUF repository per device, as
//                                           one file (device_state.h), whose
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

#include "appspec/app_spec.h"
#include "core/clock.h"
#include "core/status.h"
#include "metadata/remote_repository.h"
#include "metadata/repository.h"
#include "metadata/tuf_keys.h"
#include "tracker/fleet/desired.h"
#include "tracker/publish/metadata_refresher.h"
#include "tracker/storage/device_state.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

inline constexpr char kFleetRootTarget[] = "fleet/root.json";
inline constexpr char kFleetDocumentTarget[] = "device.json";
// The format of the fleet document this tracker writes (`format`, docs/fleet.md).
inline constexpr uint64_t kFleetDocumentFormat = 1;

std::string FleetDir(const RepositoryLayout& repo);
std::string FleetRootPath(const RepositoryLayout& repo);
// fleet/<V>.root.json: each fleet root version (the signer writes the
// current one's when it opens), served as devices' N.root.json and root.json.
std::string FleetRootVersionPath(const RepositoryLayout& repo, uint64_t version);
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
// device's maintenance windows) go in as `windows`, absent when there are none;
// `config` (each app's configuration values, checked: DeviceConfig) as each
// app's `config`, absent for an app without values; `secrets` (each app's
// sealed boxes by name, checked: DeviceSecrets) as each app's `secrets`.
Result<std::string> FleetDocument(const FleetDevice& device, const std::vector<DesiredApp>& desired,
                                  const metadata::TargetsMetadata& image_targets,
                                  const std::vector<MaintenanceWindow>& windows = {},
                                  const std::map<std::string, appspec::ConfigValues>& config = {},
                                  const std::map<std::string, appspec::ConfigValues>& secrets = {});

// Signs fleet documents into the devices' repositories with the online
// fleet keys. Versions only go up; a document equal to the published one is
// not re-signed.
//
// Each device's repository is one state file (device_state.h): a publish
// reads it, signs the next targets, snapshot and timestamp, and replaces it
// with the new version and the one before it (what a device that read the
// previous timestamp still fetches). A repository an older tracker laid out
// as metadata/ and targets/ directories is opened and verified whole the
// first time, and replaced by its state file.
//
// The fleet root is verified once, when the signer opens; it must name one
// online key per role (threshold 1) and consistent snapshots.
class FleetSigner {
 public:
  static Result<std::unique_ptr<FleetSigner>> Open(const RepositoryLayout& repo,
                                                   const Clock& clock);

  // Publishes `document` as device `device_id`'s device.json; true when it
  // was re-signed.
  Result<bool> Publish(const std::string& device_id, const std::string& document) const;

  // Re-signs device `device_id`'s targets, snapshot and timestamp (the same
  // document, new versions) when they expire within half of
  // kFleetMetadataExpiry of `now`, or were signed under an older fleet root.
  // nullopt when the device has no published repository (it is not made here).
  struct Refreshed {
    bool resigned = false;
    WallTime expires;  // when the three expire after the call
  };
  Result<std::optional<Refreshed>> Refresh(const std::string& device_id, WallTime now) const;

  // Moves device `device_id`'s repository to the current fleet root: the
  // three again, signed by the keys the root names (the same document), so
  // a node walks to the root and then verifies them. True when it wrote;
  // false when it was on the root already or has no published repository.
  Result<bool> FollowRoot(const std::string& device_id) const;

  // Re-signs device `device_id`'s targets, snapshot and timestamp (the same
  // document) at versions `step` above the current ones, on the current
  // fleet root, keeping nothing of the versions it skipped past: a restored
  // repository's versions then exceed any a device trusted from the tracker
  // that went on signing after the backup. False when the device has no
  // published repository or `step` is 0.
  Result<bool> Advance(const std::string& device_id, uint64_t step) const;

 private:
  FleetSigner(RepositoryLayout repo, const Clock& clock) : repo_(std::move(repo)), clock_(clock) {}
  // A device repository as read: nullopt when never published;
  // `directories` when an older tracker laid it out as directories.
  struct Stored {
    std::optional<DeviceState> state;
    // An older tracker's metadata/ and targets/ are there (Store removes them).
    bool directories = false;
    // With no state: the versions of such a repository that lists no
    // document yet, which the next ones follow (0 for a new device).
    uint64_t targets = 0, snapshot = 0, timestamp = 0;
  };
  // The device repository in `dir`: its state file, else (an older
  // tracker's directories) read and verified.
  Result<Stored> Load(const std::string& dir) const;
  Result<Stored> LoadDirectories(const std::string& dir) const;
  // Copies each root version up to `up_to` that the older tracker's
  // metadata/ in `dir` holds and fleet/ lacks into fleet/ (durably).
  Status KeepRootsOf(const std::string& dir, uint64_t up_to) const;
  // Signs the targets (listing `document`), snapshot and timestamp `step`
  // versions after `current`'s (from 1 when none) and stores them.
  Result<DeviceState> SignNext(const std::string& dir, const Stored& current,
                               const std::string& document, const std::string& document_sha256,
                               uint64_t step) const;
  // Replaces the state file (durably) of the repository read as `before`:
  // makes its directory when new, removes an older tracker's directories.
  Status Store(const std::string& dir, const DeviceState& state, const Stored& before) const;
  static std::string CurrentDocument(const DeviceState& state);
  // Whether the current targets, snapshot and timestamp carry signatures of
  // the online keys the fleet root names.
  bool SignedByCurrentKeys(const DeviceState& state) const;
  bool Stale(const DeviceState& state) const;

  RepositoryLayout repo_;
  const Clock& clock_;
  metadata::RootMetadata root_;
  uint64_t root_version_ = 0;
  std::vector<metadata::TufSigner> signers_;  // targets, snapshot, timestamp
};

// A device's fleet repository read from the repository directory, as a
// node reads it through serve's fleet route (ReadDeviceRepositoryFile): for
// tests and tools that check what a device gets.
class DeviceRepositoryRemote final : public metadata::RemoteRepository {
 public:
  DeviceRepositoryRemote(RepositoryLayout repo, std::string device_id)
      : repo_(std::move(repo)), device_id_(std::move(device_id)) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override;

 private:
  RepositoryLayout repo_;
  std::string device_id_;
};

struct FleetDeviceFailure {
  std::string device;  // its name
  Status status;
};

struct FleetPublishOutcome {
  size_t devices = 0;   // documents computed
  size_t resigned = 0;  // of which changed and re-signed
  // Devices whose document could not be published because of something of
  // their own (a corrupt state file, an app below its floor): the others
  // were published all the same.
  std::vector<FleetDeviceFailure> failed;
};

// FleetSigner::Advance for every device repository of `repository` (one
// no serve runs on: `restore` calls it on the directory it builds); the
// number of devices advanced, 0 when `fleet init` never ran.
Result<size_t> AdvanceFleetVersions(const std::string& repository, uint64_t step,
                                    const Clock& clock);

// Computes every device's document from `state` (or only that of the device
// named `device_name`) against the image repository and publishes it;
// `rollouts` (may be null: no limit) is the rollout seam of the desired rule.
// A device's own failure (corruption, a refused precondition or argument) is
// listed in `failed` and the others go on; any other error (the disk, the
// lock, the image repository) stops the publish and is returned.
Result<FleetPublishOutcome> PublishFleet(const std::string& repository, const FleetState& state,
                                         const std::optional<std::string>& device_name,
                                         const Clock& clock,
                                         const RolloutLimit* rollouts = nullptr);
// The same for the devices `which` selects (the rollout duty's re-signing).
Result<FleetPublishOutcome> PublishFleetDevices(
    const std::string& repository, const FleetState& state,
    const std::function<bool(const FleetDevice&)>& which, const Clock& clock,
    const RolloutLimit* rollouts);

// Re-signs fleet metadata before it expires, as a duty of the replica that
// holds the signing lease (`serve`: SigningDuty's holder duties). Each round
// reads the next state headers of a scan of fleet/devices (at most kScanPerRound,
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
