#include "tracker/fleet/fleet_repository.h"

#include <filesystem>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/ed25519.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "tracker/api/labels.h"
#include "tracker/publish/offline.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;
using metadata::RoleType;

constexpr uint64_t kMaxRootBytes = 512 << 10;
constexpr RoleType kOnlineRoles[] = {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp};

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// The signed sha256 of `target`, "" when it lists none.
std::string Sha256Of(const metadata::TargetFile& target) {
  auto it = target.hashes.find("sha256");
  return it == target.hashes.end() ? "" : it->second;
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  return ec ? Internal("remove " + path + ": " + ec.message()) : Status::Ok();
}

Status SaveKeyPair(const Ed25519PrivateKey& key, const std::string& path) {
  RETURN_IF_ERROR(key.SaveFile(path));
  return WriteFileAtomic(path + ".pub", key.public_key().Hex() + "\n", 0644);
}

// The key in `path`, made there (with its .pub) when the file does not exist.
Result<Ed25519PrivateKey> LoadOrMakeKey(const std::string& path) {
  if (Exists(path)) return Ed25519PrivateKey::LoadFile(path);
  Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  RETURN_IF_ERROR(SaveKeyPair(key, path));
  return key;
}

Result<Ed25519PrivateKey> FleetRootKey(const FleetInitOptions& options) {
  if (!options.root_key_file.empty()) {
    auto key = Ed25519PrivateKey::LoadFile(options.root_key_file);
    if (!key.ok()) return key.status().WithContext("fleet root key");
    return key;
  }
  if (options.offline_keys_dir.empty()) {
    return InvalidArgument("give --root-key FILE or --offline-keys DIR for the fleet root key");
  }
  RETURN_IF_ERROR(CreateDirectories(options.offline_keys_dir, 0700));
  std::error_code ec;
  fs::permissions(options.offline_keys_dir, fs::perms::owner_all, ec);
  const std::string path = options.offline_keys_dir + "/fleet-root.key";
  if (Exists(path)) return AlreadyExists(path + " exists: give it as --root-key");
  Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  RETURN_IF_ERROR(SaveKeyPair(key, path));
  RETURN_IF_ERROR(FsyncDirectory(options.offline_keys_dir));
  return key;
}

// Root v1 of the fleet, signed by `root_key`, naming the online keys: made by
// the repository writer in a scratch directory, which is then removed.
Result<std::string> SignFleetRoot(const RepositoryLayout& repo, const Ed25519PrivateKey& root_key,
                                  const Clock& clock) {
  std::map<RoleType, metadata::RoleKeyConfig> roles;
  metadata::KeyRing ring;
  roles[RoleType::kRoot] = {{root_key.public_key()}, 1};
  ring.Add(root_key);
  RETURN_IF_ERROR(CreateDirectories(KeysDir(repo), 0700));
  for (RoleType role : kOnlineRoles) {
    ASSIGN_OR_RETURN(Ed25519PrivateKey key, LoadOrMakeKey(FleetKeyPath(repo, role)));
    roles[role] = {{key.public_key()}, 1};
    ring.Add(key);
  }
  RETURN_IF_ERROR(FsyncDirectory(KeysDir(repo)));
  const std::string scratch = FleetDir(repo) + "/.root-scratch";
  RETURN_IF_ERROR(RemoveTree(scratch));
  auto made = metadata::Repository::Create(scratch, roles, ring, clock, FleetRepositoryOptions());
  if (!made.ok()) return made.status().WithContext("fleet root");
  auto bytes = ReadTextFileBounded((*made)->metadata_dir() + "/1.root.json", kMaxRootBytes);
  RETURN_IF_ERROR(RemoveTree(scratch));
  return bytes;
}

