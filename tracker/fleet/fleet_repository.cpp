#include "tracker/fleet/fleet_repository.h"

#include <fcntl.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <filesystem>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/ed25519.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_time.h"
#include "tracker/api/labels.h"
#include "tracker/fleet/config.h"
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

constexpr Duration kFleetRootExpiry = std::chrono::hours(24 * 365);

// keys/fleet-<role>.next.key: a new online key, made before the root that
// names it is committed and moved over keys/fleet-<role>.key after.
std::string NextFleetKeyPath(const RepositoryLayout& repo, RoleType role) {
  return KeysDir(repo) + "/fleet-" + std::string(metadata::RoleName(role)) + ".next.key";
}

// Puts in place each next key that `root` names (a rotation committed; cut
// short before its keys were moved, the next signer finishes it). A next
// key the root does not name (a rotation cut short before its commit) is
// left, and replaced by the next rotation.
Status FinishKeyRotation(const RepositoryLayout& repo, const metadata::RootMetadata& root) {
  bool moved = false;
  for (RoleType role : kOnlineRoles) {
    const std::string next = NextFleetKeyPath(repo, role);
    if (!Exists(next) || !metadata::LoadRoleKey(next, root, role).ok()) continue;
    const std::string path = FleetKeyPath(repo, role);
    std::error_code ec;
    fs::rename(next + ".pub", path + ".pub", ec);
    fs::rename(next, path, ec);
    if (ec) return Internal("rename " + next + " to " + path + ": " + ec.message());
    moved = true;
  }
  return moved ? FsyncDirectory(KeysDir(repo)) : Status::Ok();
}

constexpr uint64_t kMaxMetadataBytes = 1 << 20;
constexpr uint64_t kMaxDocumentBytes = 1 << 20;

int64_t UnixSeconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
WallTime FromUnixSeconds(int64_t seconds) { return WallTime(std::chrono::seconds(seconds)); }

// The moment a fleet role expiring at `expires` is due for re-signing: half
// of its lifetime left.
WallTime DueAt(WallTime expires) {
  return expires - std::chrono::duration_cast<WallTime::duration>(kFleetMetadataExpiry / 2);
}

// The canonical JSON (CanonicalJson(metadata::ToJson(...))) of the three
// documents of a device repository, built directly: their shape is fixed
// and every value is a number, a hex digest, a TUF time or a fixed name,
// none needing an escape. `file` is the one file each lists.
struct ListedFile {
  std::string_view name;
  uint64_t version = 0;  // 0: a target (no version)
  uint64_t length = 0;
  std::string_view sha256;
};

void AppendListed(const ListedFile& file, std::string& out) {
  out += "{\"";
  out += file.name;
  out += "\":{\"hashes\":{\"sha256\":\"";
  out += file.sha256;
  out += "\"},\"length\":";
  out += std::to_string(file.length);
  if (file.version != 0) {
    out += ",\"version\":";
    out += std::to_string(file.version);
  }
  out += "}}";
}

std::string CanonicalSigned(RoleType role, uint64_t version, std::string_view expires,
                            const ListedFile& file) {
  std::string out;
  out.reserve(320);
  out += "{\"_type\":\"";
  out += metadata::RoleName(role);
  out += "\",\"expires\":\"";
  out += expires;
  out += "\",";
  if (role != RoleType::kTargets) {
    out += "\"meta\":";
    AppendListed(file, out);
    out += ',';
  }
  out += "\"spec_version\":\"";
  out += metadata::kSpecVersion;
  out += '"';
  if (role == RoleType::kTargets) {
    out += ",\"targets\":";
    AppendListed(file, out);
  }
  out += ",\"version\":";
  out += std::to_string(version);
  out += '}';
  return out;
}

// `canonical_signed` signed by `signer`, as the file holds it (compact; the
// signature covers the canonical `signed` only, so any encoding verifies).
Result<std::string> SignCanonical(const std::string& canonical_signed,
                                  const metadata::TufSigner& signer) {
  ASSIGN_OR_RETURN(Bytes signature, signer.Sign(AsBytes(canonical_signed)));
  std::string out;
  out.reserve(canonical_signed.size() + 256);
  out += "{\"signatures\":[{\"keyid\":\"";
  out += signer.key().keyid;
  out += "\",\"sig\":\"";
  out += HexEncode(signature);
  out += "\"}],\"signed\":";
  out += canonical_signed;
  out += "}\n";
  return out;
}

