// The running daemon's offline bundle imports (docs/bundle.md, "Importing
// into a running node"): one at a time, on the store's worker lane (the
// checks read the store, the rebuild writes it), with the same checks as
// `flotilla-node import` on a stopped node. Its progress and outcome show in
// the control API's status; a release it imported is offered to the daemon,
// which deploys it through the health-gated switch as usual.
//
// The import directory (node.json `import_dir`, a USB stick's mount point) is
// polled for `*.bundle` files: a file is imported once its size and mtime
// held still between two polls, and only once: what was tried (name, size,
// mtime) is remembered in <data_dir>/imports.json, so neither a refused
// bundle nor an imported one is tried again, after a restart either. The
// directory is only read: no file is written, moved or removed there, and no
// symlink is followed (the directory itself, or an entry).
//
// Thread-safety: every method runs on the loop; the import job's progress
// crosses to the loop through a mutex.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "node/control/node_control.h"
#include "node/daemon/bundle_import.h"
#include "node/daemon/node_config.h"
#include "node/daemon/store_worker.h"

namespace flotilla::node {

// What identifies a bundle file of the import directory across polls and restarts.
struct BundleFileId {
  std::string name;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const BundleFileId&) const = default;
};

class BundleImporter {
 public:
  // `imported` runs on the loop once a release is imported, or once the
  // bundle's fleet document for this device refused it (`not_deployed`; its
  // fleet files to commit, as for an imported one, in `fleet`). The import
  // commits the bundle's metadata to <data_dir>/tuf holding
  // `trusted_dir_lock`, the lock every refresh of it holds (TufMetadataSource).
  BundleImporter(const NodeConfig& config, const Clock& clock, StoreWorker& store, Executor& loop,
                 std::mutex& trusted_dir_lock, std::function<void(const ImportResult&)> imported);
  ~BundleImporter();

  // Asked on the loop as each import begins: whether the tracker is
  // unreachable now, so offline validity windows count (docs/bundle.md).
  void SetTrackerUnreachable(std::function<bool()> tracker_unreachable) {
    tracker_unreachable_ = std::move(tracker_unreachable);
  }

  // Reads what the import directory's earlier polls tried; starts polling.
  void Start();
  void Stop();

  // Starts importing `path` ("control" or "import_dir" as `source`);
  // FailedPrecondition when an import runs.
  Status Begin(const std::string& path, const std::string& source);
  ImportView view() const;
  ImportDirView dir_view() const;

 private:
  struct Progress {
    std::mutex mu;
    ImportView view;
  };
  void Poll();
  // The bundle files of the import directory now (none when it is absent).
  std::map<std::string, BundleFileId> ListBundles();
  // Imports the directory's file through a descriptor opened without
  // following a symlink, checked to be that very file.
  void BeginFromDir(const BundleFileId& file);
  void Finished(const Result<ImportResult>& result);
  void LoadTried();
  void SaveTried();
  bool Tried(const BundleFileId& file) const;

  NodeConfig config_;
  // The p2p fetcher's directory, where imported artifacts go to be seeded
  // ("" in http-only mode: they are removed with the staging copy).
  std::string seed_dir_;
  const Clock& clock_;
  StoreWorker& store_;
  Executor& loop_;
  std::mutex& trusted_dir_lock_;
  std::function<void(const ImportResult&)> imported_;
  std::function<bool()> tracker_unreachable_;
  std::shared_ptr<Progress> progress_ = std::make_shared<Progress>();
  bool running_ = false;
  int open_fd_ = -1;          // the import directory's file being imported
  std::string read_through_;  // its /proc/self/fd path
  TimerSlot poll_timer_;
  bool dir_present_ = false;
  // Seen at the last poll, not tried yet: imported when unchanged at the next.
  std::map<std::string, BundleFileId> pending_;
  // Tried, oldest first (at most kMaxTried remembered).
  std::deque<BundleFileId> tried_;
};

}  // namespace flotilla::node
