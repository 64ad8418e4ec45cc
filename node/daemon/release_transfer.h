// One release being fetched, and the pure decisions around it: what to fetch
// (the update planner's best path per layer, its fallback once switched),
// whether it fits on disk, and when a failed release may be tried again.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "layerstore/types.h"
#include "layerstore/update_planner.h"
#include "metadata/release.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

struct ReleaseTransfer {
  metadata::Release release;
  std::vector<layerstore::LayerPlan> plans;   // one per layer the store lacks
  std::vector<bool> on_fallback;              // per plan
  std::vector<metadata::Artifact> artifacts;  // the current paths' artifacts (wanted)
  uint64_t done = 0, total = 0;               // verified bytes of the current paths
  MonoTime last_progress{};
  bool stall_reported = false;
  bool rebuilding = false;       // a rebuild runs on the store's worker
  std::string last_fetch_error;  // logged once per distinct message
  MonoTime rate_at{};            // transfer rate, smoothed over a few samples
  uint64_t rate_done = 0;
  double rate = 0;  // bytes/s

  const layerstore::PlannedPath& Path(size_t plan) const {
    return on_fallback[plan] ? *plans[plan].fallback : plans[plan].best;
  }
  // The artifacts of each plan's current path, each once.
  std::vector<metadata::Artifact> CurrentArtifacts() const;
  // Updates `rate` with the bytes verified since the last sample.
  void SampleRate(MonoTime now);
};

ArtifactRequest RequestOf(const metadata::Artifact& artifact);
// The signed length of layer `diff_id` of `release` (0: not in it).
uint64_t LayerLength(const metadata::Release& release, const Digest& diff_id);

// Refuses (FailedPrecondition, before anything is fetched) a release whose
// image is built for a platform `host` does not run (Platform::Runs):
// "release 7 of kiosk is for linux/arm64; this device runs linux/amd64".
Status CheckRunsHere(const metadata::Release& release, const layerstore::Platform& host);

// The update planner's plan for `release` given the `ready` layers held;
// deltas only when `use_deltas`.
Result<layerstore::UpdatePlan> PlanRelease(const metadata::Release& release,
                                           const std::vector<Digest>& ready, bool use_deltas);

// Whether fetching `artifacts` (and rebuilding their layers) fits in the free
// space of `data_dir` (with a reserve), and within `budget_bytes` (0: none)
// beside the `store_bytes` already kept. ResourceExhausted says what is short.
Status CheckFreeSpace(const std::vector<metadata::Artifact>& artifacts,
                      const metadata::Release& release, const std::string& data_dir,
                      uint64_t store_bytes, uint64_t budget_bytes);

// A full disk is not the release's fault: the update fails, is retried, and
// what it wrote is reclaimed.
bool IsDiskFull(const Status& st);

// The waits before a release that failed for a reason that may pass (a full
// disk, a fetch error) is tried again: `first`, doubling with each failure of
// the same release, up to `cap`; a new release starts afresh.
class RetryBackoff {
 public:
  RetryBackoff(Duration first, Duration cap) : first_(first), cap_(cap) {}
  // Counts a failure of `version` at `now`; returns the wait before a retry.
  Duration Failed(const std::string& app, uint64_t version, MonoTime now);
  bool Due(const std::string& app, uint64_t version, MonoTime now) const;
  void Clear() { waits_.clear(); }

 private:
  struct Wait {
    uint64_t version = 0;
    uint32_t failures = 0;
    MonoTime not_before{};
  };
  Duration first_, cap_;
  std::map<std::string, Wait> waits_;
};

}  // namespace flotilla::node
