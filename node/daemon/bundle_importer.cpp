#include "node/daemon/bundle_importer.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "node/control/control_protocol.h"

namespace flotilla::node {
namespace {

// Bundle files remembered as tried: far more than a stick holds.
constexpr size_t kMaxTried = 256;
constexpr uint64_t kMaxTriedFileBytes = 1 << 20;

int64_t UnixOf(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t MtimeNs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

bool IsBundleName(const std::string& name) {
  return name.size() > 7 && name[0] != '.' && name.ends_with(".bundle");
}

// The import directory, opened without following a symlink (-1: absent, or not a directory).
int OpenImportDir(const std::string& path) {
  return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

}  // namespace

BundleImporter::BundleImporter(const NodeConfig& config, const Clock& clock, StoreWorker& store,
                               Executor& loop, std::mutex& trusted_dir_lock,
                               std::function<void(const ImportResult&)> imported)
    : config_(config),
      seed_dir_(config.transfer_mode == TransferMode::kP2p ? DataLayout(config.data_dir).transfer()
                                                           : ""),
      clock_(clock),
      store_(store),
      loop_(loop),
      trusted_dir_lock_(trusted_dir_lock),
      imported_(std::move(imported)),
      poll_timer_(loop) {}

BundleImporter::~BundleImporter() {
  poll_timer_.Cancel();
  if (open_fd_ >= 0) ::close(open_fd_);
}

void BundleImporter::Start() {
  if (config_.import_dir.empty()) return;
  LoadTried();
  Poll();
}

void BundleImporter::Stop() { poll_timer_.Cancel(); }

ImportView BundleImporter::view() const {
  std::lock_guard<std::mutex> lock(progress_->mu);
  return progress_->view;
}

ImportDirView BundleImporter::dir_view() const {
  return ImportDirView{config_.import_dir, dir_present_, tried_.size()};
}

Status BundleImporter::Begin(const std::string& path, const std::string& source) {
  if (running_) {
    return FailedPrecondition("an import runs already (" + view().bundle +
                              "); wait for its outcome in `flotilla-node status`");
  }
  running_ = true;
  {
    std::lock_guard<std::mutex> lock(progress_->mu);
    ImportView& v = progress_->view;
    v = ImportView{v.id + 1, path, source, "checking"};
    v.message = "queued behind the store's work";
    v.started_unix = UnixOf(clock_.Now());
  }
  spdlog::info("import: {} ({})", path, source);
  auto result = std::make_shared<Result<ImportResult>>(Internal("the import did not run"));
  const OfflineWindowUse offline = tracker_unreachable_ && tracker_unreachable_()
                                       ? OfflineWindowUse::kAllowed
                                       : OfflineWindowUse::kIgnored;
  store_.WithStore(
      [config = config_, path, result, progress = progress_, &clock = clock_, seed_dir = seed_dir_,
       &trusted_dir_lock = trusted_dir_lock_, offline](layerstore::LayerStore& store) {
        auto report = [progress](const ImportProgress& p) {
          std::lock_guard<std::mutex> lock(progress->mu);
          progress->view.step = p.step;
          progress->view.bytes_done = p.bytes_done;
          progress->view.bytes_total = p.bytes_total;
          progress->view.message = p.line;
          auto& lines = progress->view.lines;
          lines.push_back(p.line);
          if (lines.size() > kMaxImportLines) {
            lines.erase(lines.begin());
            ++progress->view.lines_dropped;
          }
        };
        *result = ImportBundleInto(config, store, path, clock, report, seed_dir, {},
                                   &trusted_dir_lock, offline);
        return result->ok() ? (*result)->added : std::vector<layerstore::LayerInfo>{};
      },
      [this, result] { Finished(*result); });
  return Status::Ok();
}

void BundleImporter::Finished(const Result<ImportResult>& result) {
  running_ = false;
  if (open_fd_ >= 0) {
    ::close(open_fd_);
    open_fd_ = -1;
  }
  const std::string read_through = std::exchange(read_through_, "");
  {
    std::lock_guard<std::mutex> lock(progress_->mu);
    ImportView& v = progress_->view;
    v.finished_unix = UnixOf(clock_.Now());
    if (result.ok() && !result->not_deployed.empty()) {
      // Its fleet document names another release: refused, the document accepted.
      v.step = "refused";
      v.code = std::string(StatusCodeName(StatusCode::kFailedPrecondition));
      v.message = result->not_deployed;
    } else if (result.ok()) {
      v.step = "imported";
      v.app = result->app;
      v.release = result->version;
      v.code.clear();
      v.message =
          fmt::format("imported {} release {}: {} layer(s) rebuilt from {} byte(s)", result->app,
                      result->version, result->layers_rebuilt, result->artifact_bytes);
      if (result->fleet) {
        v.message +=
            fmt::format("; this device's fleet document v{} names it", result->fleet_version);
      }
    } else {
      v.step = "refused";
      v.code = std::string(StatusCodeName(result.status().code()));
      v.message = result.status().message();
      // A file of the import directory is read through its descriptor: name it.
      if (!read_through.empty()) {
        for (size_t at; (at = v.message.find(read_through)) != std::string::npos;) {
          v.message.replace(at, read_through.size(), v.bundle);
        }
      }
    }
    spdlog::info("import {}: {}", v.bundle, v.message);
  }
  if (result.ok()) imported_(*result);
}

void BundleImporter::Poll() {
  poll_timer_.Schedule(std::chrono::seconds(config_.import_poll_s), [this] { Poll(); });
  const auto now = ListBundles();
  std::map<std::string, BundleFileId> still_pending;
  for (const auto& [name, file] : now) {
    if (Tried(file)) continue;
    auto before = pending_.find(name);
    if (before == pending_.end() || !(before->second == file) || running_) {
      still_pending[name] = file;  // new, still being written, or waiting for the running import
      continue;
    }
    BeginFromDir(file);
  }
  pending_ = std::move(still_pending);
}

std::map<std::string, BundleFileId> BundleImporter::ListBundles() {
  std::map<std::string, BundleFileId> bundles;
  const int dir_fd = OpenImportDir(config_.import_dir);
  if (dir_fd < 0) {
    if (dir_present_) spdlog::info("import_dir {}: gone", config_.import_dir);
    dir_present_ = false;
    return bundles;
  }
  if (!dir_present_) spdlog::info("import_dir {}: present", config_.import_dir);
  dir_present_ = true;
  DIR* dir = ::fdopendir(dir_fd);
  if (!dir) {
    ::close(dir_fd);
    return bundles;
  }
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (!IsBundleName(name)) continue;
    struct stat st {};
    // A symlink is seen as one (and skipped), never followed.
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) continue;
    bundles[name] = BundleFileId{name, static_cast<uint64_t>(st.st_size), MtimeNs(st)};
  }
  ::closedir(dir);
  return bundles;
}

void BundleImporter::BeginFromDir(const BundleFileId& file) {
  tried_.push_back(file);
  while (tried_.size() > kMaxTried) tried_.pop_front();
  SaveTried();
  const int dir_fd = OpenImportDir(config_.import_dir);
  const int fd = dir_fd < 0 ? -1
                            : ::openat(dir_fd, file.name.c_str(),
                                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (dir_fd >= 0) ::close(dir_fd);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) != file.size || MtimeNs(st) != file.mtime_ns) {
    if (fd >= 0) ::close(fd);
    spdlog::warn("import_dir: {} changed or went away before its import", file.name);
    tried_.pop_back();  // not tried after all: looked at again at the next poll
    SaveTried();
    return;
  }
  // The import reads that very file through its descriptor.
  const std::string through = fmt::format("/proc/self/fd/{}", fd);
  Status begun = Begin(through, "import_dir");
  if (!begun.ok()) {
    ::close(fd);
    return;
  }
  open_fd_ = fd;
  read_through_ = through;
  std::lock_guard<std::mutex> lock(progress_->mu);
  progress_->view.bundle = config_.import_dir + "/" + file.name;
}

