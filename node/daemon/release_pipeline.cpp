#include "node/daemon/release_pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace flotilla::node {
namespace {

// The report's failure kind (docs/tracker.md, `failure`): a release that
// fails for good was refused (its plan, an artifact or a layer did not
// match what was signed); the rest is retried.
std::string FailureKind(const Status& why, bool permanent) {
  if (permanent) return "verification";
  if (IsDiskFull(why) || why.code() == StatusCode::kResourceExhausted) return "disk";
  return "transfer";
}

}  // namespace

ReleasePipeline::ReleasePipeline(PipelineOptions options, StateFile& state, StoreWorker& store,
                                 std::unique_ptr<ArtifactFetcher> fetcher, const Clock& clock,
                                 Executor& loop, PipelineEvents events)
    : options_(std::move(options)),
      state_(state),
      store_(store),
      fetcher_(std::move(fetcher)),
      clock_(clock),
      events_(std::move(events)),
      timer_(loop),
      retries_(std::chrono::seconds(options_.refresh_interval_s),
               std::chrono::seconds(options_.max_backoff_s)) {}

void ReleasePipeline::Tick() {
  std::vector<std::string> apps;
  for (const auto& [app, t] : transfers_) apps.push_back(app);
  for (const auto& app : apps) Drive(app);
  const MonoTime now = clock_.MonotonicNow();
  for (auto& [app, t] : transfers_) t.SampleRate(now);
  timer_.Schedule(std::chrono::seconds(1), [this] { Tick(); });
}

void ReleasePipeline::Offer(const std::string& app, const metadata::Release& release) {
  const AppState& a = state_.app(app);
  const uint64_t version = release.version;
  if (version == a.failed_release || version <= a.ready_release) return;
  if (auto t = transfers_.find(app);
      t != transfers_.end() && t->second.release.version == version) {
    return;  // already being fetched
  }
  if (!retries_.Due(app, version, clock_.MonotonicNow())) return;  // failed lately
  spdlog::info("app {}: release {} is newer than {}", app, version, a.ready_release);
  Begin(app, release);
}

void ReleasePipeline::OfferChosen(const std::string& app, const metadata::Release& release) {
  const AppState& a = state_.app(app);
  const uint64_t version = release.version;
  if (version == a.failed_release || version == a.ready_release) return;
  if (auto t = transfers_.find(app);
      t != transfers_.end() && t->second.release.version == version) {
    return;  // already being fetched
  }
  if (!retries_.Due(app, version, clock_.MonotonicNow())) return;  // failed lately
  spdlog::info("app {}: release {} is the fleet's choice (ready: {})", app, version,
               a.ready_release);
  Begin(app, release);
}

void ReleasePipeline::Begin(const std::string& app, const metadata::Release& release) {
  AppState& a = state_.app(app);
  if (a.target_release != release.version) {
    a.target_release = release.version;
    a.bytes_from_peers = a.bytes_from_origin = 0;
  }
  a.last_error.clear();
  a.failure.clear();
  // Another platform's image is never fetched; what runs keeps running.
  if (Status runs = CheckRunsHere(release, options_.platform); !runs.ok()) {
    return Fail(app, runs, true);
  }
  fetched_[app] = release;
  auto plan = PlanRelease(release, store_.ReadyLayers(), options_.deltas);
  if (!plan.ok()) return Fail(app, plan.status(), true);
  ReleaseTransfer& t = transfers_[app];
  t = ReleaseTransfer{};
  t.release = release;
  t.plans = std::move(plan->layers);
  t.on_fallback.assign(t.plans.size(), false);
  t.last_progress = clock_.MonotonicNow();
  Status space = CheckFreeSpace(t.CurrentArtifacts(), release, options_.data_dir, store_.bytes(),
                                options_.disk_budget_bytes);
  if (!space.ok()) return Fail(app, space, false);
  if (Status want = WantCurrentArtifacts(t); !want.ok()) return Fail(app, want, false);
  spdlog::info("app {}: release {}: {} layer(s) to get, {} byte(s) planned", app, release.version,
               t.plans.size(), plan->total_bytes);
  ForgetSeeded(app, [&](uint64_t seeded) { return seeded < release.version; });  // superseded
  a.phase = AppPhase::kDownloading;
  state_.Save();
  events_.changed();
}

Status ReleasePipeline::WantCurrentArtifacts(ReleaseTransfer& t) {
  t.artifacts = t.CurrentArtifacts();
  for (const auto& artifact : t.artifacts) RETURN_IF_ERROR(fetcher_->Want(RequestOf(artifact)));
  return Status::Ok();
}

