#include "layerstore/layer_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <set>

#include "core/file_io.h"
#include "layerstore/store_index.h"
#include "layerstore/tar_split.h"

namespace flotilla::layerstore {
namespace {

constexpr const char* kSubdirs[] = {"blobs",   "blobs/sha256", "layers",
                                    "staging", "trash",        "quarantine"};

// Names of the entries of a directory (not "." or "..").
Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return IOErrorFromErrno("open directory " + dir, errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

Result<UniqueFd> OpenDirectory(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  return fd;
}

}  // namespace

StagedLayer::~StagedLayer() {
  if (!promoted && !dir.empty()) env->RemoveTree(dir).IgnoreError();
}

LayerStore::LayerStore(std::string root, Env& env, UniqueFd lock, std::unique_ptr<StoreIndex> index)
    : root_(std::move(root)), env_(env), lock_(std::move(lock)), index_(std::move(index)) {}

// The index closes before the lock is released.
LayerStore::~LayerStore() { index_.reset(); }

Result<std::unique_ptr<LayerStore>> LayerStore::Open(const std::string& root, Env& env) {
  for (const char* sub : kSubdirs) {
    RETURN_IF_ERROR(CreateDurableDirectories(env, root + "/" + sub, 0700));
  }
  UniqueFd lock(::open((root + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return IOErrorFromErrno("open " + root + "/lock", errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return FailedPrecondition("store " + root + " is in use by another process");
    }
    return IOErrorFromErrno("lock " + root, errno);
  }
  ASSIGN_OR_RETURN(auto index, StoreIndex::Open(root + "/index.db", env));
  std::unique_ptr<LayerStore> store(new LayerStore(root, env, std::move(lock), std::move(index)));
  RETURN_IF_ERROR_CTX(store->Recover(), "recover store " + root);
  return store;
}

std::string LayerStore::LayerDir(const Digest& diff_id) const {
  return root_ + "/layers/" + diff_id.Hex();
}

std::string LayerStore::BlobPath(const Digest& digest) const {
  return root_ + "/blobs/sha256/" + digest.Hex();
}

std::string LayerStore::UniqueName() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d.%llu.%08llx", ::getpid(),
                static_cast<unsigned long long>(++name_counter_),
                static_cast<unsigned long long>(rng() & 0xffffffffu));
  return buf;
}

Status LayerStore::MoveToTrash(const std::string& path) {
  const std::string target = root_ + "/trash/" + UniqueName();
  Status moved = env_.Rename(path, target);
  if (moved.code() == StatusCode::kNotFound) return Status::Ok();
  RETURN_IF_ERROR(moved);
  RETURN_IF_ERROR(env_.SyncDir(root_ + "/trash"));
  return env_.RemoveTree(target);
}

Status LayerStore::Recover() {
  for (const char* sub : {"staging", "trash"}) {
    ASSIGN_OR_RETURN(auto names, ListDir(root_ + "/" + sub));
    for (const auto& name : names) {
      RETURN_IF_ERROR(env_.RemoveTree(root_ + "/" + sub + "/" + name));
      if (std::string(sub) == "staging") {
        recovery_notes_.push_back("removed unfinished staging directory " + name);
      }
    }
  }
  RETURN_IF_ERROR(RecoverLayers());
  return RecoverBlobs();
}

Status LayerStore::RecoverLayers() {
  ASSIGN_OR_RETURN(auto rows, index_->ListLayers());
  std::set<std::string> ready;
  for (const auto& row : rows) {
    if (row.info.state != LayerState::kReady) continue;
    const std::string dir = LayerDir(row.info.diff_id);
    struct stat st;
    if (::stat((dir + "/tree").c_str(), &st) != 0 ||
        ::stat((dir + "/tarsplit.zst").c_str(), &st) != 0) {
      // Only a lost write could do this; the layer is re-fetched or re-imported.
      RETURN_IF_ERROR(index_->SetLayerState(row.info.diff_id, LayerState::kQuarantined));
      recovery_notes_.push_back("layer " + row.info.diff_id.ToString() +
                                " is indexed but missing on disk; marked quarantined");
      continue;
    }
    ready.insert(row.info.diff_id.Hex());
  }
  ASSIGN_OR_RETURN(auto names, ListDir(root_ + "/layers"));
  for (const auto& name : names) {
    if (ready.count(name)) continue;
    RETURN_IF_ERROR(MoveToTrash(root_ + "/layers/" + name));
    recovery_notes_.push_back("removed layer directory " + name + " that was never indexed");
  }
  return Status::Ok();
}

Status LayerStore::RecoverBlobs() {
  ASSIGN_OR_RETURN(auto rows, index_->ListBlobs());
  std::set<std::string> known;
  for (const auto& row : rows) {
    if (!row.quarantined) known.insert(row.digest.Hex());
  }
  ASSIGN_OR_RETURN(auto names, ListDir(root_ + "/blobs/sha256"));
  for (const auto& name : names) {
    if (known.count(name)) continue;
    Status removed = env_.Unlink(root_ + "/blobs/sha256/" + name);
    if (removed.code() != StatusCode::kNotFound) RETURN_IF_ERROR(removed);
    recovery_notes_.push_back("removed blob file " + name + " that was never indexed");
  }
  return Status::Ok();
}

Result<std::unique_ptr<StagedLayer>> LayerStore::Stage(ByteSource& tar, const UnpackLimits& limits,
                                                       const ProgressFn& progress, size_t item,
                                                       size_t items) {
  auto staged = std::make_unique<StagedLayer>();
  staged->env = &env_;
  staged->dir = root_ + "/staging/" + UniqueName();
  RETURN_IF_ERROR(env_.MakeDir(staged->dir, 0700));
  RETURN_IF_ERROR(env_.MakeDir(staged->dir + "/tree", 0755));
  ASSIGN_OR_RETURN(UniqueFd tree, OpenDirectory(staged->dir + "/tree"));
  ASSIGN_OR_RETURN(auto split,
                   env_.OpenForWrite(staged->dir + "/tarsplit.zst", OpenMode::kCreateNew, 0600));
  BytesProgress on_bytes;
  if (progress) {
    on_bytes = [&](uint64_t bytes) {
      progress(Progress{Phase::kUnpacking, item, items, bytes, {}});
    };
  }
  ASSIGN_OR_RETURN(staged->result, UnpackLayerTar(tar, env_, tree.get(), *split, limits, on_bytes));
  RETURN_IF_ERROR(split->Close());
  return staged;
}

Status LayerStore::Promote(const std::vector<StagedLayer*>& staged) {
  if (staged.empty()) return Status::Ok();
  // One syncfs makes every file of every staged layer durable before any
  // rename can make it visible: cheaper on an SD card than an fsync per file.
  RETURN_IF_ERROR(env_.SyncFilesystem(root_ + "/staging"));
  for (StagedLayer* layer : staged) {
    Status renamed = env_.Rename(layer->dir, LayerDir(layer->result.diff_id));
    // AlreadyExists: promoted by an earlier import in this process; staging is dropped.
    if (renamed.code() == StatusCode::kAlreadyExists) continue;
    RETURN_IF_ERROR(renamed.WithContext("promote layer " + layer->result.diff_id.ToString()));
    layer->promoted = true;
  }
  return env_.SyncDir(root_ + "/layers");
}

Status LayerStore::WriteBlob(const Digest& digest, ByteSpan bytes) {
  return WriteFileAtomic(BlobPath(digest), bytes, 0644, env_);
}

Result<LayerInfo> LayerStore::UnpackLayer(ByteSource& tar, const Digest& diff_id, uint64_t length,
                                          const UnpackOptions& options,
                                          const ProgressFn& progress) {
  ASSIGN_OR_RETURN(auto existing, index_->GetLayer(diff_id));
  if (existing && existing->info.state == LayerState::kReady) return existing->info;
  UnpackLimits limits;
  limits.max_length = length;
  limits.expected_length = length;
  limits.expected_diff_id = diff_id;
  limits.allow_devices = options.allow_devices;
  if (progress) progress(Progress{Phase::kUnpacking, 1, 1, 0, {}});
  ASSIGN_OR_RETURN(auto staged, Stage(tar, limits, progress, 1, 1));
  if (progress) progress(Progress{Phase::kPromoting, 1, 1, 0, {}});
  RETURN_IF_ERROR(Promote({staged.get()}));
  if (progress) progress(Progress{Phase::kIndexing, 1, 1, 0, {}});
  LayerRow row;
  row.info = LayerInfo{diff_id, staged->result.length, staged->result.entries, LayerState::kReady};
  row.tarsplit_bytes = staged->result.tarsplit_logical_bytes;
  RETURN_IF_ERROR(index_->UpsertLayer(row));
  if (progress) progress(Progress{Phase::kDone, 1, 1, 0, {}});
  return row.info;
}

Result<std::optional<LayerInfo>> LayerStore::FindLayer(const Digest& diff_id) {
  ASSIGN_OR_RETURN(auto row, index_->GetLayer(diff_id));
  if (!row) return std::optional<LayerInfo>();
  return std::optional<LayerInfo>(row->info);
}

Result<std::string> LayerStore::LayerTreePath(const Digest& diff_id) {
  ASSIGN_OR_RETURN(auto row, index_->GetLayer(diff_id));
  if (!row || row->info.state != LayerState::kReady) {
    return NotFound("layer " + diff_id.ToString() + " is not in the store");
  }
  return LayerDir(diff_id) + "/tree";
}

Result<UniqueFd> LayerStore::OpenLayerFile(const Digest& diff_id, std::string_view path) {
  ASSIGN_OR_RETURN(std::string tree_path, LayerTreePath(diff_id));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeRelativePath(path));
  ASSIGN_OR_RETURN(UniqueFd tree, OpenDirectory(tree_path));
  return OpenInRoot(tree.get(), normalized, O_RDONLY);
}

Status LayerStore::WriteLayerTar(const Digest& diff_id, const ByteSink& sink) {
  ASSIGN_OR_RETURN(auto row, index_->GetLayer(diff_id));
  if (!row || row->info.state != LayerState::kReady) {
    return NotFound("layer " + diff_id.ToString() + " is not in the store");
  }
  const std::string dir = LayerDir(diff_id);
  ASSIGN_OR_RETURN(UniqueFd tree, OpenDirectory(dir + "/tree"));
  UniqueFd split(::open((dir + "/tarsplit.zst").c_str(), O_RDONLY | O_CLOEXEC));
  if (!split.valid()) return IOErrorFromErrno("open tar-split of " + diff_id.ToString(), errno);
  Sha256Hasher hasher;
  uint64_t written = 0;
  auto emit = [&](ByteSpan bytes) -> Status {
    written += bytes.size();
    if (written > row->info.length) return Corruption("regenerated tar is too long");
    hasher.Update(bytes);
    return sink(bytes);
  };
  Bytes buffer(128 * 1024);
  TarSplitVisitor visitor;
  visitor.on_raw = emit;
  visitor.on_file = [&](uint64_t size, std::string_view path) -> Status {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenInRoot(tree.get(), path, O_RDONLY));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != size) {
      return Corruption("file '" + std::string(path) + "' changed size in the stored layer");
    }
    for (uint64_t left = size; left > 0;) {
      auto piece = std::span(buffer).first(std::min<uint64_t>(left, buffer.size()));
      ASSIGN_OR_RETURN(size_t n, ReadSome(fd.get(), piece).WithContext(std::string(path)));
      if (n == 0) return Corruption("file '" + std::string(path) + "' is shorter than recorded");
      RETURN_IF_ERROR(emit(piece.first(n)));
      left -= n;
    }
    return Status::Ok();
  };
  ASSIGN_OR_RETURN(TarSplitEnd end, ReadTarSplit(split.get(), row->tarsplit_bytes, visitor));
  Digest got = hasher.Finish();
  if (end.diff_id != diff_id || end.tar_length != row->info.length || written != end.tar_length ||
      got != diff_id) {
    return Corruption("layer " + diff_id.ToString() + " regenerates to " + got.ToString() + " (" +
                      std::to_string(written) + " bytes)");
  }
  return Status::Ok();
}

}  // namespace flotilla::layerstore