// The hex sha256 of `bytes` (libsodium's one-shot: no context to allocate).
std::string Sha256Hex(std::string_view bytes) {
  std::array<uint8_t, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256(digest.data(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return HexEncode(digest);
}

Json AppEntry(uint64_t release, const metadata::TargetFile& target) {
  return Json{{"release", release},
              {"target", target.name},
              {"length", target.length},
              {"hashes", target.hashes}};
}

}  // namespace

std::string FleetDir(const RepositoryLayout& repo) { return repo.fleet_dir(); }
std::string FleetRootPath(const RepositoryLayout& repo) { return FleetDir(repo) + "/root.json"; }
std::string FleetRootVersionPath(const RepositoryLayout& repo, uint64_t version) {
  return repo.fleet_root_version_path(version);
}

std::string FleetKeyPath(const RepositoryLayout& repo, RoleType role) {
  return KeysDir(repo) + "/fleet-" + std::string(metadata::RoleName(role)) + ".key";
}

Result<std::string> DeviceRepositoryDir(const RepositoryLayout& repo,
                                        const std::string& device_id) {
  if (!IsValidLabel(device_id) || device_id.front() == '.') {
    return InvalidArgument("device id '" + device_id.substr(0, 64) + "' cannot name a directory");
  }
  return repo.fleet_device_dir(device_id);
}

metadata::RepositoryOptions FleetRepositoryOptions() {
  metadata::RepositoryOptions options;
  options.targets_expiry = kFleetMetadataExpiry;
  options.snapshot_expiry = kFleetMetadataExpiry;
  options.timestamp_expiry = kFleetMetadataExpiry;
  // Nodes follow consistent snapshots: N.targets.json and N.snapshot.json.
  options.unversioned_copies = false;
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

Result<FleetRotateOutcome> RotateFleetRoot(const FleetRotateOptions& options, const Clock& clock) {
  const RepositoryLayout repo{options.repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, notes));
  auto current_bytes = ReadTextFileBounded(FleetRootPath(repo), kMaxRootBytes);
  if (!current_bytes.ok()) {
    return current_bytes.status().WithContext("no fleet root: run fleet init first");
  }
  ASSIGN_OR_RETURN(metadata::SignedDocument current_doc,
                   metadata::ParseSignedDocument(*current_bytes, kMaxRootBytes));
  ASSIGN_OR_RETURN(metadata::RootMetadata current, metadata::ParseRoot(current_doc.signed_json));
  const metadata::RoleKeys& current_root_keys = current.roles.at(RoleType::kRoot);
  RETURN_IF_ERROR(metadata::VerifyThreshold(current_doc, current.keys, current_root_keys,
                                            "fleet root, by its own root keys"));
  const std::string version_text = std::to_string(current.common.version);

  auto old_key = Ed25519PrivateKey::LoadFile(options.root_key_file);
  if (!old_key.ok()) return old_key.status().WithContext("--root-key");
  const std::string old_keyid = metadata::MakeTufKey(old_key->public_key()).keyid;
  if (std::find(current_root_keys.keyids.begin(), current_root_keys.keyids.end(), old_keyid) ==
      current_root_keys.keyids.end()) {
    return InvalidArgument("--root-key " + options.root_key_file +
                           " is not a root key of fleet root version " + version_text);
  }
  std::optional<Ed25519PrivateKey> new_root_key;
  if (!options.new_root_key_file.empty()) {
    auto key = Ed25519PrivateKey::LoadFile(options.new_root_key_file);
    if (!key.ok()) return key.status().WithContext("--new-root-key");
    new_root_key = std::move(key).value();
  }
  for (RoleType role : options.rotate) {
    if (std::find(std::begin(kOnlineRoles), std::end(kOnlineRoles), role) ==
        std::end(kOnlineRoles)) {
      return InvalidArgument(
          "--rotate takes targets, snapshot and timestamp (a new root key: --new-root-key)");
    }
  }
  if (!new_root_key && options.rotate.empty()) {
    return InvalidArgument("nothing to rotate: give --new-root-key FILE and/or --rotate ROLES");
  }

  // Every version stays: a node may trust any of them.
  const std::string current_path = FleetRootVersionPath(repo, current.common.version);
  if (!Exists(current_path)) RETURN_IF_ERROR(WriteFileAtomic(current_path, *current_bytes, 0644));

  metadata::RootMetadata next = current;
  next.common.version = current.common.version + 1;
  next.common.expires = std::chrono::floor<std::chrono::seconds>(
      clock.Now() + std::chrono::duration_cast<WallTime::duration>(kFleetRootExpiry));
  auto name_key = [&](RoleType role, const Ed25519PublicKey& public_key) {
    metadata::TufKey key = metadata::MakeTufKey(public_key);
    next.roles[role] = metadata::RoleKeys{{key.keyid}, 1};
    next.keys.insert_or_assign(key.keyid, std::move(key));
  };
  if (new_root_key) name_key(RoleType::kRoot, new_root_key->public_key());
  if (!options.rotate.empty()) {
    RETURN_IF_ERROR(CreateDirectories(KeysDir(repo), 0700));
    for (RoleType role : options.rotate) {
      Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
      RETURN_IF_ERROR(SaveKeyPair(key, NextFleetKeyPath(repo, role)));
      name_key(role, key.public_key());
    }
    RETURN_IF_ERROR(FsyncDirectory(KeysDir(repo)));
  }
  std::set<std::string> used;
  for (const auto& [role, keys] : next.roles) used.insert(keys.keyids.begin(), keys.keyids.end());
  std::erase_if(next.keys, [&](const auto& entry) { return !used.contains(entry.first); });

  // Signed by the current root key and the new one, checked as a node
  // checks it before anything is written.
  ASSIGN_OR_RETURN(metadata::SignedDocument signed_next,
                   metadata::MakeUnsignedDocument(metadata::ToJson(next)));
  metadata::AddSignature(signed_next, *old_key);
  if (new_root_key) metadata::AddSignature(signed_next, *new_root_key);
  RETURN_IF_ERROR(metadata::VerifyThreshold(signed_next, current.keys, current_root_keys,
                                            "new fleet root, by the current root keys"));
  RETURN_IF_ERROR(metadata::VerifyThreshold(signed_next, next.keys, next.roles.at(RoleType::kRoot),
                                            "new fleet root, by its own root keys"));
  const std::string next_bytes = metadata::SerializeDocument(signed_next);
  RETURN_IF_ERROR(
      WriteFileAtomic(FleetRootVersionPath(repo, next.common.version), next_bytes, 0644));
  // The commit point: from here the new root (and its keys) sign.
  RETURN_IF_ERROR(WriteFileAtomic(FleetRootPath(repo), next_bytes, 0644));
  RETURN_IF_ERROR(FinishKeyRotation(repo, next));

  FleetRotateOutcome outcome;
  outcome.root_version = next.common.version;
  // The devices first: nodes that trust a fleet root walk to the new one.
  ASSIGN_OR_RETURN(auto signer, FleetSigner::Open(repo, clock));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(FleetDir(repo) + "/devices", ec)) {
    const std::string id = entry.path().filename().string();
    if (!DeviceRepositoryDir(repo, id).ok()) continue;
    ASSIGN_OR_RETURN(bool moved, signer->FollowRoot(id));
    outcome.devices += moved ? 1 : 0;
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Internal("list " + FleetDir(repo) + "/devices: " + ec.message());
  }
  // Then nodes that trust none yet (`fleet init` run again offers it, should this fail).
  FleetInitOutcome offered;
  Status offer = OfferFleetRoot(repo, next_bytes, clock, offered);
  if (!offer.ok() && offer.code() != StatusCode::kAlreadyExists) {
    return offer.WithContext("offering fleet root version " + std::to_string(next.common.version));
  }
  outcome.pending_file = offered.pending_file;
  outcome.targets_version = offered.targets_version;
  return outcome;
}

