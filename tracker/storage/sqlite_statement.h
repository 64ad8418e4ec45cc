// A prepared SQLite statement that finalizes itself, with errors as Status.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla::tracker {

class SqliteStatement {
 public:
  static Result<SqliteStatement> Prepare(sqlite3* db, std::string_view sql);
  SqliteStatement(SqliteStatement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  SqliteStatement(const SqliteStatement&) = delete;
  ~SqliteStatement() { sqlite3_finalize(stmt_); }

  // Binds parameters left to right, starting at index 1.
  SqliteStatement& Bind(std::string_view text);
  SqliteStatement& Bind(int64_t value);

  // Steps once: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, for statements that return no rows.
  Status Run();

  std::string Text(int column) const;
  int64_t Int(int column) const;

 private:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_index_ = 1;
};

// An IOError carrying sqlite3_errmsg(db).
Status SqliteError(sqlite3* db, std::string_view what);

}  // namespace flotilla::tracker
