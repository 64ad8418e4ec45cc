// The daemon's durable state, <data>/state.json (written atomically; format
// in docs/node.md): per followed app, the release being fetched, the newest
// release whose layers are all in the store and verified, the byte counters
// of the current release and the last error. A kill -9 at any moment leaves
// the previous or the next state; the store and the fetcher's partial files
// carry the rest.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"

namespace flotilla::node {

enum class AppPhase { kIdle, kDownloading, kVerifying, kReady, kFailed };

std::string_view AppPhaseName(AppPhase phase);

struct AppState {
  uint64_t target_release = 0;  // being fetched (0: none)
  uint64_t ready_release = 0;   // every layer in the store and verified (0: none)
  uint64_t failed_release = 0;  // a release that failed for good (not retried)
  AppPhase phase = AppPhase::kIdle;
  uint64_t bytes_from_peers = 0;   // cumulative for target_release
  uint64_t bytes_from_origin = 0;  // cumulative for target_release
  std::string last_error;
};

struct NodeState {
  std::map<std::string, AppState> apps;
};

// The stored state; an empty state when the file does not exist.
Result<NodeState> LoadNodeState(const std::string& path);
Status SaveNodeState(const std::string& path, const NodeState& state);

}  // namespace flotilla::node