Result<std::string> FleetDocument(const FleetDevice& device, const std::vector<DesiredApp>& desired,
                                  const metadata::TargetsMetadata& image_targets,
                                  const std::vector<MaintenanceWindow>& windows,
                                  const std::map<std::string, appspec::ConfigValues>& config,
                                  const std::map<std::string, appspec::ConfigValues>& secrets) {
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
    // A node that does not know `config` ignores it (format stays 1).
    if (auto values = config.find(app.app); values != config.end() && !values->second.empty()) {
      apps[app.app]["config"] = values->second;
    }
    // Sealed boxes only (docs/config.md, "Secrets"); ignored by older nodes.
    if (auto boxes = secrets.find(app.app); boxes != secrets.end() && !boxes->second.empty()) {
      apps[app.app]["secrets"] = boxes->second;
    }
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
  const std::string root_bytes = std::move(bytes).value();
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(root_bytes, kMaxRootBytes));
  ASSIGN_OR_RETURN(metadata::RootMetadata root, metadata::ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(metadata::VerifyThreshold(doc, root.keys, root.roles.at(RoleType::kRoot),
                                            "fleet root, by its own root keys"));
  // Devices fetch N.snapshot.json and N.targets.json, each signed by the
  // one online key of its role.
  if (!root.consistent_snapshot) {
    return FailedPrecondition("the fleet root does not use consistent snapshots");
  }
  RETURN_IF_ERROR(FinishKeyRotation(repo, root));
  for (RoleType role : kOnlineRoles) {
    if (root.roles.at(role).threshold != 1) {
      return FailedPrecondition(
          "the fleet root asks for " + std::to_string(root.roles.at(role).threshold) + " " +
          std::string(RoleName(role)) + " signatures; the tracker holds one online key per role");
    }
    auto key = metadata::LoadRoleKey(FleetKeyPath(repo, role), root, role);
    if (!key.ok()) return key.status().WithContext("fleet " + std::string(RoleName(role)) + " key");
    signer->signers_.push_back(metadata::TufSigner::FromEd25519(*key));
  }
  // Every root version is served from fleet/<V>.root.json (a fleet made
  // before versions were kept has root.json only).
  const std::string versioned = FleetRootVersionPath(repo, root.common.version);
  if (!Exists(versioned)) RETURN_IF_ERROR(WriteFileAtomic(versioned, root_bytes, 0644));
  signer->root_version_ = root.common.version;
  signer->root_ = std::move(root);
  return signer;
}

