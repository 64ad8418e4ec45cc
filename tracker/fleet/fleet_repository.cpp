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

// fleet/<V>.root.json: every fleet root version a rotation made or replaced.
std::string FleetRootVersionPath(const RepositoryLayout& repo, uint64_t version) {
  return FleetDir(repo) + "/" + std::to_string(version) + ".root.json";
}

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

constexpr char kIndexFile[] = "fleet-index";
constexpr uint64_t kMaxIndexBytes = 4 << 10;
constexpr uint64_t kMaxTimestampBytes = 64 << 10;
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

WallTime EarliestExpiry(const metadata::Repository& opened) {
  return std::min({opened.targets().common.expires, opened.snapshot().common.expires,
                   opened.timestamp().common.expires});
}

// "N.targets.json" or "N.snapshot.json": its role and N.
bool ParseVersionedName(std::string_view name, std::string_view& role, uint64_t& version) {
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  auto [end, ec] = std::from_chars(name.data(), name.data() + dot, version);
  if (ec != std::errc() || end != name.data() + dot) return false;
  role = name.substr(dot + 1);
  return role == "targets.json" || role == "snapshot.json";
}

// The sha256 of the document that targets version `version` in
// `metadata_dir` lists; nullopt when it cannot be read.
std::optional<std::string> ListedDocumentOf(const std::string& metadata_dir, uint64_t version) {
  auto bytes = ReadTextFileBounded(metadata_dir + "/" + std::to_string(version) + ".targets.json",
                                   kMaxMetadataBytes);
  if (!bytes.ok()) return std::nullopt;
  auto doc = metadata::ParseSignedDocument(*bytes, kMaxMetadataBytes);
  if (!doc.ok()) return std::nullopt;
  auto targets = metadata::ParseTargets(doc->signed_json);
  if (!targets.ok()) return std::nullopt;
  auto listed = targets->targets.find(kFleetDocumentTarget);
  if (listed == targets->targets.end()) return std::nullopt;
  return Sha256Of(listed->second);
}

// Prunes what the opened repository's current and previous targets do not
// name. The previous targets' document unreadable: documents are kept.
Status PruneOpened(const metadata::Repository& opened, const std::string& document_sha256) {
  const uint64_t targets_version = opened.targets().common.version;
  std::optional<std::vector<std::string>> keep = std::vector<std::string>{document_sha256};
  if (targets_version > 1) {
    auto previous = ListedDocumentOf(opened.metadata_dir(), targets_version - 1);
    if (previous) {
      keep->push_back(*previous);
    } else {
      keep.reset();
    }
  }
  return PruneDeviceRepository(std::filesystem::path(opened.metadata_dir()).parent_path(),
                               targets_version, opened.snapshot().common.version, keep);
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

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Json AppEntry(uint64_t release, const metadata::TargetFile& target) {
  return Json{{"release", release},
              {"target", target.name},
              {"length", target.length},
              {"hashes", target.hashes}};
}

}  // namespace

