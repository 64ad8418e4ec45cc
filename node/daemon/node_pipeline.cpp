// The daemon's release pipeline: plan what to fetch (layerstore's update
// planner: full layers, deltas or chains of deltas, with a fallback path per
// layer), fetch it, rebuild each layer into the store, and fail over to the
// fallback when an artifact fails verification, stalls, or rebuilds wrong.
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>

#include "core/file_io.h"
#include "layerstore/byte_source.h"
#include "layerstore/delta.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kFreeSpaceReserve = 32ull << 20;

ArtifactRequest RequestOf(const metadata::Artifact& a) {
  return ArtifactRequest{a.sha256, a.length, a.info_hash};
}

const metadata::Artifact* ArtifactById(const metadata::Release& release, const Digest& id) {
  for (const auto& a : release.artifacts) {
    if (a.sha256 == id) return &a;
  }
  return nullptr;
}

uint64_t LayerLength(const metadata::Release& release, const Digest& diff_id) {
  for (const auto& layer : release.image.layers) {
    if (layer.diff_id == diff_id) return layer.length;
  }
  return 0;
}

std::string MiB(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// A full disk is not the release's fault: the update fails, is retried at the
// next refresh, and what it wrote is reclaimed.
bool IsDiskFull(const Status& st) {
  return st.code() == StatusCode::kResourceExhausted ||
         st.message().find("No space left on device") != std::string::npos;
}

}  // namespace

Result<layerstore::UpdatePlan> NodeDaemon::PlanRelease(const metadata::Release& release) {
  ASSIGN_OR_RETURN(auto layers, store_->ListLayers());
  std::vector<Digest> held, wanted;
  for (const auto& l : layers) {
    if (l.state == layerstore::LayerState::kReady) held.push_back(l.diff_id);
  }
  for (const auto& l : release.image.layers) wanted.push_back(l.diff_id);
  std::vector<layerstore::PlannerArtifact> artifacts;
  for (const auto& a : release.artifacts) {
    const bool delta = a.kind == metadata::ArtifactKind::kDelta;
    if (delta && !config_.deltas) continue;
    artifacts.push_back(
        {a.sha256, a.layer,
         delta ? layerstore::PlannerArtifactKind::kDelta : layerstore::PlannerArtifactKind::kFull,
         a.bases, a.length});
  }
  return layerstore::PlanUpdate(held, wanted, artifacts);
}

std::vector<metadata::Artifact> NodeDaemon::CurrentArtifacts(const std::string& app) {
  const Transfer& t = transfers_.at(app);
  const metadata::Release& release = releases_.at(app);
  std::vector<metadata::Artifact> out;
  std::set<Digest> seen;
  for (size_t i = 0; i < t.plans.size(); ++i) {
    const auto& path = t.on_fallback[i] ? *t.plans[i].fallback : t.plans[i].best;
    for (const auto& step : path.steps) {
      const metadata::Artifact* a = ArtifactById(release, step.id);
      if (a != nullptr && seen.insert(step.id).second) out.push_back(*a);
    }
  }
  return out;
}

Status NodeDaemon::WantCurrentArtifacts(const std::string& app) {
  Transfer& t = transfers_.at(app);
  t.artifacts = CurrentArtifacts(app);
  for (const auto& artifact : t.artifacts) RETURN_IF_ERROR(fetcher_->Want(RequestOf(artifact)));
  return Status::Ok();
}

