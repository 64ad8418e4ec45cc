#include "tracker/publish/publish.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "appspec/app_spec.h"
#include "core/file_io.h"
#include "layerstore/delta.h"
#include "layerstore/layer_store.h"
#include "metadata/offline_window.h"
#include "metadata/repository.h"
#include "metadata/tuf_names.h"
#include "tracker/publish/offline.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

constexpr uint64_t kMaxAppSpecBytes = 1 << 20;

// The release schema's app names (docs/metadata.md): [a-z0-9][a-z0-9._-]{0,62}.
bool IsReleaseAppName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_or_digit(c) || c == '.' || c == '_' || c == '-'; });
}

void Say(const PublishProgressFn& progress, const std::string& line) {
  if (progress) progress(line);
}

// Removes what a killed publish left in staging/ (never visible to devices).
void ClearStaging(const std::string& staging, std::vector<std::string>& notes) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(staging, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
    notes.push_back("removed " + entry.path().string() + " left by an unfinished publish");
  }
}

Result<layerstore::ImageRecord> ImportImage(layerstore::LayerStore& store,
                                            const PublishRequest& request,
                                            const PublishProgressFn& progress) {
  layerstore::ImportOptions options;
  options.select = request.select;
  if (!request.platform.empty()) {
    ASSIGN_OR_RETURN(options.platform, layerstore::Platform::Parse(request.platform));
  }
  layerstore::Phase last_phase = layerstore::Phase::kDone;
  size_t last_item = 0;
  options.progress = [&](const layerstore::Progress& p) {
    if (p.phase == last_phase && p.item == last_item) return;
    last_phase = p.phase;
    last_item = p.item;
    if (p.items > 0 && p.item > 0) {
      Say(progress, fmt::format("  {} {}/{}", layerstore::PhaseName(p.phase), p.item, p.items));
    } else {
      Say(progress, fmt::format("  {}", layerstore::PhaseName(p.phase)));
    }
  };
  auto image = store.ImportImage(request.image_path, options);
  if (!image.ok()) return image.status().WithContext("import " + request.image_path);
  return image;
}

// The release's image: digests, platform and each layer's diff_id and length.
Result<metadata::ImageRef> DescribeImage(layerstore::LayerStore& store,
                                         const layerstore::ImageRecord& image) {
  metadata::ImageRef ref;
  // A legacy docker-archive has no manifest digest; the config digest (the
  // image ID) stands in for it (docs/publish.md).
  ref.manifest = image.manifest_digest.value_or(image.config_digest);
  ref.config = image.config_digest;
  ref.platform = image.platform.ToString();
  for (const auto& layer : image.layers) {
    ASSIGN_OR_RETURN(auto info, store.FindLayer(layer.diff_id));
    if (!info)
      return Internal("imported layer " + layer.diff_id.ToString() + " is not in the store");
    ref.layers.push_back(metadata::LayerRef{layer.diff_id, info->length});
  }
  return ref;
}

Status MakeArtifacts(layerstore::LayerStore& store, const RepositoryLayout& repo,
                     const metadata::TargetsMetadata& published, const PublishRequest& request,
                     const PublishProgressFn& progress, metadata::Release& release,
                     PublishOutcome& outcome) {
  FullArtifactOptions options;
  options.torrent = TorrentOptions{request.public_url, request.piece_size};
  options.zstd_level = request.zstd_level;
  options.staging_dir = StagingDir(repo);
  const auto& layers = release.image.layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& layer = layers[i];
    const std::string label =
        fmt::format("layer {}/{} {}", i + 1, layers.size(), layer.diff_id.ToString().substr(0, 19));
    if (auto reused = FindPublishedFullArtifact(published, layer.diff_id, repo)) {
      Say(progress, label + ": artifact already published, reused");
      release.artifacts.push_back(*reused);
      ++outcome.artifacts_reused;
      continue;
    }
    Say(progress, fmt::format("{}: compressing {} bytes", label, layer.length));
    ASSIGN_OR_RETURN(auto artifact,
                     MakeFullArtifact(store, layer.diff_id, layer.length, repo, options, progress));
    Say(progress, fmt::format("{}: artifact {} ({} bytes) and torrent written", label,
                              artifact.sha256.ToString().substr(0, 19), artifact.length));
    release.artifacts.push_back(std::move(artifact));
    ++outcome.artifacts_made;
  }
  return Status::Ok();
}

