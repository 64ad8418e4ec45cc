// LayerStore: listing, verification with quarantine, garbage collection.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "core/file_io.h"
#include "layerstore/layer_store.h"
#include "layerstore/store_index.h"

namespace flotilla::layerstore {
namespace {

// "busybox:1" names "docker.io/library/busybox:1" too, as Docker shows it.
bool RefNames(std::string_view ref, std::string_view name) {
  if (ref == name) return true;
  return ref.size() > name.size() && ref.substr(ref.size() - name.size()) == name &&
         ref[ref.size() - name.size() - 1] == '/';
}

}  // namespace

Result<std::vector<ImageRecord>> LayerStore::ListImages() { return index_->ListImages(); }

Result<ImageRecord> LayerStore::FindImage(std::string_view name) {
  ASSIGN_OR_RETURN(auto images, index_->ListImages());
  const ImageRecord* by_prefix = nullptr;
  int prefix_matches = 0;
  for (const auto& image : images) {
    for (const auto& ref : image.refs) {
      if (RefNames(ref, name)) return image;
    }
    const std::string id = image.config_digest.ToString();
    if (id == name) return image;
    std::string_view hex = name.substr(0, 7) == "sha256:" ? name.substr(7) : name;
    if (hex.size() >= 12 && image.config_digest.Hex().compare(0, hex.size(), hex) == 0) {
      by_prefix = &image;
      ++prefix_matches;
    }
  }
  if (prefix_matches == 1) return *by_prefix;
  if (prefix_matches > 1) return InvalidArgument("'" + std::string(name) + "' is ambiguous");
  return NotFound("no image named '" + std::string(name) + "'");
}

Result<std::vector<LayerInfo>> LayerStore::ListLayers() {
  ASSIGN_OR_RETURN(auto rows, index_->ListLayers());
  std::vector<LayerInfo> out;
  for (const auto& row : rows) out.push_back(row.info);
  return out;
}

Status LayerStore::RemoveImage(const std::string& name) {
  ASSIGN_OR_RETURN(ImageRecord found, FindImage(name));
  std::string key = found.config_digest.ToString();  // by digest: the image and all its refs
  for (const auto& ref : found.refs) {
    if (RefNames(ref, name)) key = ref;  // by name: that ref, and the image if it was the last
  }
  ASSIGN_OR_RETURN(SqliteTransaction transaction, index_->Begin());
  RETURN_IF_ERROR(index_->RemoveImage(key).status());
  return transaction.Commit();
}

Status LayerStore::QuarantineLayer(const Digest& diff_id) {
  RETURN_IF_ERROR(index_->SetLayerState(diff_id, LayerState::kQuarantined));
  const std::string target = root_ + "/quarantine/" + diff_id.Hex() + "." + UniqueName();
  Status moved = env_.Rename(LayerDir(diff_id), target);
  if (moved.code() != StatusCode::kNotFound) {
    RETURN_IF_ERROR(moved.WithContext("quarantine layer " + diff_id.ToString()));
  }
  return env_.SyncDir(root_ + "/layers");
}

Status LayerStore::VerifyLayer(const Digest& diff_id, uint64_t length) {
  uint64_t seen = 0;
  RETURN_IF_ERROR(WriteLayerTar(diff_id, [&](ByteSpan bytes) {
    seen += bytes.size();
    return Status::Ok();
  }));
  if (seen != length) return Corruption("regenerated tar has the wrong length");
  return Status::Ok();
}

Result<VerifyReport> LayerStore::Verify(const ProgressFn& progress) {
  VerifyReport report;
  ASSIGN_OR_RETURN(auto layers, index_->ListLayers());
  size_t item = 0;
  std::set<Digest> ready_layers;
  for (const auto& row : layers) {
    ++item;
    if (row.info.state != LayerState::kReady) continue;
    const std::string id = row.info.diff_id.ToString();
    if (progress) progress(Progress{Phase::kVerifying, item, layers.size(), 0, id});
    Status st = VerifyLayer(row.info.diff_id, row.info.length);
    if (st.ok()) {
      ++report.layers_ok;
      ready_layers.insert(row.info.diff_id);
      continue;
    }
    report.problems.push_back("layer " + id + " is corrupt (" + st.message() + "); quarantined");
    RETURN_IF_ERROR(QuarantineLayer(row.info.diff_id));
  }
  ASSIGN_OR_RETURN(auto blobs, index_->ListBlobs());
  std::set<Digest> ready_blobs;
  for (const auto& blob : blobs) {
    if (blob.quarantined) continue;
    auto got = HashFile(BlobPath(blob.digest));
    if (got.ok() && *got == blob.digest) {
      ++report.blobs_ok;
      ready_blobs.insert(blob.digest);
      continue;
    }
    report.problems.push_back("blob " + blob.digest.ToString() + " is corrupt or missing; " +
                              "quarantined");
    RETURN_IF_ERROR(index_->SetBlobQuarantined(blob.digest));
    Status moved =
        env_.Rename(BlobPath(blob.digest), root_ + "/quarantine/blob-" + blob.digest.Hex());
    if (moved.code() != StatusCode::kNotFound) {
      RETURN_IF_ERROR(moved.WithContext("quarantine blob " + blob.digest.ToString()));
    }
  }
  ASSIGN_OR_RETURN(auto images, index_->ListImages());
  for (const auto& image : images) {
    const std::string id = image.config_digest.ToString();
    if (!ready_blobs.count(image.config_digest)) {
      report.problems.push_back("image " + id + " has no valid config blob");
    }
    for (const auto& layer : image.layers) {
      if (!ready_layers.count(layer.diff_id)) {
        report.problems.push_back("image " + id + " needs layer " + layer.diff_id.ToString() +
                                  ", which the store does not hold intact");
      }
    }
  }
  return report;
}

Result<GcReport> LayerStore::CollectGarbage() {
  GcReport report;
  ASSIGN_OR_RETURN(auto layers, index_->UnreferencedLayers());
  ASSIGN_OR_RETURN(auto blobs, index_->UnreferencedBlobs());
  // Index first, files after: a crash in between leaves unindexed files,
  // which Open() removes.
  ASSIGN_OR_RETURN(SqliteTransaction transaction, index_->Begin());
  for (const auto& d : layers) RETURN_IF_ERROR(index_->DeleteLayer(d));
  for (const auto& d : blobs) RETURN_IF_ERROR(index_->DeleteBlob(d));
  RETURN_IF_ERROR(transaction.Commit());
  for (const auto& d : layers) {
    RETURN_IF_ERROR(MoveToTrash(LayerDir(d)));
    ++report.layers_removed;
  }
  for (const auto& d : blobs) {
    Status removed = env_.Unlink(BlobPath(d));
    if (removed.code() != StatusCode::kNotFound) RETURN_IF_ERROR(removed);
    ++report.blobs_removed;
  }
  // Quarantined evidence goes with the rows that described it.
  const std::string quarantine = root_ + "/quarantine";
  RETURN_IF_ERROR(MoveToTrash(quarantine));
  RETURN_IF_ERROR(CreateDurableDirectories(env_, quarantine, 0700));
  return report;
}

Status LayerStore::RemoveLayer(const Digest& diff_id) {
  ASSIGN_OR_RETURN(auto held, index_->GetLayer(diff_id));
  if (!held) return Status::Ok();
  ASSIGN_OR_RETURN(auto unreferenced, index_->UnreferencedLayers());
  if (std::find(unreferenced.begin(), unreferenced.end(), diff_id) == unreferenced.end()) {
    return FailedPrecondition("layer " + diff_id.ToString() + " is used by an image");
  }
  // Index first, files after: a crash in between leaves an unindexed
  // directory, which Open() removes.
  RETURN_IF_ERROR(index_->DeleteLayer(diff_id));
  return MoveToTrash(LayerDir(diff_id));
}

}  // namespace flotilla::layerstore
