#include "core/sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace flotilla {
namespace {

constexpr std::chrono::milliseconds kBusyTimeout{5000};

Status SqliteError(sqlite3* db, std::string_view what) {
  return Status(StatusCode::kIOError, "sqlite: " + std::string(what) + ": " +
                                          (db ? sqlite3_errmsg(db) : "out of memory"));
}

}  // namespace

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      prepared_(std::move(other.prepared_)),
      next_index_(other.next_index_) {}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

SqliteStatement& SqliteStatement::Bind(std::string_view text) {
  sqlite3_bind_text(stmt_, next_index_++, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int64_t value) {
  sqlite3_bind_int64(stmt_, next_index_++, value);
  return *this;
}

SqliteStatement& SqliteStatement::BindNull() {
  sqlite3_bind_null(stmt_, next_index_++);
  return *this;
}

Result<bool> SqliteStatement::Step() {
  RETURN_IF_ERROR(prepared_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, "step");
}

Status SqliteStatement::Run() {
  for (;;) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

std::string SqliteStatement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

int SqliteStatement::ColumnCount() const { return sqlite3_column_count(stmt_); }

int64_t SqliteStatement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

bool SqliteStatement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, Env& env) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           env.sqlite_vfs());
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  if (rc != SQLITE_OK) return SqliteError(raw, "open " + path);
  sqlite3_busy_timeout(raw, static_cast<int>(kBusyTimeout.count()));
  RETURN_IF_ERROR(db->UseWriteAheadLog().WithContext(path));
  RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON").WithContext(path));
  return db;
}

// The journal mode is the file's: once one connection has turned WAL on,
// every later open only reads it. Turning it on takes the file exclusively,
// and SQLite does not call the busy handler for that, so a connection that
// finds the file in use (another opening it at the same moment) waits here.
Status SqliteDb::UseWriteAheadLog() {
  const auto deadline = std::chrono::steady_clock::now() + kBusyTimeout;
  std::chrono::milliseconds pause{1};
  for (;;) {
    for (const char* sql : {"PRAGMA journal_mode", "PRAGMA journal_mode=WAL"}) {
      SqliteStatement st = Prepare(sql);
      Result<bool> row = st.Step();
      if (row.ok() && *row && st.Text(0) == "wal") return Status::Ok();
      const int code = sqlite3_errcode(db_) & 0xff;
      if (!row.ok() && code != SQLITE_BUSY && code != SQLITE_LOCKED) return row.status();
    }
    if (std::chrono::steady_clock::now() + pause > deadline) {
      return Status(StatusCode::kIOError,
                    "sqlite: database is locked: write-ahead log not enabled");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

Status SqliteDb::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    Status st(StatusCode::kIOError,
              std::string("sqlite: ") + (error ? error : sqlite3_errmsg(db_)));
    sqlite3_free(error);
    return st;
  }
  return Status::Ok();
}

SqliteStatement SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  Status prepared;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    prepared = SqliteError(db_, "prepare");
  }
  return SqliteStatement(db_, stmt, std::move(prepared));
}

int64_t SqliteDb::Changes() const { return sqlite3_changes64(db_); }

Result<SqliteTransaction> SqliteTransaction::Begin(SqliteDb& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return SqliteTransaction(&db);
}

SqliteTransaction::~SqliteTransaction() {
  if (db_ != nullptr) db_->Exec("ROLLBACK").IgnoreError();
}

Status SqliteTransaction::Commit() {
  SqliteDb* db = std::exchange(db_, nullptr);
  Status st = db->Exec("COMMIT");
  if (!st.ok()) db->Exec("ROLLBACK").IgnoreError();
  return st;
}

}  // namespace flotilla