void ReleasePipeline::Drive(const std::string& app) {
  ReleaseTransfer& t = transfers_.at(app);
  if (t.rebuilding) return;
  uint64_t done = 0, total = 0;
  bool complete = true;
  std::string fetch_error;
  for (size_t i = 0; i < t.plans.size(); ++i) {
    for (const auto& step : t.Path(i).steps) {
      auto p = fetcher_->Progress(step.id);
      if (!p.ok()) return Fail(app, p.status(), false);
      CountBytes(app, step.id, *p);
      NoteBadPeers(app, *p);
      if (!p->error.empty() && IsDiskFull(Internal(p->error))) {
        return Fail(app, ResourceExhausted(p->error), false);
      }
      if (p->state == FetchState::kFailed) {
        if (SwitchToFallback(app, i, p->error)) return;
        return Fail(app, Corruption(p->error), true);
      }
      done += p->bytes_verified;
      total += step.length;
      complete = complete && p->state == FetchState::kComplete;
      if (!p->error.empty()) fetch_error = p->error;
    }
  }
  if (done != t.done) {
    t.last_progress = clock_.MonotonicNow();
    t.stall_reported = false;
  }
  t.done = done;
  t.total = total;
  DetectStall(app, complete, fetch_error);
  if (complete) Rebuild(app);
}

void ReleasePipeline::DetectStall(const std::string& app, bool complete,
                                  const std::string& fetch_error) {
  ReleaseTransfer& t = transfers_.at(app);
  if (fetch_error != t.last_fetch_error && !fetch_error.empty()) {
    spdlog::warn("app {}: release {}: fetching: {}", app, t.release.version, fetch_error);
  }
  t.last_fetch_error = fetch_error;
  const auto stall_timeout = std::chrono::seconds(options_.stall_timeout_s);
  if (complete || t.stall_reported || clock_.MonotonicNow() - t.last_progress <= stall_timeout) {
    return;
  }
  t.stall_reported = true;
  const std::string why = "transfer stalled for " + std::to_string(options_.stall_timeout_s) +
                          " s" + (fetch_error.empty() ? "" : ": " + fetch_error);
  for (size_t i = 0; i < t.plans.size(); ++i) {
    if (SwitchToFallback(app, i, why)) return;
  }
  events_.error("app " + app + ": " + why);
}

bool ReleasePipeline::SwitchToFallback(const std::string& app, size_t plan,
                                       const std::string& why) {
  ReleaseTransfer& t = transfers_.at(app);
  if (t.on_fallback[plan] || !t.plans[plan].fallback) return false;
  t.on_fallback[plan] = true;
  const std::string layer = t.plans[plan].layer.ToString();
  events_.error("app " + app + ": layer " + layer + ": " + why + "; using the fallback path");
  spdlog::warn("app {}: {}; layer {} switches to its fallback path", app, why, layer);
  for (const auto& step : t.plans[plan].best.steps) {
    Status st = fetcher_->Forget(step.id);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
  }
  Status want = WantCurrentArtifacts(t);
  if (!want.ok()) spdlog::warn("{}", want.ToString());
  t.last_progress = clock_.MonotonicNow();
  t.stall_reported = false;
  return true;
}

void ReleasePipeline::Rebuild(const std::string& app) {
  ReleaseTransfer& t = transfers_.at(app);
  state_.app(app).phase = AppPhase::kVerifying;
  state_.Save();
  spdlog::info("app {}: release {}: every artifact complete; rebuilding its layers", app,
               t.release.version);
  const std::vector<Digest> ready = store_.ReadyLayers();
  std::vector<RebuildStep> steps;
  for (size_t i = 0; i < t.plans.size(); ++i) {
    for (const auto& step : t.Path(i).steps) {
      if (std::find(ready.begin(), ready.end(), step.layer) != ready.end()) continue;
      auto path = fetcher_->CompletedPath(step.id);
      if (!path.ok()) return Rebuilt(app, t.release.version, RebuildResult{path.status(), i, {}});
      steps.push_back({step, *path, LayerLength(t.release, step.layer), i});
    }
  }
  t.rebuilding = true;
  store_.Rebuild(std::move(steps), [this, app, version = t.release.version](RebuildResult r) {
    Rebuilt(app, version, r);
  });
}

