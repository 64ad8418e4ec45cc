// SqlEngine on libpq. Statements go out with PQexecParams (parameters as
// text, types inferred by the server); the schema version is the one row of
// table schema_version, and migrations of one database are serialised by a
// transaction-scoped advisory lock.
#include <libpq-fe.h>

#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {
namespace {

// Key of the advisory lock that migrations take ("flotilla" in ASCII).
constexpr const char* kSchemaLockKey = "7380397838114284897";

// `?` placeholders (outside quoted text) become $1, $2...
std::string NumberPlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 1;
  char quote = 0;
  for (char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?') {
      out += "$" + std::to_string(next++);
      continue;
    }
    out += c;
  }
  return out;
}

std::string TrimmedMessage(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

class PostgresqlEngine : public SqlEngine {
 public:
  PostgresqlEngine(PGconn* conn, std::string redacted_url)
      : conn_(conn), url_(std::move(redacted_url)) {}
  ~PostgresqlEngine() override { PQfinish(conn_); }

  using SqlEngine::Query;
  SqlEngineKind kind() const override { return SqlEngineKind::kPostgresql; }

  Result<SqlRows> Query(std::string_view sql, std::initializer_list<SqlValue> params) override {
    std::vector<std::string> texts;
    texts.reserve(params.size());
    for (const SqlValue& param : params) {
      if (const int64_t* value = std::get_if<int64_t>(&param)) {
        texts.push_back(std::to_string(*value));
      } else {
        texts.emplace_back(std::get<std::string_view>(param));
        if (texts.back().find('\0') != std::string::npos) {  // PostgreSQL text cannot hold it
          return InvalidArgument("postgresql: parameter " + std::to_string(texts.size()) +
                                 " holds a NUL byte");
        }
      }
    }
    std::vector<const char*> values;
    for (const auto& text : texts) values.push_back(text.c_str());
    const std::string numbered = NumberPlaceholders(sql);
    RETURN_IF_ERROR(Reconnect());
    return TakeResult(PQexecParams(conn_, numbered.c_str(), static_cast<int>(values.size()),
                                   nullptr, values.data(), nullptr, nullptr, 0));
  }

  Status ExecScript(const std::string& sql) override {
    RETURN_IF_ERROR(Reconnect());
    return TakeResult(PQexec(conn_, sql.c_str())).status();
  }

  Status Begin() override { return ExecScript("BEGIN"); }
  Status Commit() override {
    // COMMIT of a transaction that already failed answers "ROLLBACK".
    PGresult* result = PQexec(conn_, "COMMIT");
    const bool rolled_back = PQresultStatus(result) == PGRES_COMMAND_OK &&
                             std::string(PQcmdStatus(result)) == "ROLLBACK";
    RETURN_IF_ERROR(TakeResult(result).status());
    if (rolled_back)
      return Status(StatusCode::kIOError, "postgresql: the transaction was rolled back");
    return Status::Ok();
  }
  Status Rollback() override { return ExecScript("ROLLBACK"); }

  Status LockSchema() override {
    return Query(std::string("SELECT pg_advisory_xact_lock(") + kSchemaLockKey + ")").status();
  }
  Result<int> SchemaVersion() override {
    RETURN_IF_ERROR(
        ExecScript("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)"));
    ASSIGN_OR_RETURN(SqlRows rows, Query("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    return static_cast<int>(rows.Int(0, 0));
  }
  Status SetSchemaVersion(int version) override {
    RETURN_IF_ERROR(Query("DELETE FROM schema_version").status());
    return Query("INSERT INTO schema_version(version) VALUES(?)", {int64_t{version}}).status();
  }

 private:
  // A connection lost earlier (server restart, network) is opened again
  // before the next statement; the statement that met the loss failed.
  Status Reconnect() {
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    PQreset(conn_);
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    return Unavailable("postgresql: reconnect to " + url_ + ": " +
                       TrimmedMessage(PQerrorMessage(conn_)));
  }

  // Frees `result`; its rows, or the server's error as a Status.
  Result<SqlRows> TakeResult(PGresult* result) {
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      std::string message =
          TrimmedMessage(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
      PQclear(result);
      if (PQstatus(conn_) == CONNECTION_BAD) {
        return Unavailable("postgresql " + url_ + ": connection lost: " + message);
      }
      return Status(StatusCode::kIOError, "postgresql: " + message);
    }
    SqlRows rows;
    const int columns = PQnfields(result);
    for (int r = 0; r < PQntuples(result); ++r) {
      std::vector<std::optional<std::string>> row;
      for (int c = 0; c < columns; ++c) {
        if (PQgetisnull(result, r, c)) {
          row.emplace_back();
        } else {
          row.emplace_back(std::string(PQgetvalue(result, r, c),
                                       static_cast<size_t>(PQgetlength(result, r, c))));
        }
      }
      rows.AddRow(std::move(row));
    }
    PQclear(result);
    return rows;
  }

  PGconn* conn_;
  std::string url_;
};

void IgnoreNotice(void*, const char*) {}

}  // namespace

Result<PostgresqlToolLogin> SplitPostgresqlPassword(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    std::string why = error != nullptr ? TrimmedMessage(error) : "out of memory";
    PQfreemem(error);
    return InvalidArgument("database_url '" + RedactDatabaseUrl(url) + "': " + why);
  }
  PostgresqlToolLogin login;
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const std::string_view keyword = option->keyword;
    if (keyword == "password") {
      login.password = option->val;
      continue;
    }
    // keyword='value', with \ and ' escaped as libpq's conninfo syntax wants.
    if (!login.conninfo.empty()) login.conninfo += ' ';
    login.conninfo += std::string(keyword) + "='";
    for (const char* c = option->val; *c != '\0'; ++c) {
      if (*c == '\\' || *c == '\'') login.conninfo += '\\';
      login.conninfo += *c;
    }
    login.conninfo += '\'';
  }
  PQconninfoFree(options);
  return login;
}

Result<std::unique_ptr<SqlEngine>> OpenPostgresqlEngine(const std::string& url) {
  const std::string redacted = RedactDatabaseUrl(url);
  PGconn* conn = PQconnectdb(url.c_str());
  if (conn == nullptr) return ResourceExhausted("postgresql: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    Status st = Unavailable("postgresql: connect to " + redacted + ": " +
                            TrimmedMessage(PQerrorMessage(conn)));
    PQfinish(conn);
    return st;
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<SqlEngine>(new PostgresqlEngine(conn, redacted));
}

}  // namespace flotilla::tracker
