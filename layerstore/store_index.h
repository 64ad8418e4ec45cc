// The layer store's SQLite index (WAL, synchronous=FULL). Internal to
// layerstore/; docs/layerstore.md gives the schema. Not thread-safe: one
// LayerStore owns it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "layerstore/types.h"

struct sqlite3;

namespace flotilla::layerstore {

struct LayerRow {
  LayerInfo info;
  uint64_t tarsplit_bytes = 0;  // decompressed size of the tar-split file
};

struct BlobRow {
  Digest digest;
  uint64_t size = 0;
  std::string media_type;
  bool quarantined = false;
};

class StoreIndex {
 public:
  static Result<std::unique_ptr<StoreIndex>> Open(const std::string& path);
  ~StoreIndex();

  Status Begin();
  Status Commit();
  void Rollback();

  Result<std::optional<LayerRow>> GetLayer(const Digest& diff_id);
  Status UpsertLayer(const LayerRow& row);
  Status SetLayerState(const Digest& diff_id, LayerState state);
  Status DeleteLayer(const Digest& diff_id);
  Result<std::vector<LayerRow>> ListLayers();

  Status UpsertBlob(const BlobRow& row);
  Status SetBlobQuarantined(const Digest& digest);
  Status DeleteBlob(const Digest& digest);
  Result<std::vector<BlobRow>> ListBlobs();

  // Inserts or updates the image (keeping its refs and a known manifest
  // digest), replaces its layer list and, if given, adds `ref`.
  Status PutImage(const ImageRecord& image, const std::string& ref);
  Result<std::vector<ImageRecord>> ListImages();
  // Removes the ref, and the image when `name` is its digest or its last ref.
  // Returns the number of images removed.
  Result<int> RemoveImage(const std::string& name);

  // Layers and blobs no image references.
  Result<std::vector<Digest>> UnreferencedLayers();
  Result<std::vector<Digest>> UnreferencedBlobs();

 private:
  explicit StoreIndex(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  sqlite3* db_;
};

}  // namespace flotilla::layerstore
