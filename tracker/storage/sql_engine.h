// The tracker's SQL database behind one small interface, so that the store
// code (DeviceDb) is written once and runs on either engine:
//   SQLite      "sqlite:PATH" or a plain PATH (core/sqlite.h: WAL, synchronous=FULL)
//   PostgreSQL  "postgresql://..." or "postgres://..." (a libpq connection URI)
// Engine differences stay in here and in the migrations (sql_migrations.h):
// statements use `?` placeholders (rewritten to $1, $2... for PostgreSQL) and
// SQL that both engines accept. Results come back whole, as text cells.
//
// Every failure is a Status whose message names the engine and what failed;
// a URL is only ever shown through RedactDatabaseUrl (no password).
// Thread-safety: one SqlEngine per thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

namespace flotilla::tracker {

// A statement parameter. Strings are copied by the engine before it returns.
using SqlValue = std::variant<int64_t, std::string_view>;

// A statement's result rows; a NULL cell reads as "" and 0.
class SqlRows {
 public:
  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  std::string Text(size_t row, size_t column) const;
  int64_t Int(size_t row, size_t column) const;
  bool IsNull(size_t row, size_t column) const { return !rows_[row][column].has_value(); }

  void AddRow(std::vector<std::optional<std::string>> row) { rows_.push_back(std::move(row)); }

 private:
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

enum class SqlEngineKind { kSqlite, kPostgresql };

class SqlEngine {
 public:
  // Opens the database `url` names (see above). A plain path is a SQLite file.
  static Result<std::unique_ptr<SqlEngine>> Open(const std::string& url);
  virtual ~SqlEngine() = default;

  virtual SqlEngineKind kind() const = 0;

  // Runs one statement, binding `params` to its `?` placeholders left to right.
  virtual Result<SqlRows> Query(std::string_view sql, std::initializer_list<SqlValue> params) = 0;
  Result<SqlRows> Query(std::string_view sql) { return Query(sql, {}); }
  // Runs a script of statements without parameters (migrations).
  virtual Status ExecScript(const std::string& sql) = 0;

  // Transactions: at most one open at a time (see SqlTransaction).
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // Migration support, called inside a transaction: LockSchema serialises
  // concurrent migrations of one database (several processes opening it at
  // once); the schema version is 0 for an empty database.
  virtual Status LockSchema() = 0;
  virtual Result<int> SchemaVersion() = 0;
  virtual Status SetSchemaVersion(int version) = 0;
};

// A transaction as a scope: rolled back when destroyed without Commit().
class SqlTransaction {
 public:
  static Result<SqlTransaction> Begin(SqlEngine& engine);
  SqlTransaction(SqlTransaction&& other) noexcept
      : engine_(std::exchange(other.engine_, nullptr)) {}
  SqlTransaction(const SqlTransaction&) = delete;
  SqlTransaction& operator=(const SqlTransaction&) = delete;
  ~SqlTransaction();
  Status Commit();

 private:
  explicit SqlTransaction(SqlEngine* engine) : engine_(engine) {}
  SqlEngine* engine_;
};

// One step of a schema: the script each engine runs to go from `version` - 1
// to `version`.
struct SqlMigration {
  int version;
  const char* sqlite;
  const char* postgresql;
};

// Brings the database to the last of `migrations` (versions 1, 2... in
// order): the pending steps and the new version in one transaction, so that a
// crash leaves the old or the new schema, and concurrent openers (LockSchema)
// migrate once. A database newer than the last step is refused
// (FailedPrecondition): a tracker never writes a schema it does not know.
Status MigrateSchema(SqlEngine& engine, const std::vector<SqlMigration>& migrations);

// "postgresql://user:secret@host/db?password=x" -> "postgresql://user:***@host/db?password=***".
std::string RedactDatabaseUrl(std::string_view url);

// A PostgreSQL URL split for a client tool (pg_dump, pg_restore): `conninfo`
// holds every connection parameter but the password, as keyword=value pairs
// for the tool's --dbname; `password` (empty when the URL has none) goes to
// the tool through a password file, so that `ps` never shows it.
struct PostgresqlToolLogin {
  std::string conninfo;
  std::string password;
};
Result<PostgresqlToolLogin> SplitPostgresqlPassword(const std::string& url);

// The engines, for SqlEngine::Open and tests.
Result<std::unique_ptr<SqlEngine>> OpenSqliteEngine(const std::string& path);
Result<std::unique_ptr<SqlEngine>> OpenPostgresqlEngine(const std::string& url);

}  // namespace flotilla::tracker