Result<FleetSigner::Stored> FleetSigner::Load(const std::string& dir) const {
  ASSIGN_OR_RETURN(std::optional<DeviceState> state, ReadDeviceState(dir));
  // An older tracker's directories: read when there is no state file yet,
  // removed by the next Store either way (a power cut may have left them
  // beside the state file that replaced them).
  const bool directories = Exists(dir + "/metadata");
  if (state) {
    if (state->root > root_version_) {
      return FailedPrecondition("fleet repository " + dir + " is signed under fleet root version " +
                                std::to_string(state->root) + ", newer than fleet/root.json's " +
                                std::to_string(root_version_));
    }
    return Stored{std::move(state), directories};
  }
  if (!Exists(dir + "/metadata/timestamp.json")) return Stored{std::nullopt, directories};
  return LoadDirectories(dir);
}

// A device repository an older tracker laid out as metadata/ and targets/
// directories: opened and verified whole (metadata::Repository), and what
// its timestamp names taken as the current version. Its files are removed
// once a state file replaces them.
Result<FleetSigner::Stored> FleetSigner::LoadDirectories(const std::string& dir) const {
  auto opened = metadata::Repository::Open(dir, clock_, FleetRepositoryOptions());
  if (!opened.ok()) {
    // A publish cut short before its timestamp: targets and snapshot ahead.
    std::vector<std::string> notes;
    RETURN_IF_ERROR(RecoverUnpublishedMetadata(RepositoryLayout{dir}, notes));
    opened = metadata::Repository::Open(dir, clock_, FleetRepositoryOptions());
    if (!opened.ok()) return opened.status().WithContext("fleet repository " + dir);
  }
  const metadata::Repository& repo = **opened;
  if (repo.root().common.version > root_version_) {
    return FailedPrecondition("fleet repository " + dir + " holds fleet root version " +
                              std::to_string(repo.root().common.version) +
                              ", newer than fleet/root.json's " + std::to_string(root_version_));
  }
  auto listed = repo.targets().targets.find(kFleetDocumentTarget);
  if (listed == repo.targets().targets.end()) {
    // Made, never published (cut short before its first document): the
    // next versions still follow the ones its timestamp names.
    Stored stored{std::nullopt, true};
    stored.targets = repo.targets().common.version;
    stored.snapshot = repo.snapshot().common.version;
    stored.timestamp = repo.timestamp().common.version;
    return stored;
  }
  DeviceState state;
  state.root = repo.root().common.version;
  state.targets = repo.targets().common.version;
  state.snapshot = repo.snapshot().common.version;
  state.timestamp = repo.timestamp().common.version;
  state.expires =
      UnixSeconds(std::min({repo.targets().common.expires, repo.snapshot().common.expires,
                            repo.timestamp().common.expires}));
  state.document_sha256 = Sha256Of(listed->second);
  const std::string md = repo.metadata_dir() + "/";
  const std::string targets_name = std::to_string(state.targets) + ".targets.json";
  const std::string snapshot_name = std::to_string(state.snapshot) + ".snapshot.json";
  const std::string document_name = state.document_sha256 + "." + kFleetDocumentTarget;
  ASSIGN_OR_RETURN(std::string timestamp,
                   ReadTextFileBounded(md + "timestamp.json", kMaxMetadataBytes));
  ASSIGN_OR_RETURN(std::string targets, ReadTextFileBounded(md + targets_name, kMaxMetadataBytes));
  ASSIGN_OR_RETURN(std::string snapshot,
                   ReadTextFileBounded(md + snapshot_name, kMaxMetadataBytes));
  ASSIGN_OR_RETURN(std::string document,
                   ReadTextFileBounded(dir + "/targets/" + document_name, kMaxDocumentBytes));
  if (Sha256Hex(document) != state.document_sha256) {
    return Corruption("fleet repository " + dir + ": device.json does not match its targets");
  }
  state.files = {{"timestamp.json", std::move(timestamp)},
                 {targets_name, std::move(targets)},
                 {snapshot_name, std::move(snapshot)},
                 {document_name, std::move(document)}};
  return Stored{std::move(state), true};
}