Status NodeDaemon::CheckFreeSpace(const std::vector<metadata::Artifact>& artifacts,
                                  const metadata::Release& release) {
  uint64_t artifact_bytes = 0, layer_bytes = 0, delta_temp = 0;
  for (const auto& a : artifacts) {
    artifact_bytes += a.length;
    const uint64_t length = LayerLength(release, a.layer);
    layer_bytes += length;
    // A delta rebuilds its layer's tar into a temporary file before the unpack.
    if (a.kind == metadata::ArtifactKind::kDelta) delta_temp = std::max(delta_temp, length);
  }
  struct statvfs fs {};
  if (::statvfs(layout_.root.c_str(), &fs) != 0) {
    return IOErrorFromErrno("statvfs " + layout_.root, errno);
  }
  const uint64_t free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  if (config_.disk_budget_bytes != 0) {
    const uint64_t used = StoreBytes();
    if (used + artifact_bytes + layer_bytes + delta_temp > config_.disk_budget_bytes) {
      return ResourceExhausted("release " + std::to_string(release.version) + " needs " +
                               MiB(artifact_bytes + layer_bytes + delta_temp) + " beside the " +
                               MiB(used) + " kept, over disk_budget_mib " +
                               MiB(config_.disk_budget_bytes));
    }
  }
  const uint64_t needed = artifact_bytes + layer_bytes + delta_temp + kFreeSpaceReserve;
  if (needed > free_bytes) {
    return ResourceExhausted("release " + std::to_string(release.version) + " needs " +
                             MiB(needed) + " (artifacts " + MiB(artifact_bytes) + ", layers " +
                             MiB(layer_bytes + delta_temp) + ", reserve " + MiB(kFreeSpaceReserve) +
                             ") but data_dir has " + MiB(free_bytes) + " free");
  }
  return Status::Ok();
}