bool BundleImporter::Tried(const BundleFileId& file) const {
  return std::find(tried_.begin(), tried_.end(), file) != tried_.end();
}

// <data_dir>/imports.json: {"tried": [{"name": "web-2.bundle", "size": 4508,
// "mtime_ns": 1765000000000000000}, ...]}, oldest first.
void BundleImporter::LoadTried() {
  const std::string path = DataLayout(config_.data_dir).root + "/imports.json";
  auto text = ReadTextFileBounded(path, kMaxTriedFileBytes);
  if (!text.ok()) return;  // none yet
  auto json = ParseJsonStrict(*text);
  if (!json.ok() || !json->is_object() || !json->contains("tried") ||
      !(*json)["tried"].is_array()) {
    spdlog::warn("{}: unreadable; every bundle of import_dir is new", path);
    return;
  }
  for (const auto& t : (*json)["tried"]) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("size") ||
        !t["size"].is_number_unsigned() || !t.contains("mtime_ns") ||
        !t["mtime_ns"].is_number_integer()) {
      continue;
    }
    tried_.push_back(BundleFileId{t["name"].get<std::string>(), t["size"].get<uint64_t>(),
                                  t["mtime_ns"].get<int64_t>()});
  }
  while (tried_.size() > kMaxTried) tried_.pop_front();
}

void BundleImporter::SaveTried() {
  Json tried = Json::array();
  for (const auto& t : tried_) {
    tried.push_back({{"name", t.name}, {"size", t.size}, {"mtime_ns", t.mtime_ns}});
  }
  const std::string path = DataLayout(config_.data_dir).root + "/imports.json";
  Status saved = WriteFileAtomic(path, DumpJson(Json{{"tried", tried}}) + "\n", 0600);
  if (!saved.ok()) spdlog::warn("{}: {}", path, saved.ToString());
}

}  // namespace flotilla::node