void ReleasePipeline::Rebuilt(const std::string& app, uint64_t version,
                              const RebuildResult& result) {
  auto t = transfers_.find(app);
  if (t == transfers_.end() || t->second.release.version != version) return;  // superseded
  t->second.rebuilding = false;
  const Status& st = result.status;
  if (st.ok()) return Ready(app);
  if (IsDiskFull(st)) return Fail(app, st, false);
  if (SwitchToFallback(app, result.failed_plan, "rebuild failed: " + st.ToString())) {
    state_.app(app).phase = AppPhase::kDownloading;
    state_.Save();
    return;
  }
  // A layer that does not match its signed diff_id came from verified
  // artifacts: the release itself is bad, retrying cannot help.
  Fail(app, st, st.code() == StatusCode::kCorruption);
}

void ReleasePipeline::Ready(const std::string& app) {
  AppState& a = state_.app(app);
  const ReleaseTransfer t = std::move(transfers_.at(app));
  transfers_.erase(app);
  const metadata::Release& release = t.release;
  spdlog::info(
      "app {}: release {} fetched, every layer rebuilt and verified (peers {} B, origin {} B)", app,
      release.version, a.bytes_from_peers, a.bytes_from_origin);
  a.ready_release = release.version;
  a.target_release = 0;
  a.phase = AppPhase::kReady;
  a.last_error.clear();
  a.failure.clear();
  KeptRelease kept{release.version, {}, {}};
  for (const auto& layer : release.image.layers) kept.layers.push_back(layer.diff_id);
  for (const auto& artifact : t.artifacts) {
    if (options_.keep_artifacts) {
      kept.artifacts.push_back(artifact.sha256);
    } else if (Status forget = fetcher_->Forget(artifact.sha256); !forget.ok()) {
      spdlog::warn("{}", forget.ToString());
    }
    if (!options_.keep_artifacts) counted_.erase(artifact.sha256);
  }
  if (auto seeded = seeded_.find({app, release.version}); seeded != seeded_.end()) {
    for (const Digest& d : seeded->second) {
      if (std::find(kept.artifacts.begin(), kept.artifacts.end(), d) == kept.artifacts.end()) {
        kept.artifacts.push_back(d);
      }
    }
    seeded_.erase(seeded);
  }
  std::erase_if(a.kept, [&](const KeptRelease& k) { return k.version == release.version; });
  a.kept.push_back(std::move(kept));
  ForgetSeeded(app, [&](uint64_t seeded) { return seeded < release.version; });  // superseded
  state_.Save();
  events_.changed();
  events_.ready(app, release);
}

void ReleasePipeline::Fail(const std::string& app, const Status& why, bool permanent) {
  AppState& a = state_.app(app);
  const uint64_t version = a.target_release;
  const std::string message = "app " + app + " release " + std::to_string(version) + ": " +
                              why.ToString() + (permanent ? "" : " (will retry)");
  spdlog::error("{}", message);
  a.phase = AppPhase::kFailed;
  a.last_error = why.ToString();
  a.failure = FailureKind(why, permanent);
  if (permanent) {
    a.failed_release = version;
  } else {
    const Duration wait = retries_.Failed(app, version, clock_.MonotonicNow());
    spdlog::info("app {}: release {} is retried in {} s at the earliest", app, version,
                 std::chrono::duration_cast<std::chrono::seconds>(wait).count());
  }
  if (auto t = transfers_.find(app); t != transfers_.end() && IsDiskFull(why)) {
    // What the failed transfer wrote goes, unless a kept release still uses it.
    std::set<Digest> kept;
    for (const auto& [name, other] : state_.state().apps) {
      for (const auto& k : other.kept) kept.insert(k.artifacts.begin(), k.artifacts.end());
    }
    std::set<Digest> written;
    for (const auto& artifact : t->second.artifacts) {
      if (!kept.count(artifact.sha256)) written.insert(artifact.sha256);
    }
    ForgetArtifacts(written);
    store_.ClearTemp();
  }
  transfers_.erase(app);
  if (permanent) ForgetSeeded(app, [&](uint64_t seeded) { return seeded == version; });
  events_.error(message);
  state_.Save();
  events_.changed();
}

void ReleasePipeline::CountBytes(const std::string& app, const Digest& artifact,
                                 const FetchProgress& p) {
  auto& [peers, origin] = counted_[artifact];
  AppState& a = state_.app(app);
  if (p.bytes_from_peers >= peers) a.bytes_from_peers += p.bytes_from_peers - peers;
  if (p.bytes_from_origin >= origin) a.bytes_from_origin += p.bytes_from_origin - origin;
  peers = p.bytes_from_peers;
  origin = p.bytes_from_origin;
}

