#include "tracker/storage/log_store.h"

#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {
namespace {

constexpr char kColumns[] =
    "SELECT id, device_id, app, since_s, requested_by, requested_at, expires_at, uploaded_at";

LogRequest FromRow(const SqlRows& rows, size_t i) {
  return {.id = rows.Int(i, 0),
          .device_id = rows.Text(i, 1),
          .app = rows.Text(i, 2),
          .since_s = rows.Int(i, 3),
          .requested_by = rows.Text(i, 4),
          .requested_at = rows.Int(i, 5),
          .expires_at = rows.Int(i, 6),
          .uploaded_at = rows.Int(i, 7)};
}

// The length of the valid UTF-8 sequence at the start of `s`, 0 if none.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t n = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (b0 < 0x80) return b0 == 0 ? 0 : 1;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

std::string SanitizeLogText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t n = Utf8SequenceLength(text);
    if (n == 0) {
      out += '?';
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return out;
}

Result<LogDevice> FindLogDevice(SqlEngine& db, std::string_view name_or_id) {
  ASSIGN_OR_RETURN(SqlRows rows, db.Query("SELECT device_id, name FROM devices WHERE name = ? "
                                          "OR device_id = ? ORDER BY name = ? DESC LIMIT 1",
                                          {name_or_id, name_or_id, name_or_id}));
  if (rows.empty()) return NotFound("no enrolled device '" + std::string(name_or_id) + "'");
  return LogDevice{rows.Text(0, 0), rows.Text(0, 1)};
}

Result<int64_t> CreateLogRequest(SqlEngine& db, std::string_view actor, std::string_view device_id,
                                 std::string_view device_name, std::string_view app,
                                 int64_t since_s, int64_t now, const LogRequestLimits& limits) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(db));
  RETURN_IF_ERROR(db.Query("DELETE FROM log_requests WHERE expires_at <= ?", {now}).status());
  ASSIGN_OR_RETURN(SqlRows open, db.Query("SELECT COUNT(*) FROM log_requests WHERE device_id = ? "
                                          "AND uploaded_at = 0",
                                          {device_id}));
  if (open.Int(0, 0) >= limits.max_open_per_device) {
    return FailedPrecondition("device '" + std::string(device_name) + "' has " +
                              std::to_string(open.Int(0, 0)) +
                              " log requests it has not answered yet; wait for them or for "
                              "their expiry");
  }
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("INSERT INTO log_requests(device_id, app, since_s, requested_by, "
                            "requested_at, expires_at, uploaded_at, log) VALUES(?, ?, ?, ?, ?, ?, "
                            "0, '') RETURNING id",
                            {device_id, app, since_s, actor, now, now + limits.ttl_s}));
  const int64_t id = rows.Int(0, 0);
  RETURN_IF_ERROR(AppendAudit(db, now,
                              {.actor = std::string(actor),
                               .action = "logs.request",
                               .target = std::string(device_name),
                               .detail = Json{{"app", app}, {"since_s", since_s}, {"id", id}}}));
  RETURN_IF_ERROR(transaction.Commit());
  return id;
}

Result<std::optional<LogRequest>> GetLogRequest(SqlEngine& db, int64_t id, int64_t now) {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db.Query(std::string(kColumns) + ", log FROM log_requests WHERE id = ? AND expires_at > ?",
               {id, now}));
  if (rows.empty()) return std::optional<LogRequest>();
  LogRequest request = FromRow(rows, 0);
  request.log = rows.Text(0, 8);
  return std::optional<LogRequest>(std::move(request));
}

Result<std::vector<LogRequest>> RecentLogRequests(SqlEngine& db, int64_t now, int64_t limit) {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db.Query("SELECT r.id, r.device_id, r.app, r.since_s, r.requested_by, r.requested_at, "
               "r.expires_at, r.uploaded_at, COALESCE(d.name, '') FROM log_requests r "
               "LEFT JOIN devices d ON d.device_id = r.device_id WHERE r.expires_at > ? "
               "ORDER BY r.id DESC LIMIT ?",
               {now, limit}));
  std::vector<LogRequest> requests;
  for (size_t i = 0; i < rows.size(); ++i) {
    requests.push_back(FromRow(rows, i));
    requests.back().device_name = rows.Text(i, 8);
  }
  return requests;
}

Result<std::vector<LogRequest>> PendingLogRequests(SqlEngine& db, std::string_view device_id,
                                                   int64_t now) {
  ASSIGN_OR_RETURN(SqlRows rows, db.Query(std::string(kColumns) +
                                              " FROM log_requests WHERE device_id = ? AND "
                                              "uploaded_at = 0 AND expires_at > ? ORDER BY id",
                                          {device_id, now}));
  std::vector<LogRequest> requests;
  for (size_t i = 0; i < rows.size(); ++i) requests.push_back(FromRow(rows, i));
  return requests;
}

Status StoreLogUpload(SqlEngine& db, int64_t id, std::string_view device_id, std::string_view log,
                      int64_t now) {
  if (log.size() > kMaxStoredLogBytes) log = log.substr(log.size() - kMaxStoredLogBytes);
  const std::string text = SanitizeLogText(log);
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("UPDATE log_requests SET log = ?, uploaded_at = ? WHERE id = ? AND "
                            "device_id = ? AND expires_at > ? RETURNING id",
                            {text, now, id, device_id, now}));
  if (rows.empty()) return NotFound("no open log request " + std::to_string(id));
  return Status::Ok();
}

}  // namespace flotilla::tracker
