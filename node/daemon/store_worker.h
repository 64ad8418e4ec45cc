// The layer store behind its worker (LayerStore is not thread-safe, and its
// work blocks for long: a delta apply or an unpack of a large layer from a
// slow SD card). Every LayerStore call of the running daemon goes through
// here and runs on the store's worker lane, one at a time; results come back
// to the loop.
//
// The loop keeps a catalog of the store's layers, exact because every change
// passes through this class: a rebuild adds what it made when its result
// arrives, a collection takes out what it will remove as soon as it is asked.
//
// Thread-safety: every method is called on the loop; the store is touched
// only by jobs on the worker lane (and by the constructor, before any job).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "layerstore/layer_store.h"
#include "layerstore/update_planner.h"

namespace flotilla::node {

// One artifact to turn into its layer: a delta applied to its bases, or a
// full layer unpacked. `path` is the fetcher's verified file.
struct RebuildStep {
  layerstore::PlannerArtifact artifact;
  std::string path;
  uint64_t layer_length = 0;  // the signed length of the layer it makes
  size_t plan = 0;            // index of the layer plan the step belongs to
};

struct RebuildResult {
  Status status;
  size_t failed_plan = 0;  // the failing step's plan, when !status.ok()
  std::vector<layerstore::LayerInfo> added;
};

// Rebuilds one layer into `store`, unless it is ready already; the layer
// when it made it. What a rebuild job runs; `flotilla-node import` calls it
// directly on a stopped node's store.
Result<std::optional<layerstore::LayerInfo>> RebuildLayer(layerstore::LayerStore& store,
                                                          const RebuildStep& step,
                                                          const std::string& temp_dir);

class StoreWorker {
 public:
  // `temp_dir`: where a delta apply stages its rebuilt layer tar.
  StoreWorker(std::unique_ptr<layerstore::LayerStore> store, std::string temp_dir, Executor& worker,
              Executor& loop);

  // The catalog: ready layers, and the bytes of every layer the store holds.
  std::vector<Digest> ReadyLayers() const;
  uint64_t bytes() const;

  // Runs `steps` in order (a step whose layer is already ready is skipped)
  // and stops at the first failure.
  void Rebuild(std::vector<RebuildStep> steps, std::function<void(RebuildResult)> done);
  // Runs `job` on the worker lane with the store itself (an offline bundle's
  // import, which checks and rebuilds in one go); the layers `job` returns
  // (those it added) join the catalog before `done` runs on the loop.
  void WithStore(std::function<std::vector<layerstore::LayerInfo>(layerstore::LayerStore&)> job,
                 std::function<void()> done);
  // The unpacked trees of `layers`, in the same order (overlayfs lowers).
  void ResolveTrees(std::vector<Digest> layers,
                    std::function<void(Result<std::vector<std::string>>)> done);
  // Removes every layer not in `keep`.
  void Collect(std::set<Digest> keep);
  // Removes what failed rebuilds left in the temporary directory.
  void ClearTemp();
  // No job starts after this; the owner of the lane joins the one running.
  void Close() { worker_.Close(); }

 private:
  std::unique_ptr<layerstore::LayerStore> store_;
  std::string temp_dir_;
  Worker worker_;
  std::map<Digest, layerstore::LayerInfo> catalog_;
};

}  // namespace flotilla::node
