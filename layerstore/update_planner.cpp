#include "layerstore/update_planner.h"

#include <algorithm>
#include <map>
#include <set>

namespace flotilla::layerstore {
namespace {

// a is better than b: fewer bytes, then fewer steps, then smaller ids step by step.
bool Better(const PlannedPath& a, const PlannedPath& b) {
  if (a.bytes != b.bytes) return a.bytes < b.bytes;
  if (a.steps.size() != b.steps.size()) return a.steps.size() < b.steps.size();
  for (size_t i = 0; i < a.steps.size(); ++i) {
    if (a.steps[i].id != b.steps[i].id) return a.steps[i].id < b.steps[i].id;
  }
  return false;
}

Status Validate(const PlannerArtifact& a) {
  const std::string what = "artifact " + a.id.ToString();
  if (a.kind == PlannerArtifactKind::kFull && !a.bases.empty()) {
    return InvalidArgument(what + ": a full artifact has no bases");
  }
  if (a.kind == PlannerArtifactKind::kDelta) {
    if (a.bases.empty()) return InvalidArgument(what + ": a delta needs bases");
    if (std::find(a.bases.begin(), a.bases.end(), a.layer) != a.bases.end()) {
      return InvalidArgument(what + ": a delta cannot be based on its own layer");
    }
  }
  return Status::Ok();
}

// Cheapest known path to every layer reachable from `available` with `artifacts`.
class PathSearch {
 public:
  PathSearch(const std::set<Digest>& available, const std::vector<PlannerArtifact>& artifacts)
      : available_(available), artifacts_(artifacts) {}

  std::map<Digest, PlannedPath> Run() {
    // Each round may lengthen chains by one step; a chain never needs more
    // steps than there are artifacts.
    for (size_t round = 0; round <= artifacts_.size(); ++round) {
      bool changed = false;
      for (const PlannerArtifact& a : artifacts_) changed |= Relax(a);
      if (!changed) break;
    }
    return std::move(best_);
  }

 private:
  bool Relax(const PlannerArtifact& a) {
    if (available_.count(a.layer)) return false;
    PlannedPath candidate;
    std::set<Digest> produced = available_;
    for (const Digest& base : a.bases) {
      if (produced.count(base)) continue;
      auto it = best_.find(base);
      if (it == best_.end()) return false;
      for (const PlannerArtifact& step : it->second.steps) {
        if (produced.count(step.layer)) continue;
        produced.insert(step.layer);
        candidate.steps.push_back(step);
        candidate.bytes += step.length;
      }
    }
    if (produced.count(a.layer)) return false;  // a base's path already makes it
    candidate.steps.push_back(a);
    candidate.bytes += a.length;
    auto it = best_.find(a.layer);
    if (it != best_.end() && !Better(candidate, it->second)) return false;
    best_[a.layer] = std::move(candidate);
    return true;
  }

  const std::set<Digest>& available_;
  const std::vector<PlannerArtifact>& artifacts_;
  std::map<Digest, PlannedPath> best_;
};

std::optional<PlannedPath> Cheapest(const std::set<Digest>& available,
                                    const std::vector<PlannerArtifact>& artifacts,
                                    const Digest& layer) {
  std::map<Digest, PlannedPath> paths = PathSearch(available, artifacts).Run();
  auto it = paths.find(layer);
  if (it == paths.end()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<UpdatePlan> PlanUpdate(const std::vector<Digest>& held, const std::vector<Digest>& wanted,
                              const std::vector<PlannerArtifact>& artifacts) {
  std::vector<PlannerArtifact> sorted = artifacts;
  for (const PlannerArtifact& a : sorted) RETURN_IF_ERROR(Validate(a));
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const PlannerArtifact& a, const PlannerArtifact& b) { return a.id < b.id; });
  sorted.erase(
      std::unique(sorted.begin(), sorted.end(),
                  [](const PlannerArtifact& a, const PlannerArtifact& b) { return a.id == b.id; }),
      sorted.end());
  std::set<Digest> available(held.begin(), held.end());
  UpdatePlan plan;
  for (const Digest& layer : wanted) {
    if (available.count(layer)) continue;
    std::optional<PlannedPath> best = Cheapest(available, sorted, layer);
    if (!best) {
      return NotFound("no signed artifact path produces layer " + layer.ToString() +
                      " from the layers held");
    }
    std::vector<PlannerArtifact> without_first;
    for (const PlannerArtifact& a : sorted) {
      if (a.id != best->steps.front().id) without_first.push_back(a);
    }
    LayerPlan layer_plan{layer, *best, Cheapest(available, without_first, layer)};
    plan.total_bytes += best->bytes;
    plan.layers.push_back(std::move(layer_plan));
    available.insert(layer);
  }
  return plan;
}

}  // namespace flotilla::layerstore
