// Garbage collection after each successful switch (docs/node.md, "Garbage
// collection"): per app, the releases in `kept` stay when they are the
// running or the previous one, newer ones not yet deployed (and not failed),
// or among the newest keep_releases; the others are dropped. Then every
// layer no kept release (of any app) nor a transfer in flight uses is
// removed from the store, their artifacts are forgotten by the fetcher, and
// the runtime removes the directories of releases other than its current and
// previous. state.json is written before any file goes, so a crash leaves
// files to collect next time, never a record of something deleted.
//
// Thread-safety: Collect() is called on the loop; the runtime's pruning runs
// on each app's lane, the store's removals on the store's.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "node/daemon/node_state.h"
#include "node/daemon/store_worker.h"
#include "runtime/runtime.h"

namespace flotilla::node {

struct CollectorEvents {
  // Adds what the transfers in flight need.
  std::function<void(std::set<Digest>& layers, std::set<Digest>& artifacts)> keep_in_flight;
  // Artifacts no longer kept: the fetcher deletes them.
  std::function<void(const std::set<Digest>& artifacts)> forget;
};

class GarbageCollector {
 public:
  GarbageCollector(std::vector<std::string> apps, uint32_t keep_releases, StateFile& state,
                   StoreWorker& store, runtime::Runtime& runtime, const LaneOf& lanes,
                   Executor& loop, CollectorEvents events);
  void Collect();
  void Stop();
  // Keeps the releases of one more app (one the fleet assigns).
  void Follow(const std::string& app, const LaneOf& lanes);

 private:
  Executor* loop_;
  std::vector<std::string> apps_;
  uint32_t keep_releases_;
  StateFile& state_;
  StoreWorker& store_;
  runtime::Runtime& runtime_;
  CollectorEvents events_;
  std::map<std::string, std::unique_ptr<Worker>> pruners_;  // on each app's lane
};

}  // namespace flotilla::node