// A directory opened to write files in it by name and to fsync it.
class DirectoryWriter {
 public:
  static Result<DirectoryWriter> Open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
    return DirectoryWriter(path, std::move(fd));
  }

  // Writes `bytes` as `name` through a temporary file beside it, fsynced
  // and renamed into place; durable once Sync() returns.
  Status Write(const std::string& name, std::string_view bytes) const {
    const std::string temp = TempName(name);
    Status st = WriteNew(temp, bytes);
    if (st.ok()) st = RenameInto(temp, name);
    if (!st.ok()) ::unlinkat(fd_.get(), temp.c_str(), 0);
    return st;
  }

  // Writes `bytes` as `name`, a name nothing refers to yet (a version no
  // timestamp names), fsynced, without a temporary file: a file cut short
  // by a crash is as unreferenced as before. One left by such a crash is
  // replaced. Durable once Sync() returns.
  Status WriteUnreferenced(const std::string& name, std::string_view bytes) const {
    Status st = WriteNew(name, bytes);
    if (st.code() == StatusCode::kAlreadyExists) {
      if (::unlinkat(fd_.get(), name.c_str(), 0) != 0) {
        return IOErrorFromErrno("remove " + Path(name), errno);
      }
      st = WriteNew(name, bytes);
    }
    return st;
  }

  // Writes `bytes` as `name`, a file named by its content's sha256
  // (`sha256`): created in place when new (a version no timestamp names
  // yet, as WriteUnreferenced); when it exists with that content it is
  // kept, else (cut short by a crash) replaced through Write.
  Status WriteNamedByContent(const std::string& name, std::string_view bytes,
                             const std::string& sha256) const {
    Status st = WriteNew(name, bytes);
    if (st.code() != StatusCode::kAlreadyExists) return st;
    auto existing = Read(name, bytes.size());
    if (existing.ok() && Sha256Hex(*existing) == sha256) return Status::Ok();
    return Write(name, bytes);
  }

  // Writes `bytes` over `name` in place, without fsync: for a cache that
  // is checked before it is trusted (a torn or lost write is never taken
  // for a good one).
  Status WriteCache(const std::string& name, std::string_view bytes) const {
    UniqueFd fd(::openat(fd_.get(), name.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) return IOErrorFromErrno("open " + Path(name), errno);
    RETURN_IF_ERROR(WriteAll(fd.get(), bytes).WithContext(Path(name)));
    if (::close(fd.Release()) != 0) return IOErrorFromErrno("close " + Path(name), errno);
    return Status::Ok();
  }

  // Removes `name` if it exists.
  Status Remove(const std::string& name) const {
    if (::unlinkat(fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      return IOErrorFromErrno("remove " + Path(name), errno);
    }
    return Status::Ok();
  }

  // The file `name`, at most `max_bytes`.
  Result<std::string> Read(const std::string& name, uint64_t max_bytes) const {
    UniqueFd fd(::openat(fd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return IOErrorFromErrno("open " + Path(name), errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return IOErrorFromErrno("stat " + Path(name), errno);
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > max_bytes) {
      return InvalidArgument(Path(name) + " is not a regular file of at most " +
                             std::to_string(max_bytes) + " bytes");
    }
    std::string out(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < out.size()) {
      ASSIGN_OR_RETURN(
          size_t n,
          ReadSome(fd.get(), std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()) + done,
                                                out.size() - done)));
      if (n == 0) break;
      done += n;
    }
    out.resize(done);
    return out;
  }

  // The renames and links made so far are durable.
  Status Sync() const {
    if (::fsync(fd_.get()) != 0) return IOErrorFromErrno("fsync " + path_, errno);
    return Status::Ok();
  }

 private:
  DirectoryWriter(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  // Creates `name` (which must not exist) with `bytes`, fsynced.
  Status WriteNew(const std::string& name, std::string_view bytes) const {
    UniqueFd fd(::openat(fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      if (errno == EEXIST) return AlreadyExists(Path(name) + " exists");
      return IOErrorFromErrno("create " + Path(name), errno);
    }
    if (::fchmod(fd.get(), 0644) != 0) return IOErrorFromErrno("chmod " + Path(name), errno);
    RETURN_IF_ERROR(WriteAll(fd.get(), bytes).WithContext(Path(name)));
    if (::fsync(fd.get()) != 0) return IOErrorFromErrno("fsync " + Path(name), errno);
    if (::close(fd.Release()) != 0) return IOErrorFromErrno("close " + Path(name), errno);
    return Status::Ok();
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  static std::string TempName(const std::string& name) {
    static std::atomic<uint64_t> counter{0};
    return name + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  }
  Status RenameInto(const std::string& temp, const std::string& name) const {
    if (::renameat(fd_.get(), temp.c_str(), fd_.get(), name.c_str()) != 0) {
      return IOErrorFromErrno("rename " + Path(temp) + " to " + Path(name), errno);
    }
    return Status::Ok();
  }

  std::string path_;
  UniqueFd fd_;
};

std::string FormatDeviceIndex(const FleetSigner::DeviceIndex& index) {
  return std::string(kDeviceIndexFormat) + " " + std::to_string(index.targets) + " " +
         std::to_string(index.snapshot) + " " + std::to_string(index.timestamp) + " " +
         index.document_sha256 + " " +
         (index.previous_document_sha256.value_or("").empty() ? std::string("-")
                                                              : *index.previous_document_sha256) +
         " " + index.timestamp_sha256 + " " + index.root_sha256 + " " +
         std::to_string(index.expires) + "\n";
}

Result<FleetSigner::DeviceIndex> ParseDeviceIndex(std::string_view text) {
  auto bad = [] { return Corruption(std::string(kIndexFile) + " is not a device index"); };
  if (!text.ends_with('\n')) return bad();
  text.remove_suffix(1);
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    const size_t space = text.find(' ', start);
    fields.push_back(text.substr(start, space - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  // fleet-index-2 is fleet-index-3 without PREVIOUS_DOCUMENT.
  if (fields.size() == 8 && fields[0] == kDeviceIndexFormatWithoutPrevious) {
    fields.insert(fields.begin() + 5, "-");
  } else if (fields.size() != 9 || fields[0] != kDeviceIndexFormat) {
    return bad();
  }
  FleetSigner::DeviceIndex index;
  uint64_t* versions[] = {&index.targets, &index.snapshot, &index.timestamp};
  for (size_t i = 0; i < 3; ++i) {
    const std::string_view field = fields[1 + i];
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), *versions[i]);
    if (ec != std::errc() || end != field.data() + field.size() || *versions[i] == 0) return bad();
  }
  if (fields[5] != "-" && !IsSha256Hex(fields[5])) return bad();
  for (size_t i : {4, 6, 7}) {
    if (!IsSha256Hex(fields[i])) return bad();
  }
  index.document_sha256 = fields[4];
  if (fields[0] == kDeviceIndexFormatWithoutPrevious) {
    index.previous_document_sha256.reset();
  } else {
    index.previous_document_sha256 = fields[5] == "-" ? "" : std::string(fields[5]);
  }
  index.timestamp_sha256 = fields[6];
  index.root_sha256 = fields[7];
  auto [end, ec] =
      std::from_chars(fields[8].data(), fields[8].data() + fields[8].size(), index.expires);
  if (ec != std::errc() || end != fields[8].data() + fields[8].size() || index.expires <= 0) {
    return bad();
  }
  return index;
}

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
                                                       const Clock& clock, Mode mode) {
  std::unique_ptr<FleetSigner> signer(new FleetSigner(repo, clock, mode));
  auto bytes = ReadTextFileBounded(FleetRootPath(repo), kMaxRootBytes);
  if (!bytes.ok()) return bytes.status().WithContext("no fleet root: run fleet init first");
  signer->root_bytes_ = std::move(bytes).value();
  signer->root_sha256_ = Digest::Of(signer->root_bytes_).Hex();
  ASSIGN_OR_RETURN(metadata::SignedDocument doc,
                   metadata::ParseSignedDocument(signer->root_bytes_, kMaxRootBytes));
  ASSIGN_OR_RETURN(metadata::RootMetadata root, metadata::ParseRoot(doc.signed_json));
  RETURN_IF_ERROR(metadata::VerifyThreshold(doc, root.keys, root.roles.at(RoleType::kRoot),
                                            "fleet root, by its own root keys"));
  signer->indexable_ = root.consistent_snapshot;
  RETURN_IF_ERROR(FinishKeyRotation(repo, root));
  for (RoleType role : kOnlineRoles) {
    auto key = metadata::LoadRoleKey(FleetKeyPath(repo, role), root, role);
    if (!key.ok()) return key.status().WithContext("fleet " + std::string(RoleName(role)) + " key");
    signer->online_.Add(*key);
    signer->signers_.push_back(metadata::TufSigner::FromEd25519(*key));
    signer->indexable_ = signer->indexable_ && root.roles.at(role).threshold == 1;
  }
  if (root.common.version > 1) {
    auto previous =
        ReadTextFileBounded(FleetRootVersionPath(repo, root.common.version - 1), kMaxRootBytes);
    if (previous.ok()) signer->previous_root_sha256_ = Sha256Hex(*previous);
  }
  signer->root_ = std::move(root);
  return signer;
}

// A device's repository, made from the fleet root when it has no timestamp
// yet (the timestamp is the commit point: a directory without one was never
// published, so it is made again). A publish cut short before its timestamp
// leaves targets.json and snapshot.json ahead of it: they are put back. An
// existing repository is moved to the current fleet root (MoveToRoot).
Result<std::unique_ptr<metadata::Repository>> FleetSigner::OpenDevice(const std::string& dir,
                                                                      bool* moved) const {
  if (moved) *moved = false;
  if (Exists(dir + "/metadata/timestamp.json")) {
    auto opened = metadata::Repository::Open(dir, clock_, FleetRepositoryOptions());
    if (!opened.ok()) {
      std::vector<std::string> notes;
      RETURN_IF_ERROR(RecoverUnpublishedMetadata(RepositoryLayout{dir}, notes));
      opened = metadata::Repository::Open(dir, clock_, FleetRepositoryOptions());
      if (!opened.ok()) return opened;
    }
    ASSIGN_OR_RETURN(bool wrote, MoveToRoot(**opened));
    if (moved) *moved = wrote;
    return opened;
  }
  RETURN_IF_ERROR(RemoveTree(dir));
  // A node may trust an older fleet root (the one the image repository
  // offered when it first looked): the older versions, to walk from. No
  // timestamp names them; they are in place before the one that commits.
  RETURN_IF_ERROR(CreateDirectories(dir + "/metadata", 0755));
  for (uint64_t v = 1; v < root_.common.version; ++v) {
    auto bytes = ReadTextFileBounded(FleetRootVersionPath(repo_, v), kMaxRootBytes);
    if (!bytes.ok()) continue;  // a root made before versions were kept
    RETURN_IF_ERROR(
        WriteFileAtomic(dir + "/metadata/" + std::to_string(v) + ".root.json", *bytes, 0644));
  }
  return metadata::Repository::CreateWithRoot(dir, root_bytes_, online_, clock_,
                                              FleetRepositoryOptions());
}

namespace {

// Whether the role's current file in `metadata_dir` carries a signature by
// one of `root`'s keys for the role (the writer's check, not a client's: a
// rotated key makes it false).
bool SignedByRootKeys(const std::string& path, const metadata::RootMetadata& root, RoleType role) {
  auto bytes = ReadTextFileBounded(path, kMaxMetadataBytes);
  if (!bytes.ok()) return false;
  auto doc = metadata::ParseSignedDocument(*bytes, kMaxMetadataBytes);
  if (!doc.ok()) return false;
  const auto& keyids = root.roles.at(role).keyids;
  return std::any_of(doc->signatures.begin(), doc->signatures.end(), [&](const auto& signature) {
    return std::find(keyids.begin(), keyids.end(), signature.keyid) != keyids.end();
  });
}

}  // namespace

Result<bool> FleetSigner::MoveToRoot(metadata::Repository& opened) const {
  const uint64_t have = opened.root().common.version;
  const uint64_t want = root_.common.version;
  if (have > want) {
    return FailedPrecondition("its fleet root is version " + std::to_string(have) +
                              ", newer than fleet/root.json's " + std::to_string(want));
  }
  bool wrote = false;
  for (uint64_t v = have + 1; v <= want; ++v) {
    std::string bytes = root_bytes_;
    if (v < want) {
      ASSIGN_OR_RETURN(bytes, ReadTextFileBounded(FleetRootVersionPath(repo_, v), kMaxRootBytes));
    }
    RETURN_IF_ERROR_CTX(opened.PublishRoot(bytes), "fleet root version " + std::to_string(v));
    wrote = true;
  }
  // Signed by keys the root no longer names (rotated; or a rotation cut
  // short between the root and the timestamp): the three again, new keys.
  // bench/fleet-sign's baseline (a repository read per publish) skips the look.
  const std::string md = opened.metadata_dir() + "/";
  if (wrote ||
      (mode_ == Mode::kIndexed &&
       !(SignedByRootKeys(md + "timestamp.json", root_, RoleType::kTimestamp) &&
         SignedByRootKeys(md + std::to_string(opened.snapshot().common.version) + ".snapshot.json",
                          root_, RoleType::kSnapshot) &&
         SignedByRootKeys(md + std::to_string(opened.targets().common.version) + ".targets.json",
                          root_, RoleType::kTargets)))) {
    RETURN_IF_ERROR(opened.ResignTargets(online_));
    wrote = true;
  }
  return wrote;
}

Result<bool> FleetSigner::FollowRoot(const std::string& device_id) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  if (!Exists(dir + "/metadata/timestamp.json")) return false;
  if (mode_ == Mode::kIndexed && indexable_) {
    // An index naming this root and the timestamp on disk: on the root already.
    auto metadata_dir = DirectoryWriter::Open(dir + "/metadata");
    if (metadata_dir.ok() && ReadIndex(*metadata_dir)) return false;
    // Indexed on the root this one replaced: the new root's file and
    // root.json, then the next versions from the index, under the new keys
    // (a publish's work, not a whole read).
    std::optional<DeviceIndex> index;
    if (metadata_dir.ok() && !previous_root_sha256_.empty()) {
      index = ReadIndex(*metadata_dir, previous_root_sha256_);
    }
    if (index) {
      ASSIGN_OR_RETURN(DirectoryWriter targets_dir, DirectoryWriter::Open(dir + "/targets"));
      auto document =
          targets_dir.Read(index->document_sha256 + "." + kFleetDocumentTarget, kMaxDocumentBytes);
      if (document.ok() && Sha256Hex(*document) == index->document_sha256) {
        RETURN_IF_ERROR(
            metadata_dir->Write(std::to_string(root_.common.version) + ".root.json", root_bytes_));
        RETURN_IF_ERROR(metadata_dir->Write("root.json", root_bytes_));
        index->root_sha256 = root_sha256_;
        auto next = PublishNext(dir, *metadata_dir, *index, *document, index->document_sha256);
        if (!next.ok()) return next.status().WithContext("fleet repository " + dir);
        return true;
      }
    }
  }
  bool moved = false;
  auto opened = OpenDevice(dir, &moved);
  if (!opened.ok()) return opened.status().WithContext("fleet repository " + dir);
  const auto& listed = (*opened)->targets().targets;
  auto current = listed.find(kFleetDocumentTarget);
  if (current == listed.end()) return moved;
  const std::string document_sha256 = Sha256Of(current->second);
  if (moved) RETURN_IF_ERROR(PruneOpened(**opened, document_sha256));
  if (mode_ == Mode::kIndexed) RETURN_IF_ERROR(WriteIndexOf(**opened, document_sha256).status());
  return moved;
}

std::optional<FleetSigner::DeviceIndex> FleetSigner::ReadIndex(
    const DirectoryWriter& metadata_dir, const std::string& root_sha256) const {
  auto index_bytes = metadata_dir.Read(kIndexFile, kMaxIndexBytes);
  if (!index_bytes.ok()) return std::nullopt;
  auto index = ParseDeviceIndex(*index_bytes);
  if (!index.ok() || index->root_sha256 != root_sha256) return std::nullopt;
  auto timestamp = metadata_dir.Read("timestamp.json", kMaxTimestampBytes);
  if (!timestamp.ok() || Sha256Hex(*timestamp) != index->timestamp_sha256) {
    return std::nullopt;
  }
  return std::move(index).value();
}

Result<bool> FleetSigner::PublishThroughRepository(const std::string& dir,
                                                   const std::string& document) const {
  bool moved = false;
  auto device_repo = OpenDevice(dir, &moved);
  if (!device_repo.ok()) return device_repo.status().WithContext("fleet repository " + dir);
  const auto& listed = (*device_repo)->targets().targets;
  auto current = listed.find(kFleetDocumentTarget);
  bool resign = current == listed.end() || Sha256Of(current->second) != Digest::Of(document).Hex();
  if (resign) {
    RETURN_IF_ERROR(
        (*device_repo)->AddTargets({{kFleetDocumentTarget, document, nullptr}}, online_));
  }
  resign = resign || moved;
  const std::string document_sha256 = Digest::Of(document).Hex();
  if (resign) RETURN_IF_ERROR(PruneOpened(**device_repo, document_sha256));
  if (mode_ == Mode::kReadRepository) return resign;
  RETURN_IF_ERROR(WriteIndexOf(**device_repo, document_sha256).status());
  return resign;
}

Result<FleetSigner::DeviceIndex> FleetSigner::WriteIndexOf(
    const metadata::Repository& opened, const std::string& document_sha256) const {
  ASSIGN_OR_RETURN(
      std::string timestamp,
      ReadTextFileBounded(opened.metadata_dir() + "/timestamp.json", kMaxTimestampBytes));
  ASSIGN_OR_RETURN(std::string root,
                   ReadTextFileBounded(opened.metadata_dir() + "/root.json", kMaxRootBytes));
  DeviceIndex index;
  index.targets = opened.targets().common.version;
  index.snapshot = opened.snapshot().common.version;
  index.timestamp = opened.timestamp().common.version;
  index.document_sha256 = document_sha256;
  // What the previous targets lists ("" when none, or unreadable: pruning
  // by name then leaves it for the next time the repository is read whole).
  index.previous_document_sha256 =
      index.targets > 1 ? ListedDocumentOf(opened.metadata_dir(), index.targets - 1).value_or("")
                        : "";
  index.timestamp_sha256 = Digest::Of(timestamp).Hex();
  index.root_sha256 = Digest::Of(root).Hex();
  index.expires = UnixSeconds(EarliestExpiry(opened));
  RETURN_IF_ERROR(
      WriteFileAtomic(opened.metadata_dir() + "/" + kIndexFile, FormatDeviceIndex(index)));
  return index;
}

Result<bool> FleetSigner::Advance(const std::string& device_id, uint64_t step) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  if (step == 0 || !Exists(dir + "/metadata/timestamp.json")) return false;
  if (mode_ != Mode::kIndexed || !indexable_) {
    return FailedPrecondition("fleet repository " + dir +
                              ": versions can be advanced only on an indexed fleet root "
                              "(consistent snapshots, threshold 1 for the online roles)");
  }
  // On the current root and indexed (FollowRoot reads the repository whole
  // and writes its index when it has none).
  RETURN_IF_ERROR(FollowRoot(device_id).status());
  ASSIGN_OR_RETURN(DirectoryWriter metadata_dir, DirectoryWriter::Open(dir + "/metadata"));
  std::optional<DeviceIndex> index = ReadIndex(metadata_dir);
  if (!index) return Corruption("fleet repository " + dir + ": no usable index after reading it");
  ASSIGN_OR_RETURN(DirectoryWriter targets_dir, DirectoryWriter::Open(dir + "/targets"));
  ASSIGN_OR_RETURN(
      std::string document,
      targets_dir.Read(index->document_sha256 + "." + kFleetDocumentTarget, kMaxDocumentBytes));
  if (Sha256Hex(document) != index->document_sha256) {
    return Corruption("fleet repository " + dir + ": the listed device.json does not match");
  }
  // PublishNext signs the versions after the index's: start it step - 1 on.
  DeviceIndex skipped = *index;
  skipped.targets += step - 1;
  skipped.snapshot += step - 1;
  skipped.timestamp += step - 1;
  auto next = PublishNext(dir, metadata_dir, skipped, document, index->document_sha256);
  if (!next.ok()) return next.status().WithContext("fleet repository " + dir);
  if (step > 1) {
    // Nothing names the versions skipped past any more.
    for (uint64_t back : {0, 1}) {
      if (index->targets > back) {
        RETURN_IF_ERROR(
            metadata_dir.Remove(std::to_string(index->targets - back) + ".targets.json"));
      }
      if (index->snapshot > back) {
        RETURN_IF_ERROR(
            metadata_dir.Remove(std::to_string(index->snapshot - back) + ".snapshot.json"));
      }
    }
  }
  return true;
}

Result<std::optional<FleetSigner::Refreshed>> FleetSigner::RefreshThroughRepository(
    const std::string& dir, WallTime now) const {
  bool moved = false;
  auto device_repo = OpenDevice(dir, &moved);
  if (!device_repo.ok()) return device_repo.status().WithContext("fleet repository " + dir);
  metadata::Repository& opened = **device_repo;
  // Targets re-signs snapshot and timestamp with it; snapshot the timestamp.
  bool resigned = true;
  if (moved) {
    // Moved to a rotated root: all three are new already.
  } else if (now >= DueAt(opened.targets().common.expires)) {
    RETURN_IF_ERROR_CTX(opened.ResignTargets(online_), "fleet repository " + dir);
  } else if (now >= DueAt(opened.snapshot().common.expires)) {
    RETURN_IF_ERROR_CTX(opened.ResignSnapshot(online_), "fleet repository " + dir);
  } else if (now >= DueAt(opened.timestamp().common.expires)) {
    RETURN_IF_ERROR_CTX(opened.ResignTimestamp(online_), "fleet repository " + dir);
  } else {
    resigned = false;
  }
  const auto& listed = opened.targets().targets;
  auto current = listed.find(kFleetDocumentTarget);
  if (current != listed.end()) {
    const std::string document_sha256 = Sha256Of(current->second);
    if (resigned) RETURN_IF_ERROR(PruneOpened(opened, document_sha256));
    if (mode_ == Mode::kIndexed) RETURN_IF_ERROR(WriteIndexOf(opened, document_sha256).status());
  }
  return std::optional<Refreshed>(Refreshed{resigned, EarliestExpiry(opened)});
}

Result<std::optional<FleetSigner::Refreshed>> FleetSigner::Refresh(const std::string& device_id,
                                                                   WallTime now) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  // Never published (or its first publish cut short): nothing to keep fresh.
  if (!Exists(dir + "/metadata/timestamp.json")) return std::optional<Refreshed>();
  if (mode_ == Mode::kReadRepository || !indexable_) return RefreshThroughRepository(dir, now);
  ASSIGN_OR_RETURN(DirectoryWriter metadata_dir, DirectoryWriter::Open(dir + "/metadata"));
  std::optional<DeviceIndex> index = ReadIndex(metadata_dir);
  if (!index) return RefreshThroughRepository(dir, now);
  const WallTime expires = FromUnixSeconds(index->expires);
  if (now < DueAt(expires)) return std::optional<Refreshed>(Refreshed{false, expires});
  ASSIGN_OR_RETURN(DirectoryWriter targets_dir, DirectoryWriter::Open(dir + "/targets"));
  auto document =
      targets_dir.Read(index->document_sha256 + "." + kFleetDocumentTarget, kMaxDocumentBytes);
  if (!document.ok() || Sha256Hex(*document) != index->document_sha256) {
    return RefreshThroughRepository(dir, now);
  }
  auto next = PublishNext(dir, metadata_dir, *index, *document, index->document_sha256);
  if (!next.ok()) return next.status().WithContext("fleet repository " + dir);
  return std::optional<Refreshed>(Refreshed{true, FromUnixSeconds(next->expires)});
}