// Lists fleet/root.json in the image repository: directly with online
// targets keys, else staged for the offline targets key. Nothing when it is
// listed with these bytes already.
Status OfferFleetRoot(const RepositoryLayout& repo, const std::string& root_bytes,
                      const Clock& clock, FleetInitOutcome& outcome) {
  ASSIGN_OR_RETURN(auto image, metadata::Repository::Open(repo.root, clock));
  auto listed = image->targets().targets.find(kFleetRootTarget);
  if (listed != image->targets().targets.end() &&
      Sha256Of(listed->second) == Digest::Of(root_bytes).Hex()) {
    return AlreadyExists("the fleet root exists and the image repository offers it");
  }
  std::vector<metadata::TargetInput> inputs = {{kFleetRootTarget, root_bytes, nullptr}};
  if (!Exists(RoleKeyPath(repo, RoleType::kTargets))) {
    ASSIGN_OR_RETURN(
        metadata::SignedDocument staged,
        image->StageTargets("targets", image->targets(), inputs, kDefaultOfflineExpiry));
    ASSIGN_OR_RETURN(outcome.pending_file, WritePending(repo, "targets", staged));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(metadata::KeyRing keys,
                   LoadRoleKeys(repo, image->root(),
                                {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp}));
  RETURN_IF_ERROR(image->AddTargets(inputs, keys));
  outcome.targets_version = image->targets().common.version;
  return Status::Ok();
}

Json AppEntry(uint64_t release, const metadata::TargetFile& target) {
  return Json{{"release", release},
              {"target", target.name},
              {"length", target.length},
              {"hashes", target.hashes}};
}

}  // namespace

std::string FleetDir(const RepositoryLayout& repo) { return repo.root + "/fleet"; }
std::string FleetRootPath(const RepositoryLayout& repo) { return FleetDir(repo) + "/root.json"; }

std::string FleetKeyPath(const RepositoryLayout& repo, RoleType role) {
  return KeysDir(repo) + "/fleet-" + std::string(metadata::RoleName(role)) + ".key";
}

Result<std::string> DeviceRepositoryDir(const RepositoryLayout& repo,
                                        const std::string& device_id) {
  if (!IsValidLabel(device_id) || device_id.front() == '.') {
    return InvalidArgument("device id '" + device_id.substr(0, 64) + "' cannot name a directory");
  }
  return FleetDir(repo) + "/devices/" + device_id;
}

metadata::RepositoryOptions FleetRepositoryOptions() {
  metadata::RepositoryOptions options;
  options.targets_expiry = kFleetMetadataExpiry;
  options.snapshot_expiry = kFleetMetadataExpiry;
  options.timestamp_expiry = kFleetMetadataExpiry;
  return options;
}

Result<FleetInitOutcome> InitFleet(const FleetInitOptions& options, const Clock& clock) {
  const RepositoryLayout repo{options.repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, notes));
  RETURN_IF_ERROR(CreateDirectories(FleetDir(repo), 0755));
  FleetInitOutcome outcome;
  std::string root_bytes;
  if (Exists(FleetRootPath(repo))) {
    ASSIGN_OR_RETURN(root_bytes, ReadTextFileBounded(FleetRootPath(repo), kMaxRootBytes));
  } else {
    ASSIGN_OR_RETURN(Ed25519PrivateKey root_key, FleetRootKey(options));
    ASSIGN_OR_RETURN(root_bytes, SignFleetRoot(repo, root_key, clock));
    RETURN_IF_ERROR(WriteFileAtomic(FleetRootPath(repo), root_bytes, 0644));
  }
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(root_bytes, kMaxRootBytes));
  ASSIGN_OR_RETURN(metadata::RootMetadata root, metadata::ParseRoot(doc.signed_json));
  outcome.root_version = root.common.version;
  RETURN_IF_ERROR(OfferFleetRoot(repo, root_bytes, clock, outcome));
  return outcome;
}

Result<std::string> FleetDocument(const FleetDevice& device, const std::vector<DesiredApp>& desired,
                                  const metadata::TargetsMetadata& image_targets,
                                  const std::vector<MaintenanceWindow>& windows) {
  Json apps = Json::object();
  for (const DesiredApp& app : desired) {
    if (!app.release) continue;
    const std::string name = metadata::ReleaseTargetName(app.app, *app.release);
    auto target = image_targets.targets.find(name);
    if (target == image_targets.targets.end()) {
      return FailedPrecondition("device " + device.name + ": release " +
                                std::to_string(*app.release) + " of " + app.app +
                                " is not a target of the image repository");
    }
    apps[app.app] = AppEntry(*app.release, target->second);
  }
  Json document{
      {"device", device.device_id}, {"format", kFleetDocumentFormat}, {"apps", std::move(apps)}};
  // A node that does not know `windows` ignores it (format stays 1) and
  // switches at any time.
  if (!windows.empty()) {
    document["windows"] = Json::array();
    for (const MaintenanceWindow& w : windows) document["windows"].push_back(WindowToJson(w));
  }
  return CanonicalJson(document);
}

