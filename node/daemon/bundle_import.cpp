#include "node/daemon/bundle_import.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "http/http_client.h"
#include "layerstore/layer_store.h"
#include "layerstore/plain_tar.h"
#include "metadata/offline_window.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/trusted_store.h"
#include "metadata/tuf_client.h"
#include "node/daemon/bundle_fleet.h"
#include "node/daemon/imported_seeds.h"
#include "node/daemon/release_transfer.h"
#include "node/daemon/store_worker.h"

namespace flotilla::node {
namespace {

namespace fs = std::filesystem;

bool IsLowerHex64(std::string_view name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// What a DirectoryRemote reads: one percent-encoded file name.
bool IsMetadataFileName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
           c == '%';
  });
}

// Checks an entry's name and size (its type was checked by ScanPlainTar).
Status CheckEntry(const layerstore::PlainTarEntry& entry, const BundleLimits& limits) {
  const std::string& name = entry.name;
  uint64_t bound = limits.max_index_bytes;
  if (name == "bundle.json") {
  } else if (name.starts_with("metadata/") && IsMetadataFileName(name.substr(9))) {
    bound = limits.max_metadata_bytes;
  } else if (name.starts_with("artifacts/") && IsLowerHex64(name.substr(10))) {
    bound = limits.max_artifact_bytes;
  } else if (name.starts_with("torrents/") && name.ends_with(".torrent") &&
             name.size() == 9 + 64 + 8 && IsLowerHex64(name.substr(9, 64))) {
    bound = limits.max_torrent_bytes;
  } else if (name.starts_with("fleet/") && IsBundleFleetFileName(name.substr(6))) {
    bound = limits.max_fleet_bytes;
  } else {
    return PermissionDenied("bundle entry '" + name + "' is not a bundle file name");
  }
  if (entry.size > bound) {
    return ResourceExhausted(fmt::format("bundle entry '{}' is {} bytes, over its bound of {}",
                                         name, entry.size, bound));
  }
  return Status::Ok();
}

// Reads every header (no data): refuses the bundle before anything is copied.
Result<std::vector<layerstore::PlainTarEntry>> ScanBundle(const std::string& path,
                                                          const BundleLimits& limits) {
  auto entries = layerstore::ScanPlainTar(path, {"metadata", "artifacts", "torrents", "fleet"},
                                          limits.max_entries);
  if (!entries.ok()) return entries.status().WithContext("bundle " + path);
  bool has_index = false;
  for (const auto& e : *entries) {
    RETURN_IF_ERROR(CheckEntry(e, limits));
    has_index = has_index || e.name == "bundle.json";
  }
  if (!has_index) return InvalidArgument("the bundle has no bundle.json");
  return entries;
}

uint64_t TotalBytes(const std::vector<layerstore::PlainTarEntry>& entries) {
  uint64_t total = 0;
  for (const auto& e : entries) total += e.size;
  return total;
}

Status CheckFreeSpaceFor(const std::vector<layerstore::PlainTarEntry>& entries,
                         const std::string& dir) {
  const uint64_t total = TotalBytes(entries);
  struct statvfs fsinfo {};
  if (::statvfs(dir.c_str(), &fsinfo) != 0) return IOErrorFromErrno("statvfs " + dir, errno);
  const uint64_t free_bytes = uint64_t{fsinfo.f_bavail} * fsinfo.f_frsize;
  if (total > free_bytes) {
    return ResourceExhausted(
        fmt::format("the bundle needs {} bytes in {}; {} are free", total, dir, free_bytes));
  }
  return Status::Ok();
}

