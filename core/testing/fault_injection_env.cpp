#include "core/testing/fault_injection_env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/fd.h"
#include "core/testing/env_sqlite_vfs.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;

// Absolute and lexically normal, so that a caller's path and the readlink of
// a descriptor name a file the same way (see REQUIRES in the header).
std::string Normalize(const std::string& path) {
  std::string p = fs::absolute(path).lexically_normal().string();
  if (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string Parent(const std::string& path) { return fs::path(path).parent_path().string(); }

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool Below(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

Status Errno(const std::string& what) { return IOErrorFromErrno(what, errno); }

}  // namespace

// A file written through the Env: every change is recorded before it is made.
class FaultInjectionEnv::File final : public WritableFile {
 public:
  File(FaultInjectionEnv& env, UniqueFd fd, FileStatePtr state, std::string path)
      : env_(env), fd_(std::move(fd)), state_(std::move(state)), path_(std::move(path)) {}
  ~File() override { Close().IgnoreError(); }

  Status Append(ByteSpan data) override {
    RETURN_IF_ERROR(WriteAt(data, offset_));
    offset_ += data.size();
    return Status::Ok();
  }
  Status WriteAt(ByteSpan data, uint64_t offset) override {
    std::lock_guard lock(env_.mu_);
    RETURN_IF_ERROR(env_.Check(Step::kWrite).WithContext("write " + path_));
    RETURN_IF_ERROR(Remember(offset, data.size()));
    return PwriteAll(fd_.get(), data, offset).WithContext(path_);
  }
  Status Truncate(uint64_t size) override {
    std::lock_guard lock(env_.mu_);
    RETURN_IF_ERROR(env_.Check(Step::kWrite).WithContext("truncate " + path_));
    RETURN_IF_ERROR(Remember(size, UINT64_MAX - size));
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return Errno("truncate " + path_);
    return Status::Ok();
  }
  Status Sync() override {
    std::lock_guard lock(env_.mu_);
    RETURN_IF_ERROR(env_.Check(Step::kSync).WithContext("fsync " + path_));
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return Errno("stat " + path_);
    state_->undo.clear();
    state_->synced_size = static_cast<uint64_t>(st.st_size);
    return Status::Ok();
  }
  Status Close() override {
    if (!fd_.valid()) return Status::Ok();
    std::lock_guard lock(env_.mu_);
    fd_.Reset();
    --env_.open_files_;
    if (env_.crashed_) return IOError("close " + path_);
    return Status::Ok();
  }
  int fd() const override { return fd_.get(); }

 private:
  static Status IOError(const std::string& what) {
    return Status(StatusCode::kIOError, what + ": simulated crash");
  }
  // Keeps the synced bytes that [offset, offset + length) is about to change.
  Status Remember(uint64_t offset, uint64_t length) {
    if (offset >= state_->synced_size) return Status::Ok();
    Bytes old(std::min(length, state_->synced_size - offset));
    ASSIGN_OR_RETURN(size_t n, PreadAll(fd_.get(), old, offset));
    old.resize(n);
    state_->undo.push_back(Undo{offset, std::move(old)});
    return Status::Ok();
  }

  FaultInjectionEnv& env_;
  UniqueFd fd_;
  FileStatePtr state_;
  std::string path_;
  uint64_t offset_ = 0;
};

FaultInjectionEnv::FaultInjectionEnv(std::string stash_dir)
    : stash_dir_(Normalize(stash_dir)), vfs_(std::make_unique<EnvSqliteVfs>(*this)) {
  fs::create_directories(stash_dir_);
}

FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::FailWriteAt(uint64_t n) {
  std::lock_guard lock(mu_);
  fail_write_at_ = n;
}
void FaultInjectionEnv::FailSyncAt(uint64_t n) {
  std::lock_guard lock(mu_);
  fail_sync_at_ = n;
}
void FaultInjectionEnv::CrashAtWrite(uint64_t n) {
  std::lock_guard lock(mu_);
  crash_write_at_ = n;
}
void FaultInjectionEnv::CrashAtBoundary(uint64_t n) {
  std::lock_guard lock(mu_);
  crash_boundary_at_ = n;
}
void FaultInjectionEnv::Reset() {
  std::lock_guard lock(mu_);
  writes_ = syncs_ = boundaries_ = 0;
  fail_write_at_ = fail_sync_at_ = crash_write_at_ = crash_boundary_at_ = 0;
  crashed_ = false;
}
bool FaultInjectionEnv::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}
uint64_t FaultInjectionEnv::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}
uint64_t FaultInjectionEnv::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}
uint64_t FaultInjectionEnv::boundaries() const {
  std::lock_guard lock(mu_);
  return boundaries_;
}
const char* FaultInjectionEnv::sqlite_vfs() const { return vfs_->name(); }