Status FleetSigner::Store(const std::string& dir, const DeviceState& state,
                          const Stored& before) const {
  if (!before.state && !before.directories) {
    // A new device: its directory's entry in fleet/devices/ durable too.
    RETURN_IF_ERROR(CreateDurableDirectories(Env::Default(), dir, 0755));
  }
  // Roots are served from fleet/<V>.root.json from now on: one a device
  // repository of an older tracker holds and fleet/ lacks (a root made
  // before versions were kept there) is copied first.
  if (before.directories) RETURN_IF_ERROR(KeepRootsOf(dir, state.root));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kDeviceStateFile, FormatDeviceState(state), 0644));
  if (before.directories) {
    RETURN_IF_ERROR(RemoveTree(dir + "/metadata"));
    RETURN_IF_ERROR(RemoveTree(dir + "/targets"));
    RETURN_IF_ERROR(FsyncDirectory(dir));
  }
  return Status::Ok();
}

Status FleetSigner::KeepRootsOf(const std::string& dir, uint64_t up_to) const {
  bool copied = false;
  for (uint64_t v = 1; v <= up_to; ++v) {
    const std::string kept = FleetRootVersionPath(repo_, v);
    const std::string held = dir + "/metadata/" + std::to_string(v) + ".root.json";
    if (Exists(kept) || !Exists(held)) continue;
    ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(held, kMaxRootBytes));
    RETURN_IF_ERROR(WriteFileAtomic(kept, bytes, 0644));
    copied = true;
  }
  return copied ? FsyncDirectory(FleetDir(repo_)) : Status::Ok();
}

bool FleetSigner::SignedByCurrentKeys(const DeviceState& state) const {
  const std::string names[] = {std::to_string(state.targets) + ".targets.json",
                               std::to_string(state.snapshot) + ".snapshot.json", "timestamp.json"};
  for (size_t i = 0; i < 3; ++i) {
    const std::string* bytes = state.Find(names[i]);
    if (!bytes) return false;
    const std::string& keyid = signers_[i].key().keyid;
    // As SignCanonical writes it; else (another writer's layout) parsed.
    if (bytes->starts_with("{\"signatures\":[{\"keyid\":\"") &&
        bytes->compare(25, keyid.size(), keyid) == 0) {
      continue;
    }
    auto doc = metadata::ParseSignedDocument(*bytes, kMaxMetadataBytes);
    if (!doc.ok() || std::none_of(doc->signatures.begin(), doc->signatures.end(),
                                  [&](const auto& s) { return s.keyid == keyid; })) {
      return false;
    }
  }
  return true;
}

// Whether `state` must be signed again whatever its document: signed under
// an older fleet root, or not by the keys the root names (a rotation's new
// keys; metadata written by anything but this signer).
bool FleetSigner::Stale(const DeviceState& state) const {
  return state.root != root_version_ || !SignedByCurrentKeys(state);
}