void ReleasePipeline::NoteBadPeers(const std::string& app, const FetchProgress& p) {
  for (const auto& bad : p.bad_peers) {
    if (bad_peers_seen_.emplace(bad.swarm, bad.ip).second) bad_peers_new_[app].push_back(bad);
  }
}

std::vector<BadPeer> ReleasePipeline::TakeBadPeers(const std::string& app) {
  auto node = bad_peers_new_.extract(app);
  return node.empty() ? std::vector<BadPeer>{} : std::move(node.mapped());
}

std::optional<TransferView> ReleasePipeline::Transfer(const std::string& app) const {
  auto t = transfers_.find(app);
  if (t == transfers_.end()) return std::nullopt;
  TransferView view;
  view.done = std::min(t->second.done, t->second.total);
  view.total = t->second.total;
  view.rate_bytes_per_s = t->second.rate;
  for (const auto& artifact : t->second.artifacts) {
    auto p = fetcher_->Progress(artifact.sha256);
    if (!p.ok()) continue;
    view.peers += p->peers;
    view.hash_failures += p->hash_failures;
    view.peers_banned += p->bad_peers.size();
    view.bytes_wasted += p->bytes_wasted;
  }
  return view;
}

Status ReleasePipeline::ReplaceFetcher(std::unique_ptr<ArtifactFetcher> fetcher) {
  fetcher_ = std::move(fetcher);
  counted_.clear();  // a new fetcher counts its bytes from zero
  for (auto& [app, t] : transfers_) RETURN_IF_ERROR(WantCurrentArtifacts(t));
  // The artifacts of the last release fetched, when it is kept, are seeded again.
  for (const auto& [app, release] : fetched_) {
    for (const auto& kept : state_.app(app).kept) {
      if (kept.version != release.version) continue;
      for (const auto& artifact : release.artifacts) {
        if (std::find(kept.artifacts.begin(), kept.artifacts.end(), artifact.sha256) !=
            kept.artifacts.end()) {
          RETURN_IF_ERROR(fetcher_->Want(RequestOf(artifact)));
        }
      }
    }
  }
  return Status::Ok();
}

void ReleasePipeline::KeepInFlight(std::set<Digest>& layers, std::set<Digest>& artifacts) const {
  for (const auto& [app, t] : transfers_) {
    for (const auto& l : t.release.image.layers) layers.insert(l.diff_id);
    for (const auto& artifact : t.artifacts) artifacts.insert(artifact.sha256);
  }
}

void ReleasePipeline::Seed(const std::string& app, uint64_t version,
                           const std::vector<ArtifactRequest>& artifacts) {
  if (!options_.keep_artifacts) return;  // a fetcher that serves no peers
  for (const auto& request : artifacts) {
    if (Status want = fetcher_->Want(request); !want.ok()) {
      spdlog::warn("app {}: imported artifact {} not seeded: {}", app, request.sha256.ToString(),
                   want.ToString());
      continue;
    }
    seeded_[{app, version}].push_back(request.sha256);
  }
}

void ReleasePipeline::ForgetSeeded(const std::string& app,
                                   const std::function<bool(uint64_t)>& gone) {
  std::set<Digest> dropped;
  for (auto it = seeded_.begin(); it != seeded_.end();) {
    const auto& [seeded_app, version] = it->first;
    if (seeded_app != app || !gone(version)) {
      ++it;
      continue;
    }
    dropped.insert(it->second.begin(), it->second.end());
    it = seeded_.erase(it);
  }
  if (dropped.empty()) return;
  for (const auto& [name, other] : state_.state().apps) {
    for (const auto& k : other.kept) {
      for (const Digest& d : k.artifacts) dropped.erase(d);
    }
  }
  for (const auto& [name, t] : transfers_) {
    for (const auto& artifact : t.artifacts) dropped.erase(artifact.sha256);
  }
  for (const auto& [release, digests] : seeded_) {
    for (const Digest& d : digests) dropped.erase(d);
  }
  spdlog::info("app {}: {} imported artifact(s) no longer seeded: their release will not be ready",
               app, dropped.size());
  ForgetArtifacts(dropped);
}

void ReleasePipeline::ForgetArtifacts(const std::set<Digest>& artifacts) {
  for (const auto& d : artifacts) {
    Status st = fetcher_->Forget(d);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
    counted_.erase(d);
  }
}

}  // namespace flotilla::node