// Copies the scanned entries under `staging` (names already checked).
Status ExtractBundle(const std::string& path, const std::vector<layerstore::PlainTarEntry>& entries,
                     const std::string& staging, const ImportProgressFn& progress) {
  RETURN_IF_ERROR(CreateDirectories(staging + "/metadata", 0700));
  RETURN_IF_ERROR(CreateDirectories(staging + "/artifacts", 0700));
  RETURN_IF_ERROR(CreateDirectories(staging + "/torrents", 0700));
  RETURN_IF_ERROR(CreateDirectories(staging + "/fleet", 0700));
  std::map<std::string, std::string> destinations;
  for (const auto& e : entries) destinations[e.name] = staging + "/" + e.name;
  const uint64_t total = TotalBytes(entries);
  uint64_t copied = 0;
  auto count = [&](const layerstore::PlainTarEntry& e) {
    copied += e.size;
    progress(
        {"copying", copied, total, fmt::format("copied {} ({} of {} B)", e.name, copied, total)});
  };
  return layerstore::ExtractPlainTar(path, destinations, count).WithContext("bundle " + path);
}

// <data_dir>/tuf, or the configured root of trust when it trusts none yet.
Status EnsureTrustedRoot(const NodeConfig& config, const DataLayout& layout) {
  if (fs::exists(layout.tuf() + "/root.json")) return Status::Ok();
  if (config.root_of_trust.empty()) {
    return FailedPrecondition("no trusted root in " + layout.tuf() + " and no root_of_trust");
  }
  ASSIGN_OR_RETURN(auto root, ReadTextFileBounded(config.root_of_trust,
                                                  metadata::ClientLimits{}.max_root_bytes));
  return metadata::TufClient::Initialize(layout.tuf(), root).WithContext("root_of_trust");
}

Result<std::string> AppOfIndex(const std::string& staging, const BundleLimits& limits,
                               const NodeConfig& config) {
  ASSIGN_OR_RETURN(auto text,
                   ReadTextFileBounded(staging + "/bundle.json", limits.max_index_bytes));
  ASSIGN_OR_RETURN(Json index, ParseJsonStrict(text));
  if (!index.is_object() || !index.contains("app") || !index["app"].is_string()) {
    return InvalidArgument("bundle.json names no app");
  }
  if (index.value("format", Json(0)) != Json(1)) {
    return FailedPrecondition("bundle.json format " + index.value("format", Json(0)).dump() +
                              " is not the format this node reads (1)");
  }
  const std::string app = index["app"].get<std::string>();
  if (std::find(config.apps.begin(), config.apps.end(), app) == config.apps.end()) {
    return FailedPrecondition("the bundle is for app " + app + ", which this node does not follow");
  }
  return app;
}

// The TUF client over `metadata_dir` (the bundle's metadata as the remote);
// the newest release of `app` it verifies.
// With the offline window allowed, expired metadata stands when the
// release's window covers now (docs/metadata.md); the floor then moves to
// at most the window's start.
Result<metadata::Release> VerifiedRelease(const std::string& trusted_dir,
                                          const std::string& metadata_dir, const std::string& app,
                                          const Clock& clock, OfflineWindowUse offline) {
  constexpr std::string_view kDoesNotVerify =
      "the bundle's metadata does not verify against this device's trusted metadata";
  metadata::DirectoryRemote remote(metadata_dir, "");
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(trusted_dir, remote, clock));
  if (offline == OfflineWindowUse::kAllowed) client->AllowOfflineWindow();
  RETURN_IF_ERROR(client->Refresh().WithContext(kDoesNotVerify));
  ASSIGN_OR_RETURN(auto releases, metadata::TrustedReleases(*client));
  auto it = releases.find(app);
  if (it == releases.end())
    return NotFound("the bundle's signed metadata has no release of " + app);
  RETURN_IF_ERROR(metadata::ApplyOfflineWindow(*client, {&it->second}).WithContext(kDoesNotVerify));
  return it->second;
}