Result<DeviceState> FleetSigner::SignNext(const std::string& dir, const Stored& stored,
                                          const std::string& document,
                                          const std::string& document_sha256, uint64_t step) const {
  const auto expiry = std::chrono::floor<std::chrono::seconds>(
      clock_.Now() + std::chrono::duration_cast<WallTime::duration>(kFleetMetadataExpiry));
  const std::string expires = metadata::FormatTufTime(expiry);
  const std::optional<DeviceState>& current = stored.state;
  DeviceState next;
  next.root = root_version_;
  next.targets = (current ? current->targets : stored.targets) + step;
  next.snapshot = (current ? current->snapshot : stored.snapshot) + step;
  next.timestamp = (current ? current->timestamp : stored.timestamp) + step;
  next.expires = UnixSeconds(expiry);
  next.document_sha256 = document_sha256;
  ASSIGN_OR_RETURN(
      std::string targets,
      SignCanonical(CanonicalSigned(RoleType::kTargets, next.targets, expires,
                                    {kFleetDocumentTarget, 0, document.size(), document_sha256}),
                    signers_[0]));
  ASSIGN_OR_RETURN(std::string snapshot,
                   SignCanonical(CanonicalSigned(RoleType::kSnapshot, next.snapshot, expires,
                                                 {"targets.json", next.targets, targets.size(),
                                                  Sha256Hex(targets)}),
                                 signers_[1]));
  ASSIGN_OR_RETURN(std::string timestamp,
                   SignCanonical(CanonicalSigned(RoleType::kTimestamp, next.timestamp, expires,
                                                 {"snapshot.json", next.snapshot, snapshot.size(),
                                                  Sha256Hex(snapshot)}),
                                 signers_[2]));
  const std::string document_name = document_sha256 + "." + kFleetDocumentTarget;
  next.files.reserve(7);
  next.files.emplace_back("timestamp.json", std::move(timestamp));
  next.files.emplace_back(std::to_string(next.targets) + ".targets.json", std::move(targets));
  next.files.emplace_back(std::to_string(next.snapshot) + ".snapshot.json", std::move(snapshot));
  next.files.emplace_back(document_name, document);
  // What the current timestamp names stays for one more version: a device
  // that read it a moment ago fetches the snapshot, targets and document it
  // names next. Versions skipped past (step > 1) are named by nothing.
  if (current && step == 1) {
    for (const auto& [name, bytes] : current->files) {
      const bool current_version = name == std::to_string(current->targets) + ".targets.json" ||
                                   name == std::to_string(current->snapshot) + ".snapshot.json" ||
                                   name == current->document_sha256 + "." + kFleetDocumentTarget;
      if (current_version && !next.Find(name)) next.files.emplace_back(name, bytes);
    }
  }
  RETURN_IF_ERROR_CTX(Store(dir, next, stored), "fleet repository " + dir);
  return next;
}

Result<bool> FleetSigner::Publish(const std::string& device_id, const std::string& document) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  ASSIGN_OR_RETURN(const Stored stored, Load(dir));
  const std::optional<DeviceState>& state = stored.state;
  const std::string document_sha256 = Sha256Hex(document);
  if (state && state->document_sha256 == document_sha256 && !Stale(*state)) {
    if (stored.directories)
      RETURN_IF_ERROR_CTX(Store(dir, *state, stored), "fleet repository " + dir);
    return false;
  }
  RETURN_IF_ERROR(SignNext(dir, stored, document, document_sha256, 1).status());
  return true;
}

Result<std::optional<FleetSigner::Refreshed>> FleetSigner::Refresh(const std::string& device_id,
                                                                   WallTime now) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  ASSIGN_OR_RETURN(const Stored stored, Load(dir));
  const std::optional<DeviceState>& state = stored.state;
  if (!state) return std::optional<Refreshed>();
  if (!Stale(*state) && now < DueAt(FromUnixSeconds(state->expires))) {
    if (stored.directories)
      RETURN_IF_ERROR_CTX(Store(dir, *state, stored), "fleet repository " + dir);
    return std::optional<Refreshed>(Refreshed{false, FromUnixSeconds(state->expires)});
  }
  ASSIGN_OR_RETURN(DeviceState next,
                   SignNext(dir, stored, CurrentDocument(*state), state->document_sha256, 1));
  return std::optional<Refreshed>(Refreshed{true, FromUnixSeconds(next.expires)});
}

