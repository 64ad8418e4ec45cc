// Test support for the daemon's parts: layers and releases made on the spot
// (a tar built in memory, its zstd artifact written to a file), and a fetcher
// whose progress the test sets: the collaborator across the pipeline's
// interface, so a test can make a transfer stall, fail or complete on demand.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "layerstore/test_tar_builder.h"
#include "metadata/release.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node::parts_testing {

// A layer tar and a full (zstd) artifact of it, written under `dir`.
struct MadeLayer {
  metadata::LayerRef layer;
  metadata::Artifact artifact;
  std::string artifact_path;
};
MadeLayer MakeLayer(const std::string& dir, layerstore::testing::TarBuilder& tar);
// A layer of a few files whose content depends on `seed`.
MadeLayer MakeSmallLayer(const std::string& dir, const std::string& seed);

// Release `version` of `app` with one layer and its full artifact.
metadata::Release ReleaseOf(const std::string& app, uint64_t version, const MadeLayer& layer,
                            Json app_spec = Json::object());

class ScriptedFetcher final : public ArtifactFetcher {
 public:
  Status Want(const ArtifactRequest& request) override;
  Status Forget(const Digest& sha256) override;
  Result<FetchProgress> Progress(const Digest& sha256) const override;
  Result<std::string> CompletedPath(const Digest& sha256) const override;

  // Marks a wanted artifact complete at `path`.
  void Complete(const Digest& sha256, const std::string& path);
  void SetProgress(const Digest& sha256, FetchProgress progress);
  bool Wanted(const Digest& sha256) const { return progress_.count(sha256) != 0; }

  std::vector<Digest> wants;   // every Want, in order
  std::set<Digest> forgotten;  // every Forget
  Status want_status;          // what Want answers (a fetcher that cannot take work)

 private:
  std::map<Digest, FetchProgress> progress_;
  std::map<Digest, std::string> paths_;
};

}  // namespace flotilla::node::parts_testing
