// The release pipeline: gets every layer of an app's newer release into the
// layer store, verified (docs/node.md, "Parts").
//
// Offer() a verified release: it is planned against the layers the store
// holds (full layers, deltas or chains of deltas, with a fallback path per
// layer), checked against the free space and the disk budget, and its
// artifacts are wanted from the ArtifactFetcher. Every second the pipeline
// polls the fetcher: a failed artifact, or a transfer with no progress for
// stall_timeout_s, moves the layer to its fallback path. When every artifact
// is verified the layers are rebuilt on the store's worker (a delta applied,
// a layer unpacked); a layer that rebuilds wrong also moves to its fallback.
// Then the release is ready (`events.ready`).
//
// A release fails for good (failed_release: never tried again, a newer one
// is) when it cannot be planned or its verified artifacts rebuild a wrong
// layer; for a reason that may pass (a full disk, a fetch error) it is tried
// again at the next offer after refresh_interval_s, doubling with each
// failure up to max_backoff_s; RetryNow() forgets the waits.
//
// Thread-safety: none; the loop's only. The fetcher is polled, never called back.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/clock.h"
#include "node/daemon/node_state.h"
#include "node/daemon/release_transfer.h"
#include "node/daemon/store_worker.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

struct PipelineOptions {
  std::string data_dir;  // whose free space a release must fit in
  // What this device runs: a release of another platform fails for good
  // before any byte of it is fetched.
  layerstore::Platform platform = layerstore::Platform::Host();
  bool deltas = true;
  // p2p: the artifacts of kept releases stay with the fetcher (seeded to
  // peers); http-only: forgotten once their layers are rebuilt.
  bool keep_artifacts = false;
  uint64_t disk_budget_bytes = 0;  // 0: none
  uint32_t refresh_interval_s = 300;
  uint32_t max_backoff_s = 1800;
  uint32_t stall_timeout_s = 120;
};

struct PipelineEvents {
  std::function<void(const std::string& app, const metadata::Release&)> ready;
  std::function<void(const std::string& error)> error;  // for the next report
  std::function<void()> changed;                        // a phase changed: report soon
};

// A release being fetched, for the node's view.
struct TransferView {
  uint64_t done = 0, total = 0;
  double rate_bytes_per_s = 0;
  uint32_t peers = 0;
  uint64_t hash_failures = 0;
  uint64_t peers_banned = 0;
  uint64_t bytes_wasted = 0;
};

class ReleasePipeline {
 public:
  ReleasePipeline(PipelineOptions options, StateFile& state, StoreWorker& store,
                  std::unique_ptr<ArtifactFetcher> fetcher, const Clock& clock, Executor& loop,
                  PipelineEvents events);

  void Start() { Tick(); }
  void Stop() { timer_.Cancel(); }
  // A verified release of `app`: fetched unless it is not newer than the
  // ready one, failed for good, being fetched, or waiting for its retry.
  void Offer(const std::string& app, const metadata::Release& release);
  // A release the fleet chose: fetched unless it is the ready one, failed
  // for good, being fetched or waiting for its retry; older releases too.
  void OfferChosen(const std::string& app, const metadata::Release& release);
  bool Fetching(const std::string& app) const { return transfers_.count(app) != 0; }
  void RetryNow() { retries_.Clear(); }
  std::optional<TransferView> Transfer(const std::string& app) const;
  // Peers banned for `app`'s artifacts since the last call (for its report).
  std::vector<BadPeer> TakeBadPeers(const std::string& app);
  // Another fetcher (a late enrolment gave the announce URL): it gets what
  // the old one fetched and seeded.
  Status ReplaceFetcher(std::unique_ptr<ArtifactFetcher> fetcher);
  // What the releases being fetched need: kept by a collection.
  void KeepInFlight(std::set<Digest>& layers, std::set<Digest>& artifacts) const;
  // Artifacts no longer kept: the fetcher deletes them (no longer seeded).
  void ForgetArtifacts(const std::set<Digest>& artifacts);
  // The artifacts of release `version` of `app` an offline bundle's import
  // placed in the fetcher's directory (docs/bundle.md): wanted now (the
  // fetcher finds them whole, with no traffic, and seeds them) and kept with
  // the release once it is ready, so the collector forgets them with it.
  // Forgotten instead (unless a kept release or a transfer uses them) when
  // that release fails for good or a newer one of the app is fetched or ready.
  void Seed(const std::string& app, uint64_t version,
            const std::vector<ArtifactRequest>& artifacts);

 private:
  void Tick();
  void Begin(const std::string& app, const metadata::Release& release);
  void Drive(const std::string& app);
  void DetectStall(const std::string& app, bool complete, const std::string& fetch_error);
  Status WantCurrentArtifacts(ReleaseTransfer& t);
  // Moves layer plan `plan` to its fallback path; false if it has none left.
  bool SwitchToFallback(const std::string& app, size_t plan, const std::string& why);
  void Rebuild(const std::string& app);
  void Rebuilt(const std::string& app, uint64_t version, const RebuildResult& result);
  void Ready(const std::string& app);
  void Fail(const std::string& app, const Status& why, bool permanent);
  void CountBytes(const std::string& app, const Digest& artifact, const FetchProgress& p);
  void NoteBadPeers(const std::string& app, const FetchProgress& p);
  // Forgets the imported artifacts of the releases of `app` for which `gone`
  // is true (they will never be ready), but those still kept or wanted.
  void ForgetSeeded(const std::string& app, const std::function<bool(uint64_t)>& gone);

  PipelineOptions options_;
  StateFile& state_;
  StoreWorker& store_;
  std::unique_ptr<ArtifactFetcher> fetcher_;
  const Clock& clock_;
  PipelineEvents events_;
  TimerSlot timer_;
  std::map<std::string, ReleaseTransfer> transfers_;
  std::map<std::string, metadata::Release> fetched_;  // the last release fetched per app
  // Imported artifacts being seeded, per app and release, until it is ready.
  std::map<std::pair<std::string, uint64_t>, std::vector<Digest>> seeded_;
  RetryBackoff retries_;
  std::map<Digest, std::pair<uint64_t, uint64_t>> counted_;       // peers, origin seen per artifact
  std::set<std::pair<std::string, std::string>> bad_peers_seen_;  // (swarm, ip)
  std::map<std::string, std::vector<BadPeer>> bad_peers_new_;     // per app, for its report
};

}  // namespace flotilla::node