Result<bool> FleetSigner::FollowRoot(const std::string& device_id) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  ASSIGN_OR_RETURN(const Stored stored, Load(dir));
  const std::optional<DeviceState>& state = stored.state;
  if (!state) return false;
  if (!Stale(*state)) {
    if (stored.directories)
      RETURN_IF_ERROR_CTX(Store(dir, *state, stored), "fleet repository " + dir);
    return false;
  }
  RETURN_IF_ERROR(
      SignNext(dir, stored, CurrentDocument(*state), state->document_sha256, 1).status());
  return true;
}

Result<bool> FleetSigner::Advance(const std::string& device_id, uint64_t step) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  ASSIGN_OR_RETURN(const Stored stored, Load(dir));
  const std::optional<DeviceState>& state = stored.state;
  if (!state || step == 0) return false;
  RETURN_IF_ERROR(
      SignNext(dir, stored, CurrentDocument(*state), state->document_sha256, step).status());
  return true;
}

std::string FleetSigner::CurrentDocument(const DeviceState& state) {
  // ParseDeviceState and LoadDirectories check that the state holds it.
  return *state.Find(state.document_sha256 + "." + kFleetDocumentTarget);
}

Result<std::string> DeviceRepositoryRemote::FetchMetadata(const std::string& name,
                                                          uint64_t max_bytes) {
  ASSIGN_OR_RETURN(std::string bytes,
                   ReadDeviceRepositoryFile(repo_, device_id_, "metadata", name));
  if (bytes.size() > max_bytes) return ResourceExhausted(name + " is too large");
  return bytes;
}

Status DeviceRepositoryRemote::FetchTarget(const std::string& url_path, uint64_t max_bytes,
                                           const std::string& dest_path) {
  if (url_path.find('/') != std::string::npos || url_path.find('%') != std::string::npos) {
    return NotFound("no target " + url_path.substr(0, 80));
  }
  ASSIGN_OR_RETURN(std::string bytes,
                   ReadDeviceRepositoryFile(repo_, device_id_, "targets", url_path));
  if (bytes.size() > max_bytes) return ResourceExhausted(url_path + " is too large");
  return WriteFileAtomic(dest_path, bytes, 0644);
}

Result<size_t> AdvanceFleetVersions(const std::string& repository, uint64_t step,
                                    const Clock& clock) {
  const RepositoryLayout repo{repository};
  if (!Exists(FleetRootPath(repo))) return size_t{0};
  ASSIGN_OR_RETURN(auto signer, FleetSigner::Open(repo, clock));
  size_t advanced = 0;
  std::error_code ec;
  fs::directory_iterator it(FleetDir(repo) + "/devices", ec);
  if (ec == std::errc::no_such_file_or_directory) return size_t{0};
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string id = it->path().filename().string();
    if (!DeviceRepositoryDir(repo, id).ok()) continue;  // not a device's
    ASSIGN_OR_RETURN(bool wrote, signer->Advance(id, step));
    if (wrote) ++advanced;
  }
  if (ec) return Internal("list " + FleetDir(repo) + "/devices: " + ec.message());
  return advanced;
}

namespace {

// A failure that belongs to one device's document or repository, not to the
// tracker's disk or state: publishing the other devices is still right.
bool IsTheDevicesOwn(const Status& status) {
  switch (status.code()) {
    case StatusCode::kCorruption:
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
      return true;
    default:
      return false;
  }
}

}  // namespace

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
  ASSIGN_OR_RETURN(const ReleaseFloors floors, metadata::SignedFloors(*image));
  DesiredReleases desired(state, rollouts, &floors);
  ReleaseSpecs specs(image_targets);
  FleetPublishOutcome outcome;
  for (const auto& [name, device] : state.devices) {
    if (!which(device)) continue;
    Result<bool> resigned = [&]() -> Result<bool> {
      const std::vector<DesiredApp> apps = desired.All(device);
      RETURN_IF_ERROR(CheckAboveFloors(apps, floors));
      ASSIGN_OR_RETURN(const auto config, DeviceConfig(state, device, apps, specs));
      ASSIGN_OR_RETURN(const auto secrets, DeviceSecrets(state, device, apps, specs));
      ASSIGN_OR_RETURN(
          std::string document,
          FleetDocument(device, apps, image_targets, desired.WindowsOf(device), config, secrets));
      return signer->Publish(device.device_id, document);
    }();
    if (!resigned.ok()) {
      if (!IsTheDevicesOwn(resigned.status()))
        return resigned.status().WithContext("device " + name);
      outcome.failed.push_back({name, resigned.status()});
      continue;
    }
    ++outcome.devices;
    outcome.resigned += *resigned ? 1 : 0;
  }
  return outcome;
}

