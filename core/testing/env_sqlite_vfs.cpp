#include "core/testing/env_sqlite_vfs.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>

namespace flotilla::testing {
namespace {

constexpr int kTrackedFiles =
    SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL;

// Our sqlite3_file: the default VFS's file for everything but writes.
struct EnvFile {
  sqlite3_file base;
  sqlite3_file* real;
  WritableFile* file;  // null for temporary files: all of them go to `real`
  Env* env;
  std::string* sync_dir;  // set until the first sync of a created journal or WAL
};

EnvFile* Of(sqlite3_file* f) { return reinterpret_cast<EnvFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Of(f)->real; }

int Close(sqlite3_file* f) {
  EnvFile* e = Of(f);
  int rc = e->real->pMethods->xClose(e->real);
  sqlite3_free(e->real);
  if (e->file != nullptr && !e->file->Close().ok() && rc == SQLITE_OK) rc = SQLITE_IOERR_CLOSE;
  delete e->file;
  delete e->sync_dir;
  return rc;
}

int Read(sqlite3_file* f, void* out, int n, sqlite3_int64 offset) {
  return Real(f)->pMethods->xRead(Real(f), out, n, offset);
}

int Write(sqlite3_file* f, const void* data, int n, sqlite3_int64 offset) {
  EnvFile* e = Of(f);
  if (e->file == nullptr) return e->real->pMethods->xWrite(e->real, data, n, offset);
  ByteSpan bytes(static_cast<const uint8_t*>(data), static_cast<size_t>(n));
  return e->file->WriteAt(bytes, static_cast<uint64_t>(offset)).ok() ? SQLITE_OK
                                                                     : SQLITE_IOERR_WRITE;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  EnvFile* e = Of(f);
  if (e->file == nullptr) return e->real->pMethods->xTruncate(e->real, size);
  return e->file->Truncate(static_cast<uint64_t>(size)).ok() ? SQLITE_OK : SQLITE_IOERR_TRUNCATE;
}

int Sync(sqlite3_file* f, int flags) {
  EnvFile* e = Of(f);
  if (e->file == nullptr) return e->real->pMethods->xSync(e->real, flags);
  if (!e->file->Sync().ok()) return SQLITE_IOERR_FSYNC;
  if (e->sync_dir != nullptr) {
    if (!e->env->SyncDir(*e->sync_dir).ok()) return SQLITE_IOERR_DIR_FSYNC;
    delete e->sync_dir;
    e->sync_dir = nullptr;
  }
  return SQLITE_OK;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), page, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int delete_flag) {
  return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag);
}
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int n, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), offset, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), offset, p);
}

const sqlite3_io_methods kMethods = {3,
                                     Close,
                                     Read,
                                     Write,
                                     Truncate,
                                     Sync,
                                     FileSize,
                                     Lock,
                                     Unlock,
                                     CheckReservedLock,
                                     FileControl,
                                     SectorSize,
                                     DeviceCharacteristics,
                                     ShmMap,
                                     ShmLock,
                                     ShmBarrier,
                                     ShmUnmap,
                                     Fetch,
                                     Unfetch};

std::string DirOf(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash == nullptr ? "." : std::string(path, slash == path ? 1 : slash - path);
}

}  // namespace

// The registered VFS: SQLite's default one with xOpen and xDelete replaced.
// `base` comes first, so SQLite's pointer to it leads back here.
struct EnvSqliteVfs::Registration {
  sqlite3_vfs base;
  sqlite3_vfs* real;
  Env* env;

  static Registration* Of(sqlite3_vfs* vfs) { return reinterpret_cast<Registration*>(vfs); }

  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* out, int flags,
                  int* out_flags) {
    Registration* self = Of(vfs);
    EnvFile* e = new (out) EnvFile{{nullptr}, nullptr, nullptr, self->env, nullptr};
    e->real = static_cast<sqlite3_file*>(sqlite3_malloc(self->real->szOsFile));
    if (e->real == nullptr) return SQLITE_NOMEM;
    std::memset(e->real, 0, self->real->szOsFile);
    if (name != nullptr && (flags & kTrackedFiles) != 0) {
      if ((flags & SQLITE_OPEN_CREATE) == 0 && ::access(name, F_OK) != 0) return Fail(e);
      auto file = self->env->OpenForWrite(name, OpenMode::kKeep, 0644);
      if (!file.ok()) return Fail(e);
      e->file = file->release();
      const int journals = SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL;
      if ((flags & SQLITE_OPEN_CREATE) != 0 && (flags & journals) != 0) {
        e->sync_dir = new std::string(DirOf(name));
      }
    }
    int rc = self->real->xOpen(self->real, name, e->real, flags, out_flags);
    if (rc != SQLITE_OK) {
      if (e->real->pMethods != nullptr) e->real->pMethods->xClose(e->real);
      return Fail(e, rc);
    }
    e->base.pMethods = &kMethods;
    return SQLITE_OK;
  }

  static int Fail(EnvFile* e, int rc = SQLITE_CANTOPEN) {
    sqlite3_free(e->real);
    delete e->file;
    delete e->sync_dir;
    e->base.pMethods = nullptr;
    return rc;
  }

  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    Env& env = *Of(vfs)->env;
    Status st = env.Unlink(name);
    if (st.code() == StatusCode::kNotFound) return SQLITE_IOERR_DELETE_NOENT;
    if (!st.ok()) return SQLITE_IOERR_DELETE;
    if (sync_dir != 0 && !env.SyncDir(DirOf(name)).ok()) return SQLITE_IOERR_DIR_FSYNC;
    return SQLITE_OK;
  }
};

EnvSqliteVfs::EnvSqliteVfs(Env& env) : registration_(std::make_unique<Registration>()) {
  static std::atomic<int> counter{0};
  name_ = "flotilla-env-" + std::to_string(++counter);
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  registration_->base = *real;
  registration_->base.szOsFile = sizeof(EnvFile);
  registration_->base.zName = name_.c_str();
  registration_->base.pNext = nullptr;
  registration_->base.xOpen = &Registration::Open;
  registration_->base.xDelete = &Registration::Delete;
  registration_->real = real;
  registration_->env = &env;
  sqlite3_vfs_register(&registration_->base, 0);
}

EnvSqliteVfs::~EnvSqliteVfs() { sqlite3_vfs_unregister(&registration_->base); }

}  // namespace flotilla::testing