Status CheckNewer(const std::string& state_path, const std::string& app, uint64_t version) {
  auto text = ReadTextFileBounded(state_path, 16 << 20);
  if (!text.ok()) return Status::Ok();  // no state yet: nothing runs
  auto state = ParseJsonStrict(*text);
  if (!state.ok() || !state->contains("apps") || !(*state)["apps"].contains(app)) {
    return Status::Ok();
  }
  const Json& a = (*state)["apps"][app];
  const uint64_t held =
      std::max(a.value("ready_release", uint64_t{0}), a.value("running_release", uint64_t{0}));
  if (version <= held) {
    return FailedPrecondition(
        fmt::format("the bundle holds release {} of {}, not newer than release {} this node has",
                    version, app, held));
  }
  return Status::Ok();
}

std::vector<Digest> ReadyLayers(layerstore::LayerStore& store) {
  std::vector<Digest> ready;
  for (const auto& l : store.ListLayers().value_or(std::vector<layerstore::LayerInfo>{})) {
    if (l.state == layerstore::LayerState::kReady) ready.push_back(l.diff_id);
  }
  return ready;
}

bool AllPresent(const layerstore::PlannedPath& path, const std::string& staging) {
  return std::all_of(path.steps.begin(), path.steps.end(), [&](const auto& step) {
    return fs::exists(staging + "/artifacts/" + step.id.Hex());
  });
}

// For each layer the store lacks, the best path (else the fallback) whose
// artifacts are all in the bundle, each checked against the signed release.
Result<std::vector<RebuildStep>> PlanFromBundle(const metadata::Release& release,
                                                layerstore::LayerStore& store, bool deltas,
                                                const std::string& staging,
                                                const ImportProgressFn& progress) {
  ASSIGN_OR_RETURN(auto plan, PlanRelease(release, ReadyLayers(store), deltas));
  std::vector<RebuildStep> steps;
  uint64_t total = 0;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& layer = plan.layers[i];
    const layerstore::PlannedPath* path = &layer.best;
    if (!AllPresent(*path, staging)) {
      path = layer.fallback && AllPresent(*layer.fallback, staging) ? &*layer.fallback : nullptr;
    }
    if (!path) {
      return NotFound("the bundle lacks the artifacts for layer " + layer.layer.ToString() +
                      " from the layers this device holds (made --from another release?)");
    }
    for (const auto& step : path->steps) {
      steps.push_back(
          {step, staging + "/artifacts/" + step.id.Hex(), LayerLength(release, step.layer), i});
      total += step.length;
    }
  }
  uint64_t checked = 0;
  for (const auto& step : steps) {
    ASSIGN_OR_RETURN(Digest digest, HashFile(step.path));
    if (digest != step.artifact.id || fs::file_size(step.path) != step.artifact.length) {
      return Corruption("artifact " + step.artifact.id.ToString() +
                        " in the bundle does not match its signed hash and length");
    }
    checked += step.artifact.length;
    progress({"verifying", checked, total,
              fmt::format("artifact {} verified ({} of {} B)", step.artifact.id.Hex().substr(0, 12),
                          checked, total)});
  }
  return steps;
}

Status CheckSpaceForRebuild(const metadata::Release& release, const std::vector<RebuildStep>& steps,
                            const NodeConfig& config, layerstore::LayerStore& store) {
  std::vector<metadata::Artifact> artifacts;
  for (const auto& step : steps) {
    for (const auto& a : release.artifacts) {
      if (a.sha256 == step.artifact.id) artifacts.push_back(a);
    }
  }
  uint64_t store_bytes = 0;
  for (const auto& l : store.ListLayers().value_or(std::vector<layerstore::LayerInfo>{})) {
    store_bytes += l.length;
  }
  return CheckFreeSpace(artifacts, release, config.data_dir, store_bytes, config.disk_budget_bytes);
}

Status SyncFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return IOErrorFromErrno("fsync " + path, errno);
  return Status::Ok();
}