namespace {

constexpr Duration kRescanEvery = std::chrono::hours(1);
constexpr Duration kBusyRetry = std::chrono::seconds(30);
constexpr Duration kDeviceErrorRetry = std::chrono::minutes(10);
constexpr Duration kNextBatch = std::chrono::seconds(1);

WallTime After(WallTime now, Duration d) {
  return now + std::chrono::duration_cast<WallTime::duration>(d);
}

}  // namespace

void FleetRefresher::Schedule(const std::string& device_id, WallTime due) {
  auto [it, inserted] = due_.try_emplace(device_id, due);
  if (!inserted) {
    queue_.erase({it->second, device_id});
    it->second = due;
  }
  queue_.emplace(due, device_id);
}

Status FleetRefresher::ScanSome(WallTime now) {
  std::error_code ec;
  for (size_t n = 0; n < kScanPerRound && *scan_ != fs::directory_iterator(); ++n) {
    const std::string id = (*scan_)->path().filename().string();
    if (auto dir = DeviceRepositoryDir(repo_, id); dir.ok()) {
      auto header = ReadDeviceStateHeader(*dir);
      // No state file (an older tracker's directories) or an unreadable
      // one: due now, where the repository is read whole.
      Schedule(id, header.ok() && *header ? DueAt(FromUnixSeconds((*header)->expires)) : now);
    }
    scan_->increment(ec);
    if (ec) {
      scan_.reset();
      return Internal("list " + FleetDir(repo_) + "/devices: " + ec.message());
    }
  }
  if (*scan_ == fs::directory_iterator()) {
    scan_.reset();
    next_scan_ = After(now, kRescanEvery);
  }
  return Status::Ok();
}

Result<Duration> FleetRefresher::Refresh(WallTime now) {
  last_resigned_ = 0;
  if (!Exists(FleetRootPath(repo_))) {  // `fleet init` not run: nothing signed yet
    queue_.clear();
    due_.clear();
    scan_.reset();
    return kRescanEvery;
  }
  if (!scan_ && now >= next_scan_) {
    std::error_code ec;
    fs::directory_iterator devices(FleetDir(repo_) + "/devices", ec);
    if (ec) {
      next_scan_ = After(now, kRescanEvery);  // no device published yet
    } else {
      scan_ = std::move(devices);
    }
  }
  if (scan_) RETURN_IF_ERROR(ScanSome(now));
  auto due_now = [&] { return !queue_.empty() && queue_.begin()->first <= now; };
  if (due_now()) {
    auto lock = PublishLock::Acquire(repo_, /*wait=*/false);
    if (!lock.ok()) {
      if (lock.status().code() == StatusCode::kFailedPrecondition) return kBusyRetry;
      return lock.status();
    }
    ASSIGN_OR_RETURN(auto signer, FleetSigner::Open(repo_, clock_));
    for (size_t done = 0; done < batch_ && due_now(); ++done) {
      const std::string id = queue_.begin()->second;
      auto refreshed = signer->Refresh(id, now);
      if (!refreshed.ok()) {
        Schedule(id, After(now, kDeviceErrorRetry));
        return refreshed.status().WithContext("re-signing the fleet metadata of " + id);
      }
      if (!*refreshed) {  // no published repository
        queue_.erase(queue_.begin());
        due_.erase(id);
        continue;
      }
      last_resigned_ += (*refreshed)->resigned ? 1 : 0;
      const WallTime due = DueAt((*refreshed)->expires);
      Schedule(id, due > now ? due : After(now, kDeviceErrorRetry));
    }
    if (last_resigned_ > 0) {
      spdlog::info("fleet metadata: re-signed {} device repositories before expiry",
                   last_resigned_);
    }
  }
  if (scan_ || due_now()) return kNextBatch;
  WallTime next = next_scan_;
  if (!queue_.empty()) next = std::min(next, queue_.begin()->first);
  return std::clamp(std::chrono::duration_cast<Duration>(next - now), kNextBatch, kRescanEvery);
}

}  // namespace flotilla::tracker
