#include "node/daemon/release_transfer.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "node/daemon/backoff.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kFreeSpaceReserve = 32ull << 20;

const metadata::Artifact* ArtifactById(const metadata::Release& release, const Digest& id) {
  for (const auto& a : release.artifacts) {
    if (a.sha256 == id) return &a;
  }
  return nullptr;
}

std::string MiB(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

std::vector<metadata::Artifact> ReleaseTransfer::CurrentArtifacts() const {
  std::vector<metadata::Artifact> out;
  std::set<Digest> seen;
  for (size_t i = 0; i < plans.size(); ++i) {
    for (const auto& step : Path(i).steps) {
      const metadata::Artifact* a = ArtifactById(release, step.id);
      if (a != nullptr && seen.insert(step.id).second) out.push_back(*a);
    }
  }
  return out;
}

void ReleaseTransfer::SampleRate(MonoTime now) {
  if (rate_at != MonoTime{} && now > rate_at && done >= rate_done) {
    const double seconds = std::chrono::duration<double>(now - rate_at).count();
    const double instant = (done - rate_done) / seconds;
    rate = rate == 0 ? instant : 0.7 * rate + 0.3 * instant;
  }
  rate_at = now;
  rate_done = done;
}

uint64_t LayerLength(const metadata::Release& release, const Digest& diff_id) {
  for (const auto& layer : release.image.layers) {
    if (layer.diff_id == diff_id) return layer.length;
  }
  return 0;
}

ArtifactRequest RequestOf(const metadata::Artifact& a) {
  return ArtifactRequest{a.sha256, a.length, a.info_hash};
}

Status CheckRunsHere(const metadata::Release& release, const layerstore::Platform& host) {
  auto image = layerstore::Platform::Parse(release.image.platform);
  if (image.ok() && host.Runs(*image)) return Status::Ok();
  return FailedPrecondition("release " + std::to_string(release.version) + " of " + release.app +
                            " is for " + release.image.platform + "; this device runs " +
                            host.ToString());
}

Result<layerstore::UpdatePlan> PlanRelease(const metadata::Release& release,
                                           const std::vector<Digest>& ready, bool use_deltas) {
  std::vector<Digest> wanted;
  for (const auto& l : release.image.layers) wanted.push_back(l.diff_id);
  std::vector<layerstore::PlannerArtifact> artifacts;
  for (const auto& a : release.artifacts) {
    const bool delta = a.kind == metadata::ArtifactKind::kDelta;
    if (delta && !use_deltas) continue;
    artifacts.push_back(
        {a.sha256, a.layer,
         delta ? layerstore::PlannerArtifactKind::kDelta : layerstore::PlannerArtifactKind::kFull,
         a.bases, a.length});
  }
  return layerstore::PlanUpdate(ready, wanted, artifacts);
}

Status CheckFreeSpace(const std::vector<metadata::Artifact>& artifacts,
                      const metadata::Release& release, const std::string& data_dir,
                      uint64_t store_bytes, uint64_t budget_bytes) {
  uint64_t artifact_bytes = 0, layer_bytes = 0, delta_temp = 0;
  for (const auto& a : artifacts) {
    artifact_bytes += a.length;
    const uint64_t length = LayerLength(release, a.layer);
    layer_bytes += length;
    // A delta rebuilds its layer's tar into a temporary file before the unpack.
    if (a.kind == metadata::ArtifactKind::kDelta) delta_temp = std::max(delta_temp, length);
  }
  struct statvfs fs {};
  if (::statvfs(data_dir.c_str(), &fs) != 0) return IOErrorFromErrno("statvfs " + data_dir, errno);
  const uint64_t free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  const std::string release_name = "release " + std::to_string(release.version);
  if (budget_bytes != 0 && store_bytes + artifact_bytes + layer_bytes + delta_temp > budget_bytes) {
    return ResourceExhausted(release_name + " needs " +
                             MiB(artifact_bytes + layer_bytes + delta_temp) + " beside the " +
                             MiB(store_bytes) + " kept, over disk_budget_mib " + MiB(budget_bytes));
  }
  const uint64_t needed = artifact_bytes + layer_bytes + delta_temp + kFreeSpaceReserve;
  if (needed > free_bytes) {
    return ResourceExhausted(release_name + " needs " + MiB(needed) + " (artifacts " +
                             MiB(artifact_bytes) + ", layers " + MiB(layer_bytes + delta_temp) +
                             ", reserve " + MiB(kFreeSpaceReserve) + ") but data_dir has " +
                             MiB(free_bytes) + " free");
  }
  return Status::Ok();
}

bool IsDiskFull(const Status& st) {
  return st.code() == StatusCode::kResourceExhausted ||
         st.message().find("No space left on device") != std::string::npos;
}

Duration RetryBackoff::Failed(const std::string& app, uint64_t version, MonoTime now) {
  Wait& wait = waits_[app];
  if (wait.version != version) wait = Wait{version, 0, {}};
  wait.failures = std::min<uint32_t>(wait.failures + 1, 30);
  const Duration delay = Backoff(first_, wait.failures, cap_);
  wait.not_before = now + delay;
  return delay;
}

bool RetryBackoff::Due(const std::string& app, uint64_t version, MonoTime now) const {
  auto it = waits_.find(app);
  return it == waits_.end() || it->second.version != version || now >= it->second.not_before;
}

}  // namespace flotilla::node