Result<std::unique_ptr<FleetSigner>> FleetSigner::Open(const RepositoryLayout& repo,
                                                       const Clock& clock) {
  std::unique_ptr<FleetSigner> signer(new FleetSigner(repo, clock));
  auto bytes = ReadTextFileBounded(FleetRootPath(repo), kMaxRootBytes);
  if (!bytes.ok()) return bytes.status().WithContext("no fleet root: run fleet init first");
  signer->root_bytes_ = std::move(bytes).value();
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(signer->root_bytes_, kMaxRootBytes));
  ASSIGN_OR_RETURN(metadata::RootMetadata root, metadata::ParseRoot(doc.signed_json));
  for (RoleType role : kOnlineRoles) {
    auto key = metadata::LoadRoleKey(FleetKeyPath(repo, role), root, role);
    if (!key.ok()) return key.status().WithContext("fleet " + std::string(RoleName(role)) + " key");
    signer->online_.Add(*key);
  }
  return signer;
}

// A device's repository, made from the fleet root when it has no timestamp
// yet (the timestamp is the commit point: a directory without one was never
// published, so it is made again). A publish cut short before its timestamp
// leaves targets.json and snapshot.json ahead of it: they are put back.
Result<std::unique_ptr<metadata::Repository>> FleetSigner::OpenDevice(const std::string& dir) {
  if (Exists(dir + "/metadata/timestamp.json")) {
    auto opened = metadata::Repository::Open(dir, clock_, FleetRepositoryOptions());
    if (opened.ok()) return opened;
    std::vector<std::string> notes;
    RETURN_IF_ERROR(RecoverUnpublishedMetadata(RepositoryLayout{dir}, notes));
    return metadata::Repository::Open(dir, clock_, FleetRepositoryOptions());
  }
  RETURN_IF_ERROR(RemoveTree(dir));
  return metadata::Repository::CreateWithRoot(dir, root_bytes_, online_, clock_,
                                              FleetRepositoryOptions());
}

Result<bool> FleetSigner::Publish(const std::string& device_id, const std::string& document) {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  auto device_repo = OpenDevice(dir);
  if (!device_repo.ok()) return device_repo.status().WithContext("fleet repository " + dir);
  const auto& listed = (*device_repo)->targets().targets;
  auto current = listed.find(kFleetDocumentTarget);
  if (current != listed.end() && Sha256Of(current->second) == Digest::Of(document).Hex()) {
    return false;
  }
  RETURN_IF_ERROR((*device_repo)->AddTargets({{kFleetDocumentTarget, document, nullptr}}, online_));
  return true;
}

Result<FleetPublishOutcome> PublishFleet(const std::string& repository, const FleetState& state,
                                         const std::optional<std::string>& device_name,
                                         const Clock& clock, const RolloutLimit* rollouts) {
  if (device_name && !state.devices.contains(*device_name)) {
    return NotFound("no device named '" + *device_name + "'");
  }
  return PublishFleetDevices(
      repository, state,
      [&](const FleetDevice& device) { return !device_name || device.name == *device_name; }, clock,
      rollouts);
}

Result<FleetPublishOutcome> PublishFleetDevices(
    const std::string& repository, const FleetState& state,
    const std::function<bool(const FleetDevice&)>& which, const Clock& clock,
    const RolloutLimit* rollouts) {
  const RepositoryLayout repo{repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  ASSIGN_OR_RETURN(auto image, metadata::Repository::Open(repo.root, clock));
  const metadata::TargetsMetadata image_targets = image->AllTargets();
  ASSIGN_OR_RETURN(auto signer, FleetSigner::Open(repo, clock));
  DesiredReleases desired(state, rollouts);
  FleetPublishOutcome outcome;
  for (const auto& [name, device] : state.devices) {
    if (!which(device)) continue;
    ASSIGN_OR_RETURN(std::string document, FleetDocument(device, desired.All(device), image_targets,
                                                         desired.WindowsOf(device)));
    ASSIGN_OR_RETURN(bool resigned, signer->Publish(device.device_id, document));
    ++outcome.devices;
    outcome.resigned += resigned ? 1 : 0;
  }
  return outcome;
}

}  // namespace flotilla::tracker
