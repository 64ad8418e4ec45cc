#include "node/daemon/store_worker.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "core/file_io.h"
#include "layerstore/byte_source.h"
#include "layerstore/delta.h"
#include "layerstore/safe_path.h"

namespace flotilla::node {

using layerstore::LayerInfo;
using layerstore::LayerStore;

Result<std::optional<LayerInfo>> RebuildLayer(LayerStore& store, const RebuildStep& step,
                                              const std::string& temp_dir) {
  ASSIGN_OR_RETURN(auto held, store.FindLayer(step.artifact.layer));
  if (held && held->state == layerstore::LayerState::kReady) return std::optional<LayerInfo>();
  ASSIGN_OR_RETURN(auto file, layerstore::OpenFileSource(step.path));
  const bool delta = step.artifact.kind == layerstore::PlannerArtifactKind::kDelta;
  const std::string layer_name = step.artifact.layer.Hex().substr(0, 12);
  spdlog::debug("layer {}: rebuilding from the {} artifact {}", layer_name,
                delta ? "delta" : "full", step.artifact.id.Hex().substr(0, 12));
  // One log line per store phase (unpacking, promoting, indexing, done).
  auto progress = [&layer_name, last = std::optional<layerstore::Phase>()](
                      const layerstore::Progress& p) mutable {
    if (last == p.phase) return;
    last = p.phase;
    spdlog::debug("layer {}: {}", layer_name, layerstore::PhaseName(p.phase));
  };
  if (delta) {
    layerstore::DeltaApplyOptions options;
    options.temp_dir = temp_dir;
    options.progress = progress;
    RETURN_IF_ERROR(CreateDirectories(options.temp_dir, 0700));
    auto info = layerstore::ApplyDeltaToStore(store, *file, options, &step.artifact.layer);
    if (!info.ok()) return info.status().WithContext("delta " + step.artifact.id.ToString());
    return std::optional<LayerInfo>(*info);
  }
  if (step.layer_length == 0) {
    return Corruption("layer " + step.artifact.layer.ToString() + " is not in the release");
  }
  ASSIGN_OR_RETURN(auto tar, layerstore::DecompressingByteSource::Open(*file, step.layer_length));
  auto info = store.UnpackLayer(*tar, step.artifact.layer, step.layer_length,
                                layerstore::UnpackOptions{}, progress);
  if (!info.ok()) return info.status().WithContext("layer " + step.artifact.layer.ToString());
  return std::optional<LayerInfo>(*info);
}

StoreWorker::StoreWorker(std::unique_ptr<LayerStore> store, std::string temp_dir, Executor& worker,
                         Executor& loop)
    : store_(std::move(store)), temp_dir_(std::move(temp_dir)), worker_(worker, loop) {
  auto layers = store_->ListLayers();
  if (!layers.ok()) spdlog::warn("layer store: {}", layers.status().ToString());
  for (const auto& l : layers.value_or(std::vector<LayerInfo>{})) catalog_[l.diff_id] = l;
}

std::vector<Digest> StoreWorker::ReadyLayers() const {
  std::vector<Digest> ready;
  for (const auto& [diff_id, l] : catalog_) {
    if (l.state == layerstore::LayerState::kReady) ready.push_back(diff_id);
  }
  return ready;
}

uint64_t StoreWorker::bytes() const {
  uint64_t total = 0;
  for (const auto& [diff_id, l] : catalog_) total += l.length;
  return total;
}

void StoreWorker::Rebuild(std::vector<RebuildStep> steps, std::function<void(RebuildResult)> done) {
  worker_.Run(
      [store = store_.get(), temp = temp_dir_, steps = std::move(steps)] {
        RebuildResult result;
        for (const auto& step : steps) {
          auto made = RebuildLayer(*store, step, temp);
          if (!made.ok()) {
            result.status = made.status();
            result.failed_plan = step.plan;
            break;
          }
          if (*made) result.added.push_back(**made);
        }
        return result;
      },
      [this, done = std::move(done)](RebuildResult result) {
        for (const auto& l : result.added) catalog_[l.diff_id] = l;
        done(std::move(result));
      });
}

void StoreWorker::WithStore(std::function<std::vector<LayerInfo>(LayerStore&)> job,
                            std::function<void()> done) {
  worker_.Run([store = store_.get(), job = std::move(job)] { return job(*store); },
              [this, done = std::move(done)](std::vector<LayerInfo> added) {
                for (const auto& l : added) catalog_[l.diff_id] = l;
                done();
              });
}

void StoreWorker::ResolveTrees(std::vector<Digest> layers,
                               std::function<void(Result<std::vector<std::string>>)> done) {
  worker_.Run(
      [store = store_.get(), layers = std::move(layers)]() -> Result<std::vector<std::string>> {
        std::vector<std::string> trees;
        for (const auto& layer : layers) {
          ASSIGN_OR_RETURN(std::string tree, store->LayerTreePath(layer));
          trees.push_back(std::move(tree));
        }
        return trees;
      },
      std::move(done));
}

void StoreWorker::Collect(std::set<Digest> keep) {
  std::erase_if(catalog_, [&](const auto& entry) { return !keep.count(entry.first); });
  worker_.Run(
      [store = store_.get(), keep = std::move(keep)] {
        auto layers = store->ListLayers();
        if (!layers.ok()) {
          spdlog::warn("{}", layers.status().ToString());
          return size_t{0};
        }
        size_t removed = 0;
        for (const auto& l : *layers) {
          if (keep.count(l.diff_id)) continue;
          Status st = store->RemoveLayer(l.diff_id);
          if (!st.ok()) spdlog::warn("{}", st.ToString());
          removed += st.ok();
        }
        spdlog::info("collected {} layer(s) of {}; {} kept", removed, layers->size(),
                     layers->size() - removed);
        return removed;
      },
      [](size_t) {});
}

void StoreWorker::ClearTemp() {
  worker_.Run([temp = temp_dir_] { return layerstore::RemoveTree(temp).ok(); }, [](bool) {});
}

}  // namespace flotilla::node