// Moves the verified artifact of `step` and its torrent from `staging` into
// the fetcher's layout under `seed_dir`, unless the fetcher has it already
// (whole or partial: its own files are never replaced). Durable: each file
// synced, renamed, its directory synced. False when it was not moved.
Result<bool> MoveToFetcher(const RebuildStep& step, const std::string& staging,
                           const std::string& seed_dir) {
  const std::string hex = step.artifact.id.Hex();
  const std::string torrent = staging + "/torrents/" + hex + ".torrent";
  const std::string data_dir = seed_dir + "/data/" + hex;
  const std::string torrent_to = seed_dir + "/torrents/" + hex + ".torrent";
  std::error_code ec;
  if (!fs::is_regular_file(torrent, ec) || fs::exists(data_dir, ec) || fs::exists(torrent_to, ec)) {
    return false;
  }
  RETURN_IF_ERROR(CreateDirectories(data_dir, 0700));
  RETURN_IF_ERROR(CreateDirectories(seed_dir + "/torrents", 0700));
  RETURN_IF_ERROR(SyncFile(step.path));
  RETURN_IF_ERROR(SyncFile(torrent));
  if (::rename(step.path.c_str(), (data_dir + "/" + hex).c_str()) != 0) {
    return IOErrorFromErrno("rename " + step.path, errno);
  }
  RETURN_IF_ERROR(FsyncDirectory(data_dir));
  if (::rename(torrent.c_str(), torrent_to.c_str()) != 0) {
    return IOErrorFromErrno("rename " + torrent, errno);
  }
  RETURN_IF_ERROR(FsyncDirectory(seed_dir + "/torrents"));
  return true;
}

struct Verified {
  std::string app;
  metadata::Release release;
  std::vector<RebuildStep> steps;
  // This device's carried fleet document and what it says (bundle_fleet.h).
  std::optional<BundleFleetVerdict> fleet;
};

// Step 4b: this device's fleet document, when the bundle carries it.
Result<std::optional<BundleFleetVerdict>> CarriedFleetVerdict(
    const NodeConfig& config, const std::string& staging, const metadata::Release& release,
    const Clock& clock, OfflineWindowUse offline, const ImportProgressFn& progress) {
  std::string why_not;
  const metadata::Release* offline_release =
      offline == OfflineWindowUse::kAllowed ? &release : nullptr;
  ASSIGN_OR_RETURN(auto verdict, CheckBundleFleet(config, staging, staging + "/tuf", release, clock,
                                                  offline_release, why_not));
  if (!verdict) {
    progress({"verifying", 0, 0, why_not});
  } else if (verdict->refusal.empty()) {
    progress({"verifying", 0, 0,
              fmt::format("fleet document v{} verified: it names {} release {}",
                          verdict->document_version, release.app, release.version)});
  } else {
    progress({"verifying", 0, 0,
              fmt::format("fleet document v{} verified: {}", verdict->document_version,
                          verdict->refusal)});
  }
  return verdict;
}

// Everything that is checked before the node's state is touched.
Result<Verified> VerifyBundle(const NodeConfig& config, const std::string& bundle_path,
                              const std::string& staging, const Clock& clock,
                              layerstore::LayerStore& store, const ImportProgressFn& progress,
                              const BundleLimits& limits, OfflineWindowUse offline) {
  const DataLayout layout(config.data_dir);
  progress({"checking", 0, 0, "checking " + bundle_path});
  ASSIGN_OR_RETURN(auto entries, ScanBundle(bundle_path, limits));
  RETURN_IF_ERROR(CheckFreeSpaceFor(entries, config.data_dir));
  progress({"copying", 0, TotalBytes(entries),
            fmt::format("{} entries checked; copying them ({} B)", entries.size(),
                        TotalBytes(entries))});
  RETURN_IF_ERROR(ExtractBundle(bundle_path, entries, staging, progress));
  Verified v;
  ASSIGN_OR_RETURN(v.app, AppOfIndex(staging, limits, config));
  RETURN_IF_ERROR(metadata::CopyTrustedDirectory(layout.tuf(), staging + "/tuf"));
  ASSIGN_OR_RETURN(v.release,
                   VerifiedRelease(staging + "/tuf", staging + "/metadata", v.app, clock, offline));
  progress({"verifying", 0, 0,
            fmt::format("metadata verified: {} release {}", v.app, v.release.version)});
  RETURN_IF_ERROR(CheckNewer(layout.state(), v.app, v.release.version));
  ASSIGN_OR_RETURN(v.fleet,
                   CarriedFleetVerdict(config, staging, v.release, clock, offline, progress));
  if (v.fleet && !v.fleet->refusal.empty()) return v;  // not deployed: nothing to plan
  RETURN_IF_ERROR(CheckRunsHere(v.release, layerstore::Platform::Host()));
  ASSIGN_OR_RETURN(v.steps, PlanFromBundle(v.release, store, config.deltas, staging, progress));
  RETURN_IF_ERROR(CheckSpaceForRebuild(v.release, v.steps, config, store));
  progress({"verifying", 0, 0,
            fmt::format("{} artifact(s) verified against the signed release", v.steps.size())});
  return v;
}

}  // namespace