Status FaultInjectionEnv::Check(Step step) {
  auto crash = [this] {
    crashed_ = true;
    return Status(StatusCode::kIOError, "simulated crash");
  };
  if (crashed_) return Status(StatusCode::kIOError, "simulated crash");
  if (step == Step::kWrite) {
    ++writes_;
    if (writes_ == crash_write_at_) return crash();
    if (writes_ == fail_write_at_) return Status(StatusCode::kIOError, "injected write failure");
  }
  if (step == Step::kSync || step == Step::kBoundary) {
    ++boundaries_;
    if (boundaries_ == crash_boundary_at_) return crash();
  }
  if (step == Step::kSync && ++syncs_ == fail_sync_at_) {
    return Status(StatusCode::kIOError, "injected fsync failure");
  }
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::Open(const std::string& path,
                                                              OpenMode mode, mode_t perms) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kOther).WithContext("create " + path));
  const bool existed = Exists(path);
  int flags =
      O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (mode == OpenMode::kCreateNew ? O_EXCL : 0);
  UniqueFd fd(::open(path.c_str(), flags, perms));
  if (!fd.valid()) {
    if (errno == EEXIST) return AlreadyExists(path + " exists already");
    return Errno("create " + path);
  }
  FileStatePtr& state = files_[path];
  if (!state) {
    state = std::make_shared<FileState>();
    struct stat st;
    if (existed && ::fstat(fd.get(), &st) == 0)
      state->synced_size = static_cast<uint64_t>(st.st_size);
  }
  if (!existed) ops_.push_back(DirOp{DirOp::kCreate, path, "", "", Parent(path)});
  if (mode == OpenMode::kTruncate && existed) {
    Bytes old(state->synced_size);
    ASSIGN_OR_RETURN(size_t n, PreadAll(fd.get(), old, 0));
    old.resize(n);
    if (!old.empty()) state->undo.push_back(Undo{0, std::move(old)});
    if (::ftruncate(fd.get(), 0) != 0) return Errno("truncate " + path);
  }
  ++open_files_;
  return std::unique_ptr<WritableFile>(new File(*this, std::move(fd), state, path));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenForWrite(const std::string& path,
                                                                      OpenMode mode, mode_t perms) {
  return Open(Normalize(path), mode, perms);
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenForWriteAt(int dir_fd,
                                                                        const std::string& name,
                                                                        OpenMode mode,
                                                                        mode_t perms) {
  std::error_code ec;
  fs::path dir = fs::read_symlink("/proc/self/fd/" + std::to_string(dir_fd), ec);
  if (ec) return IOErrorFromErrno("resolve directory of '" + name + "'", ec.value());
  return Open(Normalize((dir / name).string()), mode, perms);
}

Result<std::string> FaultInjectionEnv::Stash(const std::string& path) {
  std::string stash = stash_dir_ + "/" + std::to_string(++stash_counter_);
  if (::rename(path.c_str(), stash.c_str()) != 0) return Errno("remove " + path);
  Rekey(path, stash);
  return stash;
}

void FaultInjectionEnv::Rekey(const std::string& from, const std::string& to) {
  std::map<std::string, FileStatePtr> moved;
  for (auto it = files_.begin(); it != files_.end();) {
    if (!Below(it->first, from)) {
      ++it;
      continue;
    }
    moved[to + it->first.substr(from.size())] = std::move(it->second);
    it = files_.erase(it);
  }
  files_.merge(moved);
}

void FaultInjectionEnv::Forget(const std::string& path) {
  std::erase_if(files_, [&](const auto& entry) { return Below(entry.first, path); });
}

Status FaultInjectionEnv::Rename(const std::string& from_raw, const std::string& to_raw) {
  const std::string from = Normalize(from_raw), to = Normalize(to_raw);
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kBoundary).WithContext("rename " + from));
  struct stat src, dst;
  if (::lstat(from.c_str(), &src) != 0) {
    if (errno == ENOENT) return NotFound(from + " does not exist");
    return Errno("rename " + from);
  }
  DirOp op{DirOp::kRename, to, from, "", Parent(to)};
  if (::lstat(to.c_str(), &dst) == 0) {
    // What rename(2) refuses, refuse the same way; what it replaces, keep.
    std::error_code ec;
    if (S_ISDIR(dst.st_mode) && !fs::is_empty(to, ec)) return AlreadyExists(to + " is not empty");
    if (S_ISDIR(dst.st_mode) != S_ISDIR(src.st_mode)) {
      return Status(StatusCode::kIOError, "rename " + from + " to " + to + ": types differ");
    }
    ASSIGN_OR_RETURN(op.stash, Stash(to));
  }
  if (::rename(from.c_str(), to.c_str()) != 0) return Errno("rename " + from + " to " + to);
  Rekey(from, to);
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status FaultInjectionEnv::Unlink(const std::string& path_raw) {
  const std::string path = Normalize(path_raw);
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kOther).WithContext("remove " + path));
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return NotFound(path + " does not exist");
  if (S_ISDIR(st.st_mode)) return Status(StatusCode::kIOError, "remove " + path + ": a directory");
  ASSIGN_OR_RETURN(std::string stash, Stash(path));
  ops_.push_back(DirOp{DirOp::kRemove, path, "", stash, Parent(path)});
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveTree(const std::string& path_raw) {
  const std::string path = Normalize(path_raw);
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kOther).WithContext("remove " + path));
  if (!Exists(path)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string stash, Stash(path));
  ops_.push_back(DirOp{DirOp::kRemove, path, "", stash, Parent(path)});
  return Status::Ok();
}