// The app's published releases, newest first, at most `count`.
std::vector<metadata::Release> RecentReleases(const metadata::TargetsMetadata& targets,
                                              const std::string& app, int count) {
  std::vector<metadata::Release> releases;
  for (const auto& [name, target] : targets.targets) {
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    auto release = metadata::ParseRelease(target.custom);
    if (release.ok() && release->app == app) releases.push_back(std::move(release).value());
  }
  std::sort(releases.begin(), releases.end(),
            [](const auto& a, const auto& b) { return a.version > b.version; });
  if (releases.size() > static_cast<size_t>(std::max(count, 0))) releases.resize(count);
  return releases;
}

// Encodes one delta of `target` from `bases` and adds it as an artifact, or
// returns nullopt when it is not worth it (>= max_ratio x the full artifact).
Result<std::optional<metadata::Artifact>> MakeDeltaArtifact(
    layerstore::LayerStore& store, const RepositoryLayout& repo, const PublishRequest& request,
    const std::vector<Digest>& bases, const Digest& target, uint64_t full_length) {
  const std::string path = StagingDir(repo) + "/" + target.Hex() + ".delta";
  layerstore::DeltaEncodeOptions options;
  options.level = request.zstd_level;
  options.threads = request.delta_threads;
  ASSIGN_OR_RETURN(auto stats, layerstore::EncodeDelta(store, bases, target, path, options));
  struct Remove {
    std::string path;
    ~Remove() { std::filesystem::remove(path); }
  } remove{path};
  if (static_cast<double>(stats.header.delta_length) >=
      request.delta_max_ratio * static_cast<double>(full_length)) {
    return std::optional<metadata::Artifact>();
  }
  ASSIGN_OR_RETURN(ArtifactTorrent made,
                   AddArtifact(repo, path, TorrentOptions{request.public_url, request.piece_size}));
  metadata::Artifact artifact;
  artifact.layer = target;
  artifact.kind = metadata::ArtifactKind::kDelta;
  artifact.bases = bases;
  artifact.sha256 = made.sha256;
  artifact.length = made.length;
  artifact.info_hash = made.info_hash_v2;
  artifact.compression = "none";
  return std::optional<metadata::Artifact>(artifact);
}

// Deltas for each layer of `release` from each of the app's recent releases
// (bases: all layers of the old release, which the store still holds).
Status MakeDeltaArtifacts(layerstore::LayerStore& store, const RepositoryLayout& repo,
                          const metadata::TargetsMetadata& published, const PublishRequest& request,
                          const PublishProgressFn& progress, metadata::Release& release,
                          PublishOutcome& outcome) {
  std::map<Digest, uint64_t> full_length;
  for (const auto& a : release.artifacts) full_length[a.layer] = a.length;
  std::set<Digest> made;  // artifact sha256s already listed
  for (const auto& old : RecentReleases(published, release.app, request.delta_releases)) {
    std::vector<Digest> bases;
    for (const auto& layer : old.image.layers) {
      if (std::find(bases.begin(), bases.end(), layer.diff_id) == bases.end()) {
        bases.push_back(layer.diff_id);
      }
    }
    bool bases_held = true;
    for (const Digest& base : bases) {
      ASSIGN_OR_RETURN(auto info, store.FindLayer(base));
      bases_held = bases_held && info && info->state == layerstore::LayerState::kReady;
    }
    if (!bases_held) {
      Say(progress,
          fmt::format("release {}: its layers are no longer in the store, no deltas", old.version));
      continue;
    }
    for (const auto& layer : release.image.layers) {
      if (std::find(bases.begin(), bases.end(), layer.diff_id) != bases.end()) continue;
      const std::string label = fmt::format("delta {} from release {}",
                                            layer.diff_id.ToString().substr(0, 19), old.version);
      ASSIGN_OR_RETURN(auto artifact, MakeDeltaArtifact(store, repo, request, bases, layer.diff_id,
                                                        full_length[layer.diff_id]));
      if (!artifact) {
        Say(progress, label + ": not smaller than the full artifact, skipped");
        ++outcome.deltas_skipped;
        continue;
      }
      Say(progress, fmt::format("{}: {} bytes", label, artifact->length));
      if (!made.insert(artifact->sha256).second) continue;
      release.artifacts.push_back(std::move(*artifact));
      ++outcome.deltas_made;
    }
  }
  return Status::Ok();
}

