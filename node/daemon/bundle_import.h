// Importing an offline bundle into a node's data directory (docs/bundle.md,
// "Importing"), by `flotilla-node import` on a stopped node or by the running
// daemon on its store lane: every entry checked before anything is
// copied, the bundle's metadata verified by the TUF client against the
// device's own trusted metadata (no rollback, expiry against the time floor),
// every artifact checked against the signed release, and only then the
// trusted metadata updated and the layers rebuilt into the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/fd.h"
#include "core/status.h"
#include "layerstore/layer_store.h"
#include "metadata/offline_window.h"
#include "metadata/release.h"
#include "node/daemon/carried_fleet_files.h"
#include "node/daemon/node_config.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

using metadata::OfflineWindowUse;

struct BundleLimits {
  uint32_t max_entries = 4096;
  uint64_t max_index_bytes = 64 << 10;
  uint64_t max_metadata_bytes = 8 << 20;
  uint64_t max_artifact_bytes = uint64_t{16} << 30;
  uint64_t max_torrent_bytes = 4 << 20;
  uint64_t max_fleet_bytes = 2 << 20;  // a device's fleet/<id>.json (bundle_fleet.h)
};

struct ImportResult {
  std::string app;
  uint64_t version = 0;
  size_t layers_rebuilt = 0;
  uint64_t artifact_bytes = 0;
  std::vector<layerstore::LayerInfo> added;  // the layers rebuilt into the store
  // The artifacts handed to the p2p fetcher's directory (with `seed_dir`).
  std::vector<ArtifactRequest> seedable;
  // This device's fleet files, when the bundle carries them and they verify
  // (bundle_fleet.h): the caller commits them (the document is accepted).
  std::optional<CarriedFleetFiles> fleet;
  uint64_t fleet_version = 0;  // the fleet targets version listing the document
  // Non-empty: the document names another release (or none) of the app, so
  // the release was not imported (no layer rebuilt): why. The caller refuses
  // the import with it once the fleet files are committed.
  std::string not_deployed;
  // The release whose offline validity window the import was allowed to use
  // (the tracker unreachable): the fleet files are committed under the same
  // allowance.
  std::optional<metadata::Release> offline_release;
};

// Where an import is: its step ("checking" the tar headers, "copying" the
// entries, "verifying" the artifacts, "rebuilding" the layers), the bytes of
// that step done of its total, and a line saying so.
struct ImportProgress {
  std::string step;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string line;
};
using ImportProgressFn = std::function<void(const ImportProgress&)>;

// The data directory's lock (the one `run` holds for as long as it runs):
// FailedPrecondition "flotilla-node is running on data_dir ..." when held
// (the daemon, or another stopped-node import).
Result<UniqueFd> LockDataDir(const DataLayout& layout);
// Whether a daemon holds the data directory's lock now.
bool DaemonHoldsDataDir(const DataLayout& layout);

// Into a stopped node: takes the data directory's lock (FailedPrecondition
// when the daemon holds it) and opens the store. Offline windows count when
// the node has no tracker or its timestamp.json does not answer (5 s).
Result<ImportResult> ImportBundle(const NodeConfig& config, const std::string& bundle_path,
                                  const Clock& clock, const ImportProgressFn& progress,
                                  const BundleLimits& limits = {});

// Into `store`, the node's store, whose data directory the caller holds (the
// running daemon, on its store lane). The same checks, in the same order.
// With `seed_dir` (the p2p fetcher's directory), each artifact used whose
// .torrent the bundle carries is moved there, as the fetcher keeps a
// downloaded one (data/<hex>/<hex>, torrents/<hex>.torrent), for the caller
// to hand to the fetcher (ImportResult::seedable); the fetcher checks both
// again when it takes them.
// With `trusted_dir_lock` (the running daemon's; TufMetadataSource takes it
// for each refresh), the step that makes the device trust the bundle's
// metadata holds it, so that step and a refresh of <data_dir>/tuf never
// interleave (docs/bundle.md, "Importing into a running node").
Result<ImportResult> ImportBundleInto(const NodeConfig& config, layerstore::LayerStore& store,
                                      const std::string& bundle_path, const Clock& clock,
                                      const ImportProgressFn& progress,
                                      const std::string& seed_dir = "",
                                      const BundleLimits& limits = {},
                                      std::mutex* trusted_dir_lock = nullptr,
                                      OfflineWindowUse offline = OfflineWindowUse::kIgnored);

// Whether the node's tracker does not answer a request for its
// timestamp.json within `timeout` (or the node has none).
bool TrackerUnreachable(const NodeConfig& config, std::chrono::milliseconds timeout);

}  // namespace flotilla::node