Result<FleetSigner::DeviceIndex> FleetSigner::PublishNext(
    const std::string& dir, const DirectoryWriter& metadata_dir, const DeviceIndex& index,
    const std::string& document, const std::string& document_sha256) const {
  const auto expiry = std::chrono::floor<std::chrono::seconds>(
      clock_.Now() + std::chrono::duration_cast<WallTime::duration>(kFleetMetadataExpiry));
  const std::string expires = metadata::FormatTufTime(expiry);
  DeviceIndex next = index;
  next.document_sha256 = document_sha256;
  next.expires = UnixSeconds(expiry);
  ASSIGN_OR_RETURN(DirectoryWriter targets_dir, DirectoryWriter::Open(dir + "/targets"));
  RETURN_IF_ERROR(targets_dir.WriteNamedByContent(document_sha256 + "." + kFleetDocumentTarget,
                                                  document, document_sha256));

  ++next.targets;
  ASSIGN_OR_RETURN(
      const std::string targets,
      SignCanonical(CanonicalSigned(RoleType::kTargets, next.targets, expires,
                                    {kFleetDocumentTarget, 0, document.size(), document_sha256}),
                    signers_[0]));
  const std::string targets_file = std::to_string(next.targets) + ".targets.json";
  RETURN_IF_ERROR(metadata_dir.WriteUnreferenced(targets_file, targets));

  ++next.snapshot;
  ASSIGN_OR_RETURN(const std::string snapshot,
                   SignCanonical(CanonicalSigned(RoleType::kSnapshot, next.snapshot, expires,
                                                 {"targets.json", next.targets, targets.size(),
                                                  Sha256Hex(targets)}),
                                 signers_[1]));
  const std::string snapshot_file = std::to_string(next.snapshot) + ".snapshot.json";
  RETURN_IF_ERROR(metadata_dir.WriteUnreferenced(snapshot_file, snapshot));
  // Everything the timestamp names is durable before the timestamp is.
  RETURN_IF_ERROR(targets_dir.Sync());
  RETURN_IF_ERROR(metadata_dir.Sync());

  ++next.timestamp;
  ASSIGN_OR_RETURN(const std::string timestamp,
                   SignCanonical(CanonicalSigned(RoleType::kTimestamp, next.timestamp, expires,
                                                 {"snapshot.json", next.snapshot, snapshot.size(),
                                                  Sha256Hex(snapshot)}),
                                 signers_[2]));
  RETURN_IF_ERROR(metadata_dir.Write("timestamp.json", timestamp));
  RETURN_IF_ERROR(metadata_dir.Sync());
  // The index names this timestamp, which is durable now: lost or torn by
  // a power cut, the index names another timestamp (or is no index) and is
  // not trusted.
  next.timestamp_sha256 = Sha256Hex(timestamp);
  next.previous_document_sha256 = index.document_sha256;
  RETURN_IF_ERROR(metadata_dir.WriteCache(kIndexFile, FormatDeviceIndex(next)));
  RETURN_IF_ERROR(PruneSuperseded(dir, metadata_dir, targets_dir, index, next));
  return next;
}