uint64_t NextVersion(const std::map<std::string, metadata::Release>& latest,
                     const std::string& app) {
  auto it = latest.find(app);
  return it == latest.end() ? 1 : it->second.version + 1;
}

Result<PublishOutcome> PublishLocked(const PublishRequest& request, const RepositoryLayout& repo,
                                     Json app_spec, const Clock& clock,
                                     const PublishProgressFn& progress) {
  PublishOutcome outcome;
  RETURN_IF_ERROR(CreateDirectories(StagingDir(repo), 0700));
  ClearStaging(StagingDir(repo), outcome.recovery_notes);
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, outcome.recovery_notes));
  for (const auto& note : outcome.recovery_notes) Say(progress, "recovered: " + note);
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repo.root, clock));
  const metadata::TargetsMetadata published = meta->AllTargets();
  ASSIGN_OR_RETURN(auto latest, metadata::LatestReleases(published));
  std::optional<metadata::OfflineWindow> window;
  if (request.offline_valid_days > 0) {
    window = metadata::OfflineWindowOfDays(clock.Now(), request.offline_valid_days);
    Status allowed = metadata::CheckWindowAllowed(*window, meta->root());
    if (!allowed.ok()) {
      return FailedPrecondition(
          fmt::format("--offline-valid-days {}: {}; stage a root with "
                      "--offline-window-max-days",
                      request.offline_valid_days, allowed.message()));
    }
  }

  PublishRequest import = request;
  std::optional<metadata::ReleaseSource> source;
  struct RemoveFetched {
    std::string path;
    ~RemoveFetched() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
  } remove_fetched;
  if (request.fetch_image) {
    import.image_path = StagingDir(repo) + "/fetched-image";
    remove_fetched.path = import.image_path;
    ASSIGN_OR_RETURN(FetchedImage fetched, request.fetch_image(import.image_path, progress));
    if (!fetched.platform.empty()) import.platform = fetched.platform;
    source = std::move(fetched.source);
  }
  Say(progress, "importing " + import.image_path);
  ASSIGN_OR_RETURN(auto store, layerstore::LayerStore::Open(LayerStoreDir(repo)));
  ASSIGN_OR_RETURN(auto image, ImportImage(*store, import, progress));
  metadata::Release& release = outcome.release;
  release.source = std::move(source);
  release.offline_window = window;
  release.app = request.app;
  release.version = NextVersion(latest, request.app);
  release.app_spec = std::move(app_spec);
  ASSIGN_OR_RETURN(release.image, DescribeImage(*store, image));
  RETURN_IF_ERROR(MakeArtifacts(*store, repo, published, request, progress, release, outcome));
  RETURN_IF_ERROR(MakeDeltaArtifacts(*store, repo, published, request, progress, release, outcome));
  outcome.target_name = metadata::ReleaseTargetName(release.app, release.version);
  const auto& delegations = meta->targets().delegations;
  const std::string role = metadata::AppRoleName(release.app);
  if (delegations && delegations->KeysOf(role)) {
    Say(progress,
        fmt::format("staging {} release {} for the {} key", release.app, release.version, role));
    ASSIGN_OR_RETURN(auto staged, metadata::StageRelease(*meta, release, request.role_expiry));
    ASSIGN_OR_RETURN(outcome.pending_path, WritePending(repo, role, staged));
    if (request.also_top_level) {
      ASSIGN_OR_RETURN(auto top, metadata::StageRelease(*meta, release, request.role_expiry,
                                                        metadata::StageIn::kTopLevel));
      ASSIGN_OR_RETURN(outcome.pending_top_level_path, WritePending(repo, "targets", top));
    }
    return outcome;
  }
  ASSIGN_OR_RETURN(auto ring,
                   LoadRoleKeys(repo, meta->root(),
                                {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                                 metadata::RoleType::kTimestamp}));
  Say(progress, fmt::format("signing {} release {}", release.app, release.version));
  metadata::TargetsMetadata signed_targets;
  auto sign = [&](metadata::Repository& recorded) -> Status {
    RETURN_IF_ERROR(metadata::PublishRelease(recorded, release, ring));
    signed_targets = recorded.targets();
    return Status::Ok();
  };
  RETURN_IF_ERROR_CTX(WriteRecorded(repo, clock, {}, sign), "sign release");
  RETURN_IF_ERROR_CTX(RecordReleases(repo, signed_targets, clock), "record release");
  return outcome;
}

}  // namespace

