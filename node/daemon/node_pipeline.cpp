// The daemon's release pipeline: what to fetch for a release, the fetch, the
// rebuild of each layer into the store, and failures.
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cerrno>

#include "layerstore/byte_source.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kFreeSpaceReserve = 32ull << 20;

ArtifactRequest RequestOf(const metadata::Artifact& a) {
  return ArtifactRequest{a.sha256, a.length, a.info_hash};
}

const metadata::Artifact* FullArtifactOf(const metadata::Release& release, const Digest& layer) {
  for (const auto& a : release.artifacts) {
    if (a.layer == layer && a.kind == metadata::ArtifactKind::kFull) return &a;
  }
  return nullptr;
}

std::string MiB(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

Result<std::vector<metadata::Artifact>> NodeDaemon::ArtifactsToFetch(
    const metadata::Release& release) {
  std::vector<metadata::Artifact> out;
  for (const auto& layer : release.image.layers) {
    ASSIGN_OR_RETURN(auto held, store_->FindLayer(layer.diff_id));
    if (held) continue;
    const metadata::Artifact* full = FullArtifactOf(release, layer.diff_id);
    if (full == nullptr) return Corruption("no full artifact for layer " + layer.diff_id.ToString());
    out.push_back(*full);
  }
  return out;
}

Status NodeDaemon::CheckFreeSpace(const std::vector<metadata::Artifact>& artifacts,
                                  const metadata::Release& release) {
  uint64_t artifact_bytes = 0, layer_bytes = 0;
  for (const auto& a : artifacts) {
    artifact_bytes += a.length;
    for (const auto& layer : release.image.layers) {
      if (layer.diff_id == a.layer) layer_bytes += layer.length;
    }
  }
  struct statvfs fs {};
  if (::statvfs(layout_.root.c_str(), &fs) != 0) {
    return IOErrorFromErrno("statvfs " + layout_.root, errno);
  }
  const uint64_t free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  const uint64_t needed = artifact_bytes + layer_bytes + kFreeSpaceReserve;
  if (needed > free_bytes) {
    return ResourceExhausted("release " + std::to_string(release.version) + " needs " +
                             MiB(needed) + " (artifacts " + MiB(artifact_bytes) + ", layers " +
                             MiB(layer_bytes) + ", reserve " + MiB(kFreeSpaceReserve) +
                             ") but data_dir has " + MiB(free_bytes) + " free");
  }
  return Status::Ok();
}

void NodeDaemon::StartRelease(const std::string& app, const metadata::Release& release) {
  releases_[app] = release;
  AppState& a = state_.apps[app];
  if (a.target_release != release.version) {
    a.target_release = release.version;
    a.bytes_from_peers = a.bytes_from_origin = 0;
  }
  a.last_error.clear();
  auto artifacts = ArtifactsToFetch(release);
  if (!artifacts.ok()) return FailRelease(app, artifacts.status(), true);
  Status space = CheckFreeSpace(*artifacts, release);
  if (!space.ok()) return FailRelease(app, space, false);
  for (const auto& artifact : *artifacts) {
    Status st = fetcher_->Want(RequestOf(artifact));
    if (!st.ok()) return FailRelease(app, st, false);
  }
  Transfer& t = transfers_[app];
  t = Transfer{};
  t.artifacts = std::move(*artifacts);
  t.last_progress = clock_.MonotonicNow();
  a.phase = AppPhase::kDownloading;
  SaveState();
  report_due_ = true;
}

void NodeDaemon::FailRelease(const std::string& app, const Status& why, bool permanent) {
  AppState& a = state_.apps[app];
  const uint64_t version = a.target_release;
  std::string message = "app " + app + " release " + std::to_string(version) + ": " +
                        why.ToString() + (permanent ? "" : " (will retry)");
  spdlog::error("{}", message);
  a.phase = AppPhase::kFailed;
  a.last_error = why.ToString();
  if (permanent) a.failed_release = version;
  transfers_.erase(app);
  AddError(message);
  SaveState();
  report_due_ = true;
}

void NodeDaemon::CountBytes(const std::string& app, const Digest& artifact,
                            const FetchProgress& p) {
  auto& [peers, origin] = counted_[artifact];
  AppState& a = state_.apps[app];
  if (p.bytes_from_peers >= peers) a.bytes_from_peers += p.bytes_from_peers - peers;
  if (p.bytes_from_origin >= origin) a.bytes_from_origin += p.bytes_from_origin - origin;
  peers = p.bytes_from_peers;
  origin = p.bytes_from_origin;
}

void NodeDaemon::DriveApp(const std::string& app) {
  auto it = transfers_.find(app);
  if (it == transfers_.end()) return;
  Transfer& t = it->second;
  uint64_t done = 0, total = 0;
  bool complete = true;
  std::string fetch_error;
  for (const auto& artifact : t.artifacts) {
    auto p = fetcher_->Progress(artifact.sha256);
    if (!p.ok()) return FailRelease(app, p.status(), false);
    CountBytes(app, artifact.sha256, *p);
    if (p->state == FetchState::kFailed) return FailRelease(app, Corruption(p->error), true);
    done += p->bytes_verified;
    total += artifact.length;
    complete = complete && p->state == FetchState::kComplete;
    if (!p->error.empty()) fetch_error = p->error;
  }
  const MonoTime now = clock_.MonotonicNow();
  if (done != t.done) {
    t.last_progress = now;
    t.stall_reported = false;
  } else if (!complete && !t.stall_reported &&
             now - t.last_progress > std::chrono::seconds(config_.stall_timeout_s)) {
    t.stall_reported = true;
    AddError("app " + app + ": transfer stalled for " + std::to_string(config_.stall_timeout_s) +
             " s" + (fetch_error.empty() ? "" : ": " + fetch_error));
  }
  t.done = done;
  t.total = total;
  if (complete) FinishRelease(app);
}

void NodeDaemon::FinishRelease(const std::string& app) {
  AppState& a = state_.apps[app];
  const metadata::Release& release = releases_.at(app);
  a.phase = AppPhase::kVerifying;
  SaveState();
  Status st = Rebuild(release);
  if (!st.ok()) {
    // A layer that does not match its signed diff_id came from a verified
    // artifact: the release itself is bad, retrying cannot help.
    return FailRelease(app, st, st.code() == StatusCode::kCorruption);
  }
  spdlog::info("app {}: release {} fetched, every layer rebuilt and verified (peers {} B, "
               "origin {} B)", app, release.version, a.bytes_from_peers, a.bytes_from_origin);
  a.ready_release = release.version;
  a.target_release = 0;
  a.phase = AppPhase::kReady;
  a.last_error.clear();
  if (config_.transfer_mode == TransferMode::kHttpOnly) {
    for (const auto& artifact : transfers_[app].artifacts) {
      Status forget = fetcher_->Forget(artifact.sha256);
      if (!forget.ok()) spdlog::warn("{}", forget.ToString());
      counted_.erase(artifact.sha256);
    }
  }
  transfers_.erase(app);
  SaveState();
  report_due_ = true;
}

Status NodeDaemon::Rebuild(const metadata::Release& release) {
  for (const auto& layer : release.image.layers) {
    ASSIGN_OR_RETURN(auto held, store_->FindLayer(layer.diff_id));
    if (held) continue;
    const metadata::Artifact* artifact = FullArtifactOf(release, layer.diff_id);
    if (artifact == nullptr) return Corruption("no artifact for " + layer.diff_id.ToString());
    ASSIGN_OR_RETURN(std::string path, fetcher_->CompletedPath(artifact->sha256));
    ASSIGN_OR_RETURN(auto file, layerstore::OpenFileSource(path));
    ASSIGN_OR_RETURN(auto tar, layerstore::DecompressingByteSource::Open(*file, layer.length));
    auto info = store_->UnpackLayer(*tar, layer.diff_id, layer.length, layerstore::UnpackOptions{});
    if (!info.ok()) return info.status().WithContext("layer " + layer.diff_id.ToString());
  }
  return Status::Ok();
}

}  // namespace flotilla::node
