// The daemon's durable state, <data>/state.json (written atomically; format
// in docs/node.md): per followed app, the release being fetched, the newest
// release whose layers are all in the store and verified, the byte counters
// of the current release and the last error. A kill -9 at any moment leaves
// the previous or the next state; the store and the fetcher's partial files
// carry the rest.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/env.h"
#include "core/status.h"

namespace flotilla::node {

// kReady: fetched and verified, not deployed (deploy off, or about to);
// kDeploying: handed to the runtime's health-gated switch; kRunning: the
// newest release the node can run runs (or was rolled back to).
enum class AppPhase { kIdle, kDownloading, kVerifying, kReady, kFailed, kDeploying, kRunning };

std::string_view AppPhaseName(AppPhase phase);

// A release the node keeps on disk for its app: what runs, what it can roll
// back to. Its layers and artifacts are kept; everything else is collected.
struct KeptRelease {
  uint64_t version = 0;
  std::vector<Digest> layers;     // diff_ids, bottom to top
  std::vector<Digest> artifacts;  // what was fetched for it (still seeded to peers)
};

struct AppState {
  uint64_t target_release = 0;  // being fetched (0: none)
  uint64_t ready_release = 0;   // every layer in the store and verified (0: none)
  uint64_t failed_release = 0;  // a release that failed for good (not retried)
  AppPhase phase = AppPhase::kIdle;
  uint64_t bytes_from_peers = 0;   // cumulative for target_release
  uint64_t bytes_from_origin = 0;  // cumulative for target_release
  std::string last_error;
  // The kind of the latest failure (tracker::ReportFailureKinds(), "" for
  // none), set with last_error by whichever part failed the release and
  // cleared when the next release is begun or runs.
  std::string failure;
  uint64_t running_release = 0;   // the runtime's current release (0: none)
  uint64_t previous_release = 0;  // the runtime's previous release (0: none)
  // The configuration ids (docs/config.md) of the runtime's current and
  // previous release ("": none), and of a configuration of the running
  // release that did not run healthy and was rolled back (not tried again).
  std::string config_id;
  std::string previous_config_id;
  std::string failed_config_id;
  std::vector<KeptRelease> kept;  // newest last, at most keep_releases
};

struct NodeState {
  std::map<std::string, AppState> apps;
  // The highest report sequence number the reporter may have handed out
  // (it reserves them in blocks); 0 in a state file that has none.
  uint64_t report_seq = 0;
};

// The stored state; an empty state when the file does not exist.
Result<NodeState> LoadNodeState(const std::string& path);
// Replaces the stored state atomically and durably, writing through `env`.
Status SaveNodeState(const std::string& path, const NodeState& state, Env& env = Env::Default());

// The daemon's durable state while it runs: one NodeState, saved whole after
// each change. Shared by the release pipeline and the deployer, each writing
// only its own fields of an AppState: the pipeline target_release,
// ready_release, the byte counters, a `kept` entry when a release is ready,
// and the phases up to kReady; the deployer running_release,
// previous_release, the `kept` lists (collection) and the phases from
// kDeploying on. failed_release, last_error and kFailed belong to whichever
// part failed the release. Thread-safety: none; the loop's only.
class StateFile {
 public:
  // Loads `path` (empty state if absent), adds the followed `apps`, saves.
  static Result<std::unique_ptr<StateFile>> Open(std::string path,
                                                 const std::vector<std::string>& apps);
  AppState& app(const std::string& name) { return state_.apps[name]; }
  const NodeState& state() const { return state_; }
  // Writes state.json; a failure is logged (the next change writes again).
  void Save();
  // Sets report_seq and writes state.json; OK once it is durable.
  Status SaveReportSeq(uint64_t report_seq);

 private:
  StateFile(std::string path, NodeState state) : path_(std::move(path)), state_(std::move(state)) {}
  std::string path_;
  NodeState state_;
};

}  // namespace flotilla::node