Status NodeDaemon::ReopenFetcher() {
  fetcher_.reset();
  counted_.clear();  // a new fetcher counts its bytes from zero
  RETURN_IF_ERROR(OpenFetcher());
  for (const auto& [app, transfer] : transfers_) RETURN_IF_ERROR(WantCurrentArtifacts(app));
  // Kept releases' artifacts are seeded again.
  for (const auto& [app, a] : state_.apps) {
    for (const auto& kept : a.kept) {
      const metadata::Release* release = nullptr;
      if (auto r = releases_.find(app); r != releases_.end() && r->second.version == kept.version) {
        release = &r->second;
      }
      if (release == nullptr) continue;
      for (const auto& artifact : release->artifacts) {
        if (std::find(kept.artifacts.begin(), kept.artifacts.end(), artifact.sha256) !=
            kept.artifacts.end()) {
          RETURN_IF_ERROR(fetcher_->Want(RequestOf(artifact)));
        }
      }
    }
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
  auto plan = PlanRelease(release);
  if (!plan.ok()) return FailRelease(app, plan.status(), true);
  Transfer& t = transfers_[app];
  t = Transfer{};
  t.plans = std::move(plan->layers);
  t.on_fallback.assign(t.plans.size(), false);
  t.last_progress = clock_.MonotonicNow();
  Status space = CheckFreeSpace(CurrentArtifacts(app), release);
  if (!space.ok()) return FailRelease(app, space, false);
  Status want = WantCurrentArtifacts(app);
  if (!want.ok()) return FailRelease(app, want, false);
  spdlog::info("app {}: release {}: {} layer(s) to get, {} byte(s) planned", app, release.version,
               t.plans.size(), plan->total_bytes);
  a.phase = AppPhase::kDownloading;
  SaveState();
  report_due_ = true;
}

bool NodeDaemon::SwitchToFallback(const std::string& app, size_t index, const std::string& why) {
  Transfer& t = transfers_.at(app);
  if (t.on_fallback[index] || !t.plans[index].fallback) return false;
  t.on_fallback[index] = true;
  AddError("app " + app + ": layer " + t.plans[index].layer.ToString() + ": " + why +
           "; using the fallback path");
  spdlog::warn("app {}: {}; layer {} switches to its fallback path", app, why,
               t.plans[index].layer.ToString());
  for (const auto& step : t.plans[index].best.steps) {
    Status st = fetcher_->Forget(step.id);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
  }
  Status want = WantCurrentArtifacts(app);
  if (!want.ok()) spdlog::warn("{}", want.ToString());
  t.last_progress = clock_.MonotonicNow();
  t.stall_reported = false;
  return true;
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
  if (!permanent) DelayRetry(app, version);
  if (IsDiskFull(why)) ReclaimTransfer(app);
  transfers_.erase(app);
  AddError(message);
  SaveState();
  report_due_ = true;
}

void NodeDaemon::DelayRetry(const std::string& app, uint64_t version) {
  RetryWait& wait = retry_waits_[app];
  if (wait.version != version) wait = RetryWait{version, 0, {}};
  wait.failures = std::min<uint32_t>(wait.failures + 1, 30);
  const double seconds = std::min(
      double{config_.refresh_interval_s} * (1u << std::min<uint32_t>(wait.failures - 1, 20)),
      double{config_.max_backoff_s});
  wait.not_before = clock_.MonotonicNow() +
                    std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  spdlog::info("app {}: release {} is retried in {:.0f} s at the earliest", app, version, seconds);
}

bool NodeDaemon::RetryDue(const std::string& app, uint64_t version) const {
  auto it = retry_waits_.find(app);
  return it == retry_waits_.end() || it->second.version != version ||
         clock_.MonotonicNow() >= it->second.not_before;
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
  if (!transfers_.count(app)) return;
  Transfer& t = transfers_.at(app);
  uint64_t done = 0, total = 0;
  bool complete = true;
  std::string fetch_error;
  for (size_t i = 0; i < t.plans.size(); ++i) {
    const auto& path = t.on_fallback[i] ? *t.plans[i].fallback : t.plans[i].best;
    for (const auto& step : path.steps) {
      auto p = fetcher_->Progress(step.id);
      if (!p.ok()) return FailRelease(app, p.status(), false);
      CountBytes(app, step.id, *p);
      if (!p->error.empty() && IsDiskFull(Internal(p->error))) {
        return FailRelease(app, ResourceExhausted(p->error), false);
      }
      if (p->state == FetchState::kFailed) {
        if (SwitchToFallback(app, i, p->error)) return;
        return FailRelease(app, Corruption(p->error), true);
      }
      done += p->bytes_verified;
      total += step.length;
      complete = complete && p->state == FetchState::kComplete;
      if (!p->error.empty()) fetch_error = p->error;
    }
  }
  const MonoTime now = clock_.MonotonicNow();
  if (done != t.done) {
    t.last_progress = now;
    t.stall_reported = false;
  } else if (!complete && !t.stall_reported &&
             now - t.last_progress > std::chrono::seconds(config_.stall_timeout_s)) {
    t.stall_reported = true;
    const std::string why = "transfer stalled for " + std::to_string(config_.stall_timeout_s) +
                            " s" + (fetch_error.empty() ? "" : ": " + fetch_error);
    bool switched = false;
    for (size_t i = 0; i < t.plans.size() && !switched; ++i)
      switched = SwitchToFallback(app, i, why);
    if (switched) return;
    AddError("app " + app + ": " + why);
  }
  if (fetch_error != t.last_fetch_error && !fetch_error.empty()) {
    spdlog::warn("app {}: release {}: fetching: {}", app, releases_.at(app).version, fetch_error);
  }
  t.last_fetch_error = fetch_error;
  t.done = done;
  t.total = total;
  if (complete) FinishRelease(app);
}

void NodeDaemon::FinishRelease(const std::string& app) {
  AppState& a = state_.apps[app];
  const metadata::Release& release = releases_.at(app);
  a.phase = AppPhase::kVerifying;
  SaveState();
  spdlog::info("app {}: release {}: every artifact complete; rebuilding its layers", app,
               release.version);
  size_t failed_layer = 0;
  Status st = Rebuild(app, failed_layer);
  if (!st.ok() && IsDiskFull(st)) return FailRelease(app, st, false);
  if (!st.ok()) {
    if (SwitchToFallback(app, failed_layer, "rebuild failed: " + st.ToString())) {
      a.phase = AppPhase::kDownloading;
      SaveState();
      return;
    }
    // A layer that does not match its signed diff_id came from verified
    // artifacts: the release itself is bad, retrying cannot help.
    return FailRelease(app, st, st.code() == StatusCode::kCorruption);
  }
  spdlog::info(
      "app {}: release {} fetched, every layer rebuilt and verified (peers {} B, "
      "origin {} B)",
      app, release.version, a.bytes_from_peers, a.bytes_from_origin);
  a.ready_release = release.version;
  a.target_release = 0;
  a.phase = AppPhase::kReady;
  a.last_error.clear();
  KeptRelease kept{release.version, {}, {}};
  for (const auto& layer : release.image.layers) kept.layers.push_back(layer.diff_id);
  if (config_.transfer_mode == TransferMode::kP2p) {
    for (const auto& artifact : transfers_.at(app).artifacts)
      kept.artifacts.push_back(artifact.sha256);
  }
  std::erase_if(a.kept, [&](const KeptRelease& k) { return k.version == release.version; });
  a.kept.push_back(std::move(kept));
  if (config_.transfer_mode == TransferMode::kHttpOnly) {
    for (const auto& artifact : transfers_.at(app).artifacts) {
      Status forget = fetcher_->Forget(artifact.sha256);
      if (!forget.ok()) spdlog::warn("{}", forget.ToString());
      counted_.erase(artifact.sha256);
    }
  }
  transfers_.erase(app);
  SaveState();
  report_due_ = true;
  if (!runtime_) return;
  DeployReady(app);
}

Status NodeDaemon::RebuildStep(const layerstore::PlannerArtifact& step,
                               const metadata::Release& release) {
  ASSIGN_OR_RETURN(auto held, store_->FindLayer(step.layer));
  if (held && held->state == layerstore::LayerState::kReady) return Status::Ok();
  ASSIGN_OR_RETURN(std::string path, fetcher_->CompletedPath(step.id));
  ASSIGN_OR_RETURN(auto file, layerstore::OpenFileSource(path));
  const bool delta = step.kind == layerstore::PlannerArtifactKind::kDelta;
  const std::string layer_name = step.layer.Hex().substr(0, 12);
  spdlog::debug("layer {}: rebuilding from the {} artifact {}", layer_name,
                delta ? "delta" : "full", step.id.Hex().substr(0, 12));
  // One log line per store phase (unpacking, promoting, indexing, done).
  auto progress = [&layer_name, last = std::optional<layerstore::Phase>()](
                      const layerstore::Progress& p) mutable {
    if (last == p.phase) return;
    last = p.phase;
    spdlog::debug("layer {}: {}", layer_name, layerstore::PhaseName(p.phase));
  };
  if (delta) {
    layerstore::DeltaApplyOptions options;
    options.temp_dir = layout_.root + "/tmp";
    options.progress = progress;
    RETURN_IF_ERROR(CreateDirectories(options.temp_dir, 0700));
    auto info = layerstore::ApplyDeltaToStore(*store_, *file, options, &step.layer);
    return info.status().WithContext("delta " + step.id.ToString());
  }
  const uint64_t length = LayerLength(release, step.layer);
  if (length == 0) return Corruption("layer " + step.layer.ToString() + " is not in the release");
  ASSIGN_OR_RETURN(auto tar, layerstore::DecompressingByteSource::Open(*file, length));
  auto info = store_->UnpackLayer(*tar, step.layer, length, layerstore::UnpackOptions{}, progress);
  return info.status().WithContext("layer " + step.layer.ToString());
}

Status NodeDaemon::Rebuild(const std::string& app, size_t& failed_layer) {
  const Transfer& t = transfers_.at(app);
  const metadata::Release& release = releases_.at(app);
  for (size_t i = 0; i < t.plans.size(); ++i) {
    const auto& path = t.on_fallback[i] ? *t.plans[i].fallback : t.plans[i].best;
    for (const auto& step : path.steps) {
      failed_layer = i;
      RETURN_IF_ERROR(RebuildStep(step, release));
    }
  }
  return Status::Ok();
}

}  // namespace flotilla::node
