#include "tracker/storage/sql_engine.h"

#include <charconv>

namespace flotilla::tracker {

std::string SqlRows::Text(size_t row, size_t column) const {
  const auto& cell = rows_.at(row).at(column);
  return cell ? *cell : std::string();
}

int64_t SqlRows::Int(size_t row, size_t column) const {
  const auto& cell = rows_.at(row).at(column);
  int64_t value = 0;
  if (cell) std::from_chars(cell->data(), cell->data() + cell->size(), value);
  return value;
}

Result<std::unique_ptr<SqlEngine>> SqlEngine::Open(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return OpenPostgresqlEngine(url);
  }
  const std::string path = url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url;
  if (path.empty() || path.find("://") != std::string::npos) {
    return InvalidArgument("database_url '" + RedactDatabaseUrl(url) +
                           "' is neither sqlite:PATH, a file path nor postgresql://...");
  }
  return OpenSqliteEngine(path);
}

Result<SqlTransaction> SqlTransaction::Begin(SqlEngine& engine) {
  RETURN_IF_ERROR(engine.Begin());
  return SqlTransaction(&engine);
}

SqlTransaction::~SqlTransaction() {
  if (engine_ != nullptr) engine_->Rollback().IgnoreError();
}

Status SqlTransaction::Commit() { return std::exchange(engine_, nullptr)->Commit(); }

Status MigrateSchema(SqlEngine& engine, const std::vector<SqlMigration>& migrations) {
  const int newest = migrations.empty() ? 0 : migrations.back().version;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(engine));
  RETURN_IF_ERROR(engine.LockSchema());
  ASSIGN_OR_RETURN(const int version, engine.SchemaVersion());
  if (version == newest) return Status::Ok();
  if (version > newest) {
    return FailedPrecondition("database schema version " + std::to_string(version) +
                              " is newer than this tracker's (" + std::to_string(newest) + ")");
  }
  for (const SqlMigration& step : migrations) {
    if (step.version <= version) continue;
    const bool sqlite = engine.kind() == SqlEngineKind::kSqlite;
    RETURN_IF_ERROR_CTX(engine.ExecScript(sqlite ? step.sqlite : step.postgresql),
                        "schema migration to version " + std::to_string(step.version));
  }
  RETURN_IF_ERROR(engine.SetSchemaVersion(newest));
  return transaction.Commit();
}

std::string RedactDatabaseUrl(std::string_view url) {
  std::string out(url);
  // userinfo: scheme://user:password@host
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t authority = scheme + 3;
    const size_t end = out.find_first_of("/?", authority);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at > authority) {
      const size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // query parameter: ?password=... or &password=...
  for (size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    if (pos == 0 || (out[pos - 1] != '?' && out[pos - 1] != '&')) continue;
    const size_t value = pos + 9;
    const size_t end = out.find('&', value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

}  // namespace flotilla::tracker
