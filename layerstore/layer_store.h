// The layer store: images, layers and blobs on one device or tracker.
//
// What it does, in the order later modules use it:
//  1. ImportImage: a docker-archive (legacy manifest.json or OCI-layout form),
//     an OCI layout directory or an oci-archive tarball; layers plain, gzip or
//     zstd; an OCI index resolved to one platform. Yields an ImageRecord.
//  2. UnpackLayer: a staged, verifying unpack of ONE uncompressed layer tar
//     from a byte stream (the node feeds what it rebuilt from artifacts); the
//     layer becomes visible only if it is exactly `length` bytes and hashes to
//     `diff_id`.
//  3. WriteLayerTar: the byte-exact layer tar, regenerated from the unpacked
//     tree and the tar-split kept beside it, as a stream; OpenLayerFile gives
//     random access to one file of a stored layer by its path in the tar.
//  4. ListImages/ListLayers, Verify (re-hash everything, quarantine what is
//     corrupt), CollectGarbage (remove what no image references), RemoveImage.
//
// On disk (docs/layerstore.md): <root>/index.db (SQLite, WAL),
// <root>/blobs/sha256/<hex> (manifests, configs), <root>/layers/<hex>/{tree/,
// tarsplit.zst}, and staging/, trash/, quarantine/. Every change is a rename
// of something complete, then an index transaction; Open() removes whatever a
// crash left half-done, so nothing unverified is ever used.
//
// Thread-safety: none; one LayerStore per store directory. Open() takes an
// exclusive lock on the directory (a second opener gets FailedPrecondition).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/zstd_stream.h"
#include "layerstore/byte_source.h"
#include "layerstore/layer_unpacker.h"
#include "layerstore/safe_path.h"
#include "layerstore/types.h"

namespace flotilla::layerstore {

class StoreIndex;
struct StagedLayer;

// Reads only what the image at `path` says of itself (index, manifests,
// config; no layer) and whether ImportImage(path, options) would find the
// image `options` chooses (its platform, its --select name): NotFound, with
// what the index offers, when it would not. Lets a caller check every
// platform of a multi-platform import before importing any.
Status CheckImageChoice(const std::string& path, const ImportOptions& options);

class LayerStore {
 public:
  // Opens (creating if needed) the store at `root` and recovers from any
  // crash. Every change to the store's files goes through `env`.
  static Result<std::unique_ptr<LayerStore>> Open(const std::string& root,
                                                  Env& env = Env::Default());
  ~LayerStore();
  LayerStore(const LayerStore&) = delete;
  LayerStore& operator=(const LayerStore&) = delete;

  // (1) Imports the image at `path` (a directory or a tar file).
  Result<ImageRecord> ImportImage(const std::string& path, const ImportOptions& options);

  // (2) Unpacks the uncompressed layer tar read from `tar` into the store.
  // A layer already present is not unpacked again (`tar` is then not read).
  Result<LayerInfo> UnpackLayer(ByteSource& tar, const Digest& diff_id, uint64_t length,
                                const UnpackOptions& options, const ProgressFn& progress = {});

  // (3) Streams the exact tar of a ready layer into `sink`. Fails with
  // Corruption (after the sink saw the bytes) if they do not hash to diff_id.
  Status WriteLayerTar(const Digest& diff_id, const ByteSink& sink);
  // Opens, read-only, the regular file or symlink-free path `path` (as named
  // in the layer's tar) of a ready layer.
  Result<UniqueFd> OpenLayerFile(const Digest& diff_id, std::string_view path);
  // The unpacked tree of a ready layer: an overlayfs lower directory.
  Result<std::string> LayerTreePath(const Digest& diff_id);
  Result<std::optional<LayerInfo>> FindLayer(const Digest& diff_id);

  // (4) Listing, verification, garbage collection.
  Result<std::vector<ImageRecord>> ListImages();
  // By ref name, or by config digest ("sha256:..." or its first 12+ hex digits).
  Result<ImageRecord> FindImage(std::string_view name);
  Result<std::vector<LayerInfo>> ListLayers();
  Result<VerifyReport> Verify(const ProgressFn& progress = {});
  Result<GcReport> CollectGarbage();
  // Removes a ref (and the image when no ref is left) or an image by digest.
  Status RemoveImage(const std::string& name);
  // Removes one layer no image references (the node keeps layers of the
  // releases it runs without image records, and drops those of old ones).
  // FailedPrecondition when an image still references it; OK if absent.
  Status RemoveLayer(const Digest& diff_id);

  const std::string& root() const { return root_; }
  Env& env() const { return env_; }
  // What Open() found and cleaned up after a crash, one sentence each.
  const std::vector<std::string>& recovery_notes() const { return recovery_notes_; }

 private:
  friend class ImageImporter;
  LayerStore(std::string root, Env& env, UniqueFd lock, std::unique_ptr<StoreIndex> index);

  Status Recover();
  Status RecoverLayers();
  Status RecoverBlobs();
  // Unpacks into a fresh staging directory; the caller promotes or drops it.
  Result<std::unique_ptr<StagedLayer>> Stage(ByteSource& tar, const UnpackLimits& limits,
                                             const ProgressFn& progress, size_t item, size_t items);
  // Makes staged layers durable and moves them into layers/ (not yet indexed).
  Status Promote(const std::vector<StagedLayer*>& staged);
  Status WriteBlob(const Digest& digest, ByteSpan bytes);
  Status MoveToTrash(const std::string& path);
  Status QuarantineLayer(const Digest& diff_id);
  Status VerifyLayer(const Digest& diff_id, uint64_t length);
  std::string LayerDir(const Digest& diff_id) const;
  std::string BlobPath(const Digest& digest) const;
  std::string UniqueName();

  std::string root_;
  Env& env_;
  UniqueFd lock_;
  std::unique_ptr<StoreIndex> index_;
  std::vector<std::string> recovery_notes_;
  uint64_t name_counter_ = 0;
};

// A layer unpacked into staging/, not yet promoted. Destroying it removes it.
struct StagedLayer {
  Env* env = nullptr;
  std::string dir;  // staging/<name>, holding tree/ and tarsplit.zst
  UnpackResult result;
  bool promoted = false;
  ~StagedLayer();
};

}  // namespace flotilla::layerstore
