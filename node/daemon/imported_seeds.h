// Artifacts that an import into a stopped node left in the p2p fetcher's
// directory for the next `run` to seed (docs/bundle.md, "Spreading to the
// LAN"): <data_dir>/imported-seeds.json, format 1. The import appends one
// entry per release it imported; the daemon hands them to its release
// pipeline as it starts (as a running daemon's import does at once) and then
// removes the file.
//
//   {"format": 1,
//    "releases": [{"app": "web", "release": 2,
//                  "artifacts": [{"sha256": "sha256:9f2c...", "length": 4508,
//                                 "info_hash": "1b7e...(64 hex)"}]}]}
#ifndef FLOTILLA_NODE_DAEMON_IMPORTED_SEEDS_H_
#define FLOTILLA_NODE_DAEMON_IMPORTED_SEEDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

struct ImportedSeeds {
  std::string app;
  uint64_t release = 0;
  std::vector<ArtifactRequest> artifacts;
};

// The entries recorded at `path`; none when the file does not exist. A file
// that does not parse is an error naming it (the caller removes it: its
// artifacts are then only fetched, never seeded, until a release is ready).
Result<std::vector<ImportedSeeds>> LoadImportedSeeds(const std::string& path);

// Adds `seeds` to the file at `path` (atomically and durably), after the
// entries already there; at most 64 entries are kept, the oldest dropped.
Status RecordImportedSeeds(const std::string& path, const ImportedSeeds& seeds);

// Removes the file durably (nothing to do when it does not exist).
Status RemoveImportedSeeds(const std::string& path);

}  // namespace flotilla::node

#endif  // FLOTILLA_NODE_DAEMON_IMPORTED_SEEDS_H_