Status FaultInjectionEnv::MakeDir(const std::string& path_raw, mode_t perms) {
  const std::string path = Normalize(path_raw);
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kOther).WithContext("mkdir " + path));
  if (::mkdir(path.c_str(), perms) != 0) {
    if (errno == EEXIST) return AlreadyExists(path + " exists already");
    return Errno("mkdir " + path);
  }
  ops_.push_back(DirOp{DirOp::kMakeDir, path, "", "", Parent(path)});
  return Status::Ok();
}

void FaultInjectionEnv::Settle(const DirOp& op) {
  if (op.stash.empty()) return;
  Forget(op.stash);
  std::error_code ec;
  fs::remove_all(op.stash, ec);
}

Status FaultInjectionEnv::SyncDir(const std::string& path_raw) {
  const std::string path = Normalize(path_raw);
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kBoundary).WithContext("fsync directory " + path));
  if (!Exists(path)) return NotFound(path + " does not exist");
  std::erase_if(ops_, [&](const DirOp& op) {
    if (op.durable_in != path) return false;
    Settle(op);
    return true;
  });
  return Status::Ok();
}

Status FaultInjectionEnv::SyncFilesystem(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Check(Step::kBoundary).WithContext("syncfs " + path));
  for (const DirOp& op : ops_) Settle(op);
  ops_.clear();
  for (auto& [file, state] : files_) {
    struct stat st;
    state->undo.clear();
    if (::lstat(file.c_str(), &st) == 0) state->synced_size = static_cast<uint64_t>(st.st_size);
  }
  return Status::Ok();
}

Status FaultInjectionEnv::UndoDirOp(const DirOp& op) {
  std::error_code ec;
  switch (op.kind) {
    case DirOp::kCreate:
    case DirOp::kMakeDir:
      fs::remove_all(op.path, ec);
      Forget(op.path);
      break;
    case DirOp::kRename:
      if (!Exists(op.path)) break;  // its directory went with an older op
      if (::rename(op.path.c_str(), op.from.c_str()) != 0) return Errno("undo rename " + op.path);
      Rekey(op.path, op.from);
      if (op.stash.empty()) break;
      [[fallthrough]];
    case DirOp::kRemove:
      if (::rename(op.stash.c_str(), op.path.c_str()) != 0) return Errno("undo remove " + op.path);
      Rekey(op.stash, op.path);
      break;
  }
  return ec ? IOErrorFromErrno("undo create " + op.path, ec.value()) : Status::Ok();
}

Status FaultInjectionEnv::UndoFile(const std::string& path, const FileState& state) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Status::Ok();  // not there any more: nothing to restore
  for (auto it = state.undo.rbegin(); it != state.undo.rend(); ++it) {
    RETURN_IF_ERROR(PwriteAll(fd.get(), it->old_bytes, it->offset).WithContext("undo " + path));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(state.synced_size)) != 0) {
    return Errno("undo truncate " + path);
  }
  return Status::Ok();
}

Status FaultInjectionEnv::PowerCut() {
  std::lock_guard lock(mu_);
  if (open_files_ != 0) {
    return FailedPrecondition(std::to_string(open_files_) + " files are still open");
  }
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) RETURN_IF_ERROR(UndoDirOp(*it));
  for (const auto& [path, state] : files_) RETURN_IF_ERROR(UndoFile(path, *state));
  ops_.clear();
  files_.clear();
  crashed_ = false;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(stash_dir_, ec)) fs::remove_all(entry.path(), ec);
  return Status::Ok();
}

}  // namespace flotilla::testing
