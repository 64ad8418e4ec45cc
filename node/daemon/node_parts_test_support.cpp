#include "node/daemon/node_parts_test_support.h"

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/zstd_stream.h"
#include "layerstore/types.h"

namespace flotilla::node::parts_testing {

MadeLayer MakeLayer(const std::string& dir, layerstore::testing::TarBuilder& tar) {
  const Bytes bytes = tar.Finish();
  MadeLayer made;
  made.layer.diff_id = Digest::Of(bytes);
  made.layer.length = bytes.size();
  auto compressed = ZstdCompress(bytes);
  EXPECT_TRUE(compressed.ok()) << compressed.status().ToString();
  made.artifact.layer = made.layer.diff_id;
  made.artifact.kind = metadata::ArtifactKind::kFull;
  made.artifact.sha256 = Digest::Of(*compressed);
  made.artifact.length = compressed->size();
  made.artifact.compression = "zstd";
  made.artifact_path = dir + "/" + made.artifact.sha256.Hex() + ".zst";
  EXPECT_TRUE(WriteFileAtomic(made.artifact_path, *compressed).ok());
  return made;
}

MadeLayer MakeSmallLayer(const std::string& dir, const std::string& seed) {
  layerstore::testing::TarBuilder tar;
  tar.Dir("etc/").File("etc/motd", "release " + seed + "\n").File("etc/seed", seed);
  return MakeLayer(dir, tar);
}

metadata::Release ReleaseOf(const std::string& app, uint64_t version, const MadeLayer& layer,
                            Json app_spec) {
  metadata::Release release;
  release.app = app;
  release.version = version;
  release.image.platform = layerstore::Platform::Host().ToString();
  release.image.layers = {layer.layer};
  release.artifacts = {layer.artifact};
  release.app_spec = std::move(app_spec);
  return release;
}

Status ScriptedFetcher::Want(const ArtifactRequest& request) {
  wants.push_back(request.sha256);
  RETURN_IF_ERROR(want_status);
  FetchProgress& p = progress_[request.sha256];
  p.bytes_total = request.length;
  if (p.state == FetchState::kQueued) p.state = FetchState::kFetching;
  return Status::Ok();
}

Status ScriptedFetcher::Forget(const Digest& sha256) {
  forgotten.insert(sha256);
  progress_.erase(sha256);
  paths_.erase(sha256);
  return Status::Ok();
}

Result<FetchProgress> ScriptedFetcher::Progress(const Digest& sha256) const {
  auto it = progress_.find(sha256);
  if (it == progress_.end()) return NotFound(sha256.ToString() + " was never wanted");
  return it->second;
}

Result<std::string> ScriptedFetcher::CompletedPath(const Digest& sha256) const {
  auto it = paths_.find(sha256);
  if (it == paths_.end()) return NotFound(sha256.ToString() + " is not complete");
  return it->second;
}

void ScriptedFetcher::Complete(const Digest& sha256, const std::string& path) {
  FetchProgress& p = progress_[sha256];
  p.state = FetchState::kComplete;
  p.bytes_verified = p.bytes_total;
  p.bytes_from_origin = p.bytes_total;
  paths_[sha256] = path;
}

void ScriptedFetcher::SetProgress(const Digest& sha256, FetchProgress progress) {
  progress_[sha256] = std::move(progress);
}

}  // namespace flotilla::node::parts_testing
