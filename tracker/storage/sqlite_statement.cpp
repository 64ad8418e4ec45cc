#include "tracker/storage/sqlite_statement.h"

namespace flotilla::tracker {

Status SqliteError(sqlite3* db, std::string_view what) {
  return Status(StatusCode::kIOError, std::string(what) + ": " + sqlite3_errmsg(db));
}

Result<SqliteStatement> SqliteStatement::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db, "prepare");
  }
  return SqliteStatement(db, stmt);
}

SqliteStatement& SqliteStatement::Bind(std::string_view text) {
  sqlite3_bind_text(stmt_, next_index_++, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int64_t value) {
  sqlite3_bind_int64(stmt_, next_index_++, value);
  return *this;
}

Result<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, "step");
}

Status SqliteStatement::Run() {
  while (true) {
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

int64_t SqliteStatement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

}  // namespace flotilla::tracker