Status FleetSigner::PruneSuperseded(const std::string& dir, const DirectoryWriter& metadata_dir,
                                    const DirectoryWriter& targets_dir, const DeviceIndex& before,
                                    const DeviceIndex& after) const {
  // Kept: what the new and the previous targets and snapshot name.
  if (!before.previous_document_sha256) {
    std::vector<std::string> keep = {after.document_sha256};
    if (before.document_sha256 != after.document_sha256) keep.push_back(before.document_sha256);
    return PruneDeviceRepository(dir, after.targets, after.snapshot, keep);
  }
  if (after.targets > 2) {
    RETURN_IF_ERROR(metadata_dir.Remove(std::to_string(after.targets - 2) + ".targets.json"));
  }
  if (after.snapshot > 2) {
    RETURN_IF_ERROR(metadata_dir.Remove(std::to_string(after.snapshot - 2) + ".snapshot.json"));
  }
  const std::string& superseded = *before.previous_document_sha256;
  if (!superseded.empty() && superseded != after.document_sha256 &&
      superseded != before.document_sha256) {
    RETURN_IF_ERROR(targets_dir.Remove(superseded + "." + kFleetDocumentTarget));
  }
  return Status::Ok();
}

Result<bool> FleetSigner::Publish(const std::string& device_id, const std::string& document) const {
  ASSIGN_OR_RETURN(const std::string dir, DeviceRepositoryDir(repo_, device_id));
  if (mode_ == Mode::kReadRepository || !indexable_) return PublishThroughRepository(dir, document);
  auto metadata_dir = DirectoryWriter::Open(dir + "/metadata");
  std::optional<DeviceIndex> index;
  if (metadata_dir.ok()) index = ReadIndex(*metadata_dir);
  if (!index) return PublishThroughRepository(dir, document);
  const std::string document_sha256 = Sha256Hex(document);
  if (index->document_sha256 == document_sha256) return false;
  auto next = PublishNext(dir, *metadata_dir, *index, document, document_sha256);
  if (!next.ok()) return next.status().WithContext("fleet repository " + dir);
  return true;
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
    ASSIGN_OR_RETURN(bool wrote, signer->Advance(it->path().filename().string(), step));
    if (wrote) ++advanced;
  }
  if (ec) return Internal("list " + FleetDir(repo) + "/devices: " + ec.message());
  return advanced;
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
  ASSIGN_OR_RETURN(const ReleaseFloors floors, metadata::SignedFloors(*image));
  DesiredReleases desired(state, rollouts, &floors);
  FleetPublishOutcome outcome;
  for (const auto& [name, device] : state.devices) {
    if (!which(device)) continue;
    const std::vector<DesiredApp> apps = desired.All(device);
    RETURN_IF_ERROR_CTX(CheckAboveFloors(apps, floors), "device " + name);
    ASSIGN_OR_RETURN(std::string document,
                     FleetDocument(device, apps, image_targets, desired.WindowsOf(device)));
    ASSIGN_OR_RETURN(bool resigned, signer->Publish(device.device_id, document));
    ++outcome.devices;
    outcome.resigned += resigned ? 1 : 0;
  }
  return outcome;
}

