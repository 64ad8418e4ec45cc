// Full artifacts for publish: a layer of the tracker's layer store,
// zstd-compressed, copied into <root>/artifacts/<sha256> with its v2-only
// torrent (tracker/torrent_maker.h).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/digest.h"
#include "core/status.h"
#include "layerstore/layer_store.h"
#include "metadata/release.h"
#include "tracker/publish/torrent_maker.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

using PublishProgressFn = std::function<void(const std::string& line)>;

struct FullArtifactOptions {
  TorrentOptions torrent;
  int zstd_level = 19;
  std::string staging_dir;  // scratch space for the compressed layer
};

// Compresses the layer `diff_id` (`length` bytes) into the staging directory,
// then AddArtifact()s it: the artifact is complete on disk before its torrent,
// both written atomically. Streams: memory use does not grow with the layer.
Result<metadata::Artifact> MakeFullArtifact(layerstore::LayerStore& store, const Digest& diff_id,
                                            uint64_t length, const RepositoryLayout& repo,
                                            const FullArtifactOptions& options,
                                            const PublishProgressFn& progress);

// The full artifact of `diff_id` in a release already published in
// `targets`, if its file (of the signed length) and its torrent are still in
// the repository.
std::optional<metadata::Artifact> FindPublishedFullArtifact(
    const metadata::TargetsMetadata& targets, const Digest& diff_id, const RepositoryLayout& repo);

}  // namespace flotilla::tracker
