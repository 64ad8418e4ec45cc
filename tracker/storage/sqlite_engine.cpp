// SqlEngine on core's SQLite wrapper. The schema version is SQLite's
// `PRAGMA user_version` (what every tracker.db since 0.1.0 carries).
#include "core/sqlite.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {
namespace {

class SqliteEngine : public SqlEngine {
 public:
  explicit SqliteEngine(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  using SqlEngine::Query;
  SqlEngineKind kind() const override { return SqlEngineKind::kSqlite; }

  Result<SqlRows> Query(std::string_view sql, std::initializer_list<SqlValue> params) override {
    SqliteStatement stmt = db_->Prepare(sql);
    for (const SqlValue& param : params) {
      if (const int64_t* value = std::get_if<int64_t>(&param)) {
        stmt.Bind(*value);
      } else {
        stmt.Bind(std::get<std::string_view>(param));
      }
    }
    SqlRows rows;
    while (true) {
      ASSIGN_OR_RETURN(bool more, stmt.Step());
      if (!more) return rows;
      std::vector<std::optional<std::string>> row;
      for (int column = 0; column < stmt.ColumnCount(); ++column) {
        if (stmt.IsNull(column)) {
          row.emplace_back();
        } else {
          row.emplace_back(stmt.Text(column));
        }
      }
      rows.AddRow(std::move(row));
    }
  }

  Status ExecScript(const std::string& sql) override { return db_->Exec(sql); }

  Status Begin() override { return db_->Exec("BEGIN IMMEDIATE"); }
  Status Commit() override {
    Status st = db_->Exec("COMMIT");
    if (!st.ok()) Rollback().IgnoreError();
    return st;
  }
  Status Rollback() override { return db_->Exec("ROLLBACK"); }

  // BEGIN IMMEDIATE already holds the database's one write lock.
  Status LockSchema() override { return Status::Ok(); }
  Result<int> SchemaVersion() override {
    ASSIGN_OR_RETURN(SqlRows rows, Query("PRAGMA user_version"));
    return rows.empty() ? 0 : static_cast<int>(rows.Int(0, 0));
  }
  Status SetSchemaVersion(int version) override {
    return db_->Exec("PRAGMA user_version = " + std::to_string(version));
  }

 private:
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace

Result<std::unique_ptr<SqlEngine>> OpenSqliteEngine(const std::string& path) {
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path));
  return std::unique_ptr<SqlEngine>(new SqliteEngine(std::move(db)));
}

}  // namespace flotilla::tracker