Result<UniqueFd> LockDataDir(const DataLayout& layout) {
  RETURN_IF_ERROR(CreateDirectories(layout.root, 0755).WithContext("data_dir"));
  UniqueFd fd(::open(layout.lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) return IOErrorFromErrno("open " + layout.lock_file(), errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    return FailedPrecondition("flotilla-node is running on data_dir " + layout.root +
                              " (it started meanwhile, or another import runs): run the import "
                              "again, the daemon then imports the bundle itself");
  }
  return fd;
}

bool DaemonHoldsDataDir(const DataLayout& layout) {
  UniqueFd fd(::open(layout.lock_file().c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return false;  // no lock file: no daemon ever ran here
  return ::flock(fd.get(), LOCK_SH | LOCK_NB) != 0;
}

Result<ImportResult> ImportBundle(const NodeConfig& config, const std::string& bundle_path,
                                  const Clock& clock, const ImportProgressFn& progress,
                                  const BundleLimits& limits) {
  const DataLayout layout(config.data_dir);
  if (!fs::is_regular_file(bundle_path)) return NotFound(bundle_path + " is not a file");
  ASSIGN_OR_RETURN(UniqueFd lock, LockDataDir(layout));
  ASSIGN_OR_RETURN(auto store, layerstore::LayerStore::Open(layout.store()));
  // The data directory's lock keeps every other writer of tuf/ and fleet/ out.
  const OfflineWindowUse offline = TrackerUnreachable(config, std::chrono::seconds(5))
                                       ? OfflineWindowUse::kAllowed
                                       : OfflineWindowUse::kIgnored;
  // In p2p mode the artifacts go to the fetcher's directory, and the next
  // `run` seeds them (imported_seeds.h), as a running daemon's import does.
  const std::string seed_dir = config.transfer_mode == TransferMode::kP2p ? layout.transfer() : "";
  ASSIGN_OR_RETURN(ImportResult result,
                   ImportBundleInto(config, *store, bundle_path, clock, progress, seed_dir, limits,
                                    nullptr, offline));
  if (!result.seedable.empty()) {
    Status recorded =
        RecordImportedSeeds(layout.imported_seeds(), {result.app, result.version, result.seedable});
    progress({"imported", 0, 0,
              recorded.ok() ? fmt::format("{} artifact(s) kept for the next run to seed to the LAN",
                                          result.seedable.size())
                            : "not seeded: " + recorded.ToString()});
  }
  if (result.fleet) {
    RETURN_IF_ERROR(CommitBundleFleet(config, *result.fleet, clock,
                                      result.offline_release ? &*result.offline_release : nullptr)
                        .WithContext("this device's fleet document was not accepted"));
    progress({"imported", 0, 0, fmt::format("fleet document v{} accepted", result.fleet_version)});
  }
  if (!result.not_deployed.empty()) return FailedPrecondition(result.not_deployed);
  return result;
}

bool TrackerUnreachable(const NodeConfig& config, std::chrono::milliseconds timeout) {
  if (config.content_url.empty()) return true;
  http::ClientOptions options = HttpOptionsFor(config);
  options.connect_timeout = std::min(options.connect_timeout, timeout);
  options.read_timeout = std::min(options.read_timeout, timeout);
  options.total_timeout = timeout;
  http::Client client(std::move(options));
  auto answer =
      client.Fetch({.url = http::JoinUrl(config.content_url + "/metadata", "timestamp.json"),
                    .max_body_bytes = 16 << 10});
  const StatusCode code = answer.status().code();
  return code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded;
}

Result<ImportResult> ImportBundleInto(const NodeConfig& config, layerstore::LayerStore& store,
                                      const std::string& bundle_path, const Clock& clock,
                                      const ImportProgressFn& progress, const std::string& seed_dir,
                                      const BundleLimits& limits, std::mutex* trusted_dir_lock,
                                      OfflineWindowUse offline) {
  const DataLayout layout(config.data_dir);
  if (!fs::is_regular_file(bundle_path)) return NotFound(bundle_path + " is not a file");
  RETURN_IF_ERROR(EnsureTrustedRoot(config, layout));
  const std::string staging = layout.root + "/tmp/import";
  std::error_code ec;
  fs::remove_all(staging, ec);
  auto verified =
      VerifyBundle(config, bundle_path, staging, clock, store, progress, limits, offline);
  Status committed = verified.status();
  ImportResult result;
  if (verified.ok()) {
    // The same verified bytes, now against the device's own trusted metadata,
    // with no refresh of it running meanwhile.
    {
      std::unique_lock<std::mutex> no_refresh;
      if (trusted_dir_lock) no_refresh = std::unique_lock<std::mutex>(*trusted_dir_lock);
      committed =
          VerifiedRelease(layout.tuf(), staging + "/metadata", verified->app, clock, offline)
              .status();
    }
    if (committed.ok() && verified->fleet) {
      if (offline == OfflineWindowUse::kAllowed) result.offline_release = verified->release;
      result.fleet = verified->fleet->carried;
      result.fleet_version = verified->fleet->document_version;
      result.not_deployed = verified->fleet->refusal;
    }
    uint64_t total = 0, done = 0;
    for (const RebuildStep& step : verified->steps) total += step.artifact.length;
    for (const RebuildStep& step : verified->steps) {
      if (!committed.ok()) break;
      auto made = RebuildLayer(store, step, layout.root + "/tmp");
      committed = made.status();
      if (made.ok() && *made) {
        ++result.layers_rebuilt;
        result.added.push_back(**made);
      }
      if (!made.ok()) break;
      result.artifact_bytes += step.artifact.length;
      done += step.artifact.length;
      progress({"rebuilding", done, total,
                fmt::format("layer {} rebuilt ({} of {} B)",
                            step.artifact.layer.Hex().substr(0, 12), done, total)});
    }
    // The layers are in; the artifacts go to the fetcher, to be seeded.
    for (const RebuildStep& step : verified->steps) {
      if (!committed.ok() || seed_dir.empty()) break;
      auto moved = MoveToFetcher(step, staging, seed_dir);
      if (!moved.ok()) {
        progress({"rebuilding", 0, 0, "not seeded: " + moved.status().ToString()});
        continue;  // the release is imported; its neighbours fetch it elsewhere
      }
      for (const auto& a : verified->release.artifacts) {
        if (*moved && a.sha256 == step.artifact.id) result.seedable.push_back(RequestOf(a));
      }
    }
  }
  fs::remove_all(staging, ec);
  RETURN_IF_ERROR(committed);
  result.app = verified->app;
  result.version = verified->release.version;
  return result;
}

}  // namespace flotilla::node