Result<Json> LoadAppSpec(const std::string& path, const std::string& app) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxAppSpecBytes));
  auto json = ParseJsonStrict(text);
  if (!json.ok()) return json.status().WithContext("app spec " + path);
  auto spec = appspec::ParseAppSpec(*json);
  if (!spec.ok()) return spec.status().WithContext("app spec " + path);
  if (spec->name != app) {
    return InvalidArgument("app spec " + path + ": name '" + spec->name +
                           "' is not the app being published, '" + app + "'");
  }
  return json;
}

Result<PublishOutcome> PublishImage(const PublishRequest& request, const Clock& clock,
                                    const PublishProgressFn& progress) {
  if (request.public_url.empty()) return InvalidArgument("publish: no public URL configured");
  const std::string& spec_app = request.spec_app.empty() ? request.app : request.spec_app;
  ASSIGN_OR_RETURN(Json app_spec, LoadAppSpec(request.spec_path, spec_app));
  if (spec_app != request.app) {
    if (!app_spec.contains("hostname")) app_spec["hostname"] = spec_app;
    app_spec["name"] = request.app;
  }
  if (!IsReleaseAppName(request.app)) {
    return InvalidArgument("publish: app name '" + request.app +
                           "' must be 1-63 of [a-z0-9._-], starting with a letter or digit");
  }
  const RepositoryLayout repo{request.repository};
  ASSIGN_OR_RETURN(PublishLock lock, PublishLock::Acquire(repo, /*wait=*/true));
  auto outcome = PublishLocked(request, repo, std::move(app_spec), clock, progress);
  if (!outcome.ok()) return std::move(outcome).WithContext("publish " + request.app);
  return outcome;
}

Status RecordReleases(const RepositoryLayout& repo, const metadata::TargetsMetadata& targets,
                      const Clock& clock) {
  ASSIGN_OR_RETURN(const std::string database, RepositoryDatabaseUrl(repo));
  ASSIGN_OR_RETURN(auto db, DeviceDb::Open(database, clock));
  for (const auto& [name, target] : targets.targets) {
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    ASSIGN_OR_RETURN(auto release, metadata::ParseRelease(target.custom));
    RETURN_IF_ERROR(db->RecordRelease(release.app, std::to_string(release.version)));
  }
  return Status::Ok();
}

Result<std::map<std::string, std::vector<metadata::Release>>> ListPublishedReleases(
    const RepositoryLayout& repo) {
  ASSIGN_OR_RETURN(PublishedMetadata published, ReadPublishedMetadata(repo));
  metadata::TargetsMetadata all = published.targets;
  for (const auto& [file, info] : published.snapshot.meta) {
    if (file == "targets.json" || !file.ends_with(".json")) continue;
    const std::string path = repo.root + "/metadata/" + std::to_string(info.version) + "." +
                             metadata::PercentEncode(file.substr(0, file.size() - 5)) + ".json";
    ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(path, 64 << 20));
    ASSIGN_OR_RETURN(auto doc, metadata::ParseSignedDocument(bytes, 64 << 20));
    ASSIGN_OR_RETURN(auto role, metadata::ParseTargets(doc.signed_json).WithContext(path));
    all.targets.insert(role.targets.begin(), role.targets.end());
  }
  std::map<std::string, std::vector<metadata::Release>> out;
  for (const auto& [name, target] : all.targets) {
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    auto release = metadata::ParseRelease(target.custom);
    if (!release.ok()) return release.status().WithContext(name);
    out[release->app].push_back(std::move(release).value());
  }
  for (auto& [app, releases] : out) {
    std::sort(releases.begin(), releases.end(),
              [](const auto& a, const auto& b) { return a.version < b.version; });
  }
  return out;
}

}  // namespace flotilla::tracker
