// Importing an offline bundle into a stopped node's data directory
// (docs/bundle.md, "Importing"): every entry checked before anything is
// copied, the bundle's metadata verified by the TUF client against the
// device's own trusted metadata (no rollback, expiry against the time floor),
// every artifact checked against the signed release, and only then the
// trusted metadata updated and the layers rebuilt into the store.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {

struct BundleLimits {
  uint32_t max_entries = 4096;
  uint64_t max_index_bytes = 64 << 10;
  uint64_t max_metadata_bytes = 8 << 20;
  uint64_t max_artifact_bytes = uint64_t{16} << 30;
};

struct ImportResult {
  std::string app;
  uint64_t version = 0;
  size_t layers_rebuilt = 0;
  uint64_t artifact_bytes = 0;
};

// REQUIRES: no daemon runs on config.data_dir (the data directory's lock is
// taken; FailedPrecondition when it is held). `progress` gets one line per step.
Result<ImportResult> ImportBundle(const NodeConfig& config, const std::string& bundle_path,
                                  const Clock& clock,
                                  const std::function<void(const std::string&)>& progress,
                                  const BundleLimits& limits = {});

}  // namespace flotilla::node
