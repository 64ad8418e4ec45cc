// The layer store's SQLite index (core/sqlite.h: WAL, synchronous=FULL). Internal to
// layerstore/; docs/layerstore.md gives the schema. Not thread-safe: one
// LayerStore owns it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sqlite.h"
#include "core/status.h"
#include "layerstore/types.h"

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
  static Result<std::unique_ptr<StoreIndex>> Open(const std::string& path, Env& env);
  ~StoreIndex();

  // A transaction over the calls made while it lives (rolled back unless committed).
  Result<SqliteTransaction> Begin();

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
  explicit StoreIndex(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace flotilla::layerstore