Status PruneDeviceRepository(const std::string& dir, uint64_t targets_version,
                             uint64_t snapshot_version,
                             const std::optional<std::vector<std::string>>& keep_documents) {
  std::vector<fs::path> superseded;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir + "/metadata", ec)) {
    const std::string name = entry.path().filename().string();
    // Unversioned copies (an older tracker's): nothing reads them.
    if (name == "targets.json" || name == "snapshot.json") {
      superseded.push_back(entry.path());
      continue;
    }
    std::string_view role;
    uint64_t version = 0;
    if (!ParseVersionedName(name, role, version)) continue;
    const uint64_t current = role == "targets.json" ? targets_version : snapshot_version;
    if (version + 1 < current) superseded.push_back(entry.path());
  }
  if (ec) return Internal("list " + dir + "/metadata: " + ec.message());
  if (keep_documents) {
    const std::string suffix = std::string(".") + kFleetDocumentTarget;
    for (const auto& entry : fs::directory_iterator(dir + "/targets", ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.ends_with(suffix)) continue;
      const std::string sha256 = name.substr(0, name.size() - suffix.size());
      if (!IsSha256Hex(sha256)) continue;
      if (std::find(keep_documents->begin(), keep_documents->end(), sha256) ==
          keep_documents->end()) {
        superseded.push_back(entry.path());
      }
    }
    if (ec) return Internal("list " + dir + "/targets: " + ec.message());
  }
  for (const fs::path& path : superseded) {
    if (!fs::remove(path, ec) && ec)
      return Internal("remove " + path.string() + ": " + ec.message());
  }
  return Status::Ok();
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
      auto bytes = ReadTextFileBounded(*dir + "/metadata/" + kIndexFile, kMaxIndexBytes);
      auto index =
          bytes.ok() ? ParseDeviceIndex(*bytes) : Result<FleetSigner::DeviceIndex>(bytes.status());
      // No usable index: due now, where the repository is read.
      Schedule(id, index.ok() ? DueAt(FromUnixSeconds(index->expires)) : now);
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
