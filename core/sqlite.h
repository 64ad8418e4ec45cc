// The one SQLite wrapper: a connection opened with the project's settings,
// prepared statements that finalize themselves, and transactions as scopes,
// all reporting errors as Status (IOError carrying sqlite3_errmsg).
//
// Every database is opened in WAL mode with synchronous=FULL (a transaction
// that returned OK survives a power cut), foreign keys on and a 5 s busy
// timeout. Its files are written through `env` (Env::sqlite_vfs), so a test
// Env sees, fails and cuts SQLite's writes and fsyncs like any others.
//
// Thread-safety: one SqliteDb per thread (opened SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/env.h"
#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace flotilla {

// A prepared statement. A statement that failed to prepare keeps the error
// and returns it from Step() and Run(), so a call site reads as one chain:
//   return db.Prepare("UPDATE t SET a=? WHERE b=?").Bind(a).Bind(b).Run();
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  // Bind parameters left to right, starting at index 1.
  SqliteStatement& Bind(std::string_view text);
  SqliteStatement& Bind(int64_t value);
  SqliteStatement& BindNull();

  // Steps once: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, for statements that return no rows.
  Status Run();

  int ColumnCount() const;
  std::string Text(int column) const;
  int64_t Int(int column) const;
  bool IsNull(int column) const;

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, Status prepared)
      : db_(db), stmt_(stmt), prepared_(std::move(prepared)) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  Status prepared_;
  int next_index_ = 1;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database at `path`.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, Env& env = Env::Default());
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql);
  SqliteStatement Prepare(std::string_view sql);
  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  // Turns on write-ahead logging, waiting (up to the busy timeout) for other
  // connections that hold the file in its old journal mode.
  Status UseWriteAheadLog();
  sqlite3* db_;
};

// BEGIN IMMEDIATE on creation; ROLLBACK when destroyed without Commit().
class SqliteTransaction {
 public:
  static Result<SqliteTransaction> Begin(SqliteDb& db);
  SqliteTransaction(SqliteTransaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;
  ~SqliteTransaction();
  Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;
};

}  // namespace flotilla
