#include "node/daemon/garbage_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "node/daemon/deployer.h"

namespace flotilla::node {

GarbageCollector::GarbageCollector(std::vector<std::string> apps, uint32_t keep_releases,
                                   StateFile& state, StoreWorker& store, runtime::Runtime& runtime,
                                   const LaneOf& lanes, Executor& loop, CollectorEvents events)
    : loop_(&loop),
      apps_(std::move(apps)),
      keep_releases_(keep_releases),
      state_(state),
      store_(store),
      runtime_(runtime),
      events_(std::move(events)) {
  for (const auto& app : apps_) {
    pruners_[app] = std::make_unique<Worker>(lanes("app/" + app), loop);
  }
}

void GarbageCollector::Follow(const std::string& app, const LaneOf& lanes) {
  if (pruners_.count(app)) return;
  apps_.push_back(app);
  pruners_[app] = std::make_unique<Worker>(lanes("app/" + app), *loop_);
}

void GarbageCollector::Stop() {
  for (auto& [app, pruner] : pruners_) pruner->Close();
}

void GarbageCollector::Collect() {
  spdlog::debug("collecting garbage");
  std::set<Digest> keep_layers, keep_artifacts, dropped_artifacts;
  for (const auto& app : apps_) {
    AppState& a = state_.app(app);
    std::sort(a.kept.begin(), a.kept.end(),
              [](const KeptRelease& x, const KeptRelease& y) { return x.version > y.version; });
    std::vector<KeptRelease> retained;
    for (auto& k : a.kept) {
      const bool in_runtime = k.version == a.running_release || k.version == a.previous_release;
      const bool waiting = k.version > a.running_release && k.version != a.failed_release;
      if (in_runtime || waiting || retained.size() < keep_releases_) {
        retained.push_back(std::move(k));
      } else {
        spdlog::info("app {}: release {} is collected (keep_releases {})", app, k.version,
                     keep_releases_);
        dropped_artifacts.insert(k.artifacts.begin(), k.artifacts.end());
      }
    }
    a.kept = std::move(retained);
    for (const auto& k : a.kept) {
      keep_layers.insert(k.layers.begin(), k.layers.end());
      keep_artifacts.insert(k.artifacts.begin(), k.artifacts.end());
    }
    pruners_.at(app)->Run(
        [&runtime = runtime_, app] {
          if (!runtime.Inspect(app).ok()) return true;  // never deployed here
          auto pruned = runtime.PruneReleases(app);
          if (!pruned.ok()) spdlog::warn("app {}: {}", app, pruned.status().ToString());
          return pruned.ok();
        },
        [](bool) {});
  }
  events_.keep_in_flight(keep_layers, keep_artifacts);
  state_.Save();  // the kept lists first: a crash below leaves files, never dangling records
  std::erase_if(dropped_artifacts, [&](const Digest& d) { return keep_artifacts.count(d) != 0; });
  events_.forget(dropped_artifacts);
  store_.Collect(std::move(keep_layers));
}

}  // namespace flotilla::node
