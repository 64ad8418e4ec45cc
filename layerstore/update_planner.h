// The update planner: which signed artifacts a device downloads to obtain the
// layers of a target image, at the least cost in bytes.
//
// A pure function of its inputs (no I/O, no clock): the node translates the
// artifacts of every release it holds signed metadata for into
// PlannerArtifacts, passes the layers it holds and the layers it wants, and
// gets, per wanted layer it lacks, the cheapest sequence of artifacts to fetch
// and apply (a full layer, a delta, or a chain of deltas whose intermediate
// layers are produced on the way) and a fallback that does not use the best
// path's first artifact at all (so a corrupt or unreachable artifact never
// sinks both).
//
// Cost model: the sum of the `length` of the artifacts in a path. A layer is
// "available" to a step if the device holds it, if it is a wanted layer
// listed earlier (planned before this one, bottom first: it will be produced
// whichever of its paths runs), or if an earlier step of the same path
// produces it. A delta is usable only when all its bases are available.
//
// Determinism: among paths of equal cost the one with fewer steps wins, then
// the one whose artifact ids, compared step by step as digests, are smaller.
// The same inputs in any order give the same plan (inputs are sorted first;
// duplicate artifact ids keep the first occurrence after sorting).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace flotilla::layerstore {

enum class PlannerArtifactKind { kFull, kDelta };

// One signed artifact, as the planner needs to know it.
struct PlannerArtifact {
  Digest id;     // SHA-256 of the artifact's bytes (what identifies it)
  Digest layer;  // diff_id of the layer it produces
  PlannerArtifactKind kind = PlannerArtifactKind::kFull;
  std::vector<Digest> bases;  // deltas: every diff_id that must be present to apply it
  uint64_t length = 0;        // bytes to download
  friend bool operator==(const PlannerArtifact&, const PlannerArtifact&) = default;
};

// A sequence of artifacts, in the order they are downloaded and applied; the
// last one produces the wanted layer.
struct PlannedPath {
  std::vector<PlannerArtifact> steps;
  uint64_t bytes = 0;  // sum of the steps' lengths
  friend bool operator==(const PlannedPath&, const PlannedPath&) = default;
};

struct LayerPlan {
  Digest layer;                         // the wanted layer this plan produces
  PlannedPath best;                     // cheapest path
  std::optional<PlannedPath> fallback;  // cheapest path not using best.steps[0]
};

struct UpdatePlan {
  // One entry per wanted layer not held, in the order of `wanted`
  // (duplicates in `wanted` planned once).
  std::vector<LayerPlan> layers;
  uint64_t total_bytes = 0;  // sum of best.bytes
};

// Plans how to obtain every layer of `wanted` that is not in `held`.
// Fails with NotFound naming the first wanted layer (in `wanted` order) that
// no combination of `artifacts` can produce; fails with InvalidArgument on a
// malformed artifact (a delta without bases, a delta listing its own layer as
// a base, a full artifact with bases).
Result<UpdatePlan> PlanUpdate(const std::vector<Digest>& held, const std::vector<Digest>& wanted,
                              const std::vector<PlannerArtifact>& artifacts);

}  // namespace flotilla::layerstore
