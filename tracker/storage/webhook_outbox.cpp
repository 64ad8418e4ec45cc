#include "tracker/storage/webhook_outbox.h"

#include <algorithm>

#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

// "'a', 'b'" for an IN list: only known event names (no quoting needed) are
// ever written into a statement.
Result<std::string> EventList(const std::vector<std::string>& events) {
  if (events.empty()) return InvalidArgument("no webhook events to select");
  std::string list;
  for (const std::string& e : events) {
    const auto& known = WebhookEventNames();
    if (std::find(known.begin(), known.end(), e) == known.end()) {
      return InvalidArgument("unknown webhook event '" + e + "'");
    }
    list += (list.empty() ? "'" : ", '") + e + "'";
  }
  return list;
}

constexpr char kPendingColumns[] =
    "SELECT e.id, e.event_id, e.event, e.body, e.created_at, COALESCE(d.attempts, 0), "
    "COALESCE(d.next_attempt_at, 0), COALESCE(d.last_error, '') FROM webhook_events e "
    "LEFT JOIN webhook_deliveries d ON d.event_seq = e.id AND d.url = ? "
    "WHERE (d.state IS NULL OR d.state = 'pending') AND e.event IN (";

std::vector<PendingDelivery> PendingFromRows(const SqlRows& rows) {
  std::vector<PendingDelivery> pending;
  for (size_t i = 0; i < rows.size(); ++i) {
    pending.push_back(
        {{rows.Int(i, 0), rows.Text(i, 1), rows.Text(i, 2), rows.Text(i, 3), rows.Int(i, 4)},
         rows.Int(i, 5),
         rows.Int(i, 6),
         rows.Text(i, 7)});
  }
  return pending;
}

}  // namespace

const std::vector<std::string>& WebhookEventNames() {
  static const std::vector<std::string> names = {"rollout.halted", "rollout.completed",
                                                 "rollout.wave_stalled"};
  return names;
}

Result<bool> AppendWebhookEvent(SqlEngine& db, std::string_view event, std::string_view event_id,
                                std::string_view dedup_key, std::string_view body,
                                int64_t created_at) {
  if (dedup_key.empty()) {
    RETURN_IF_ERROR(db.Query("INSERT INTO webhook_events(event_id, event, dedup_key, body, "
                             "created_at) VALUES(?, ?, NULL, ?, ?)",
                             {event_id, event, body, created_at})
                        .status());
    return true;
  }
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("INSERT INTO webhook_events(event_id, event, dedup_key, body, "
                            "created_at) VALUES(?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING "
                            "RETURNING id",
                            {event_id, event, dedup_key, body, created_at}));
  return !rows.empty();
}

Result<std::unique_ptr<WebhookOutbox>> WebhookOutbox::Open(const std::string& url) {
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  return std::unique_ptr<WebhookOutbox>(new WebhookOutbox(std::move(engine)));
}

Result<std::vector<PendingDelivery>> WebhookOutbox::Pending(const std::string& url,
                                                            const std::vector<std::string>& events,
                                                            int64_t since, size_t limit) {
  ASSIGN_OR_RETURN(std::string list, EventList(events));
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query(std::string(kPendingColumns) + list +
                                                ") AND e.created_at >= ? ORDER BY e.id LIMIT " +
                                                std::to_string(limit),
                                            {url, since}));
  return PendingFromRows(rows);
}

Status WebhookOutbox::Record(int64_t seq, const std::string& url, std::string_view state,
                             int64_t attempts, int64_t next_attempt_at, const std::string& error,
                             int64_t now) {
  return db_
      ->Query(
          "INSERT INTO webhook_deliveries(event_seq, url, state, attempts, next_attempt_at, "
          "last_error, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(event_seq, url) DO UPDATE SET state = excluded.state, "
          "attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, "
          "last_error = excluded.last_error, updated_at = excluded.updated_at",
          {seq, url, state, attempts, next_attempt_at, error, now})
      .status();
}

Status WebhookOutbox::RecordDelivered(int64_t seq, const std::string& url, int64_t attempts,
                                      int64_t now) {
  return Record(seq, url, "delivered", attempts, 0, "", now);
}

Status WebhookOutbox::RecordFailed(int64_t seq, const std::string& url, int64_t attempts,
                                   int64_t next_attempt_at, const std::string& error, int64_t now) {
  return Record(seq, url, "pending", attempts, next_attempt_at, error, now);
}

Result<std::vector<PendingDelivery>> WebhookOutbox::Abandon(const std::string& url,
                                                            const std::vector<std::string>& events,
                                                            int64_t before, int64_t now) {
  ASSIGN_OR_RETURN(std::string list, EventList(events));
  // Read first, outside a transaction: the sender asks every pass, and
  // SQLite's write lock is taken only when there is something to give up.
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query(std::string(kPendingColumns) + list +
                                                ") AND e.created_at < ? ORDER BY e.id",
                                            {url, before}));
  std::vector<PendingDelivery> abandoned = PendingFromRows(rows);
  if (abandoned.empty()) return abandoned;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  for (const PendingDelivery& p : abandoned) {
    RETURN_IF_ERROR(Record(p.event.seq, url, "abandoned", p.attempts, 0, p.last_error, now));
  }
  RETURN_IF_ERROR(transaction.Commit());
  return abandoned;
}

Result<int64_t> WebhookOutbox::Prune(int64_t before) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(db_->Query("DELETE FROM webhook_deliveries WHERE event_seq IN "
                             "(SELECT id FROM webhook_events WHERE created_at < ?)",
                             {before})
                      .status());
  ASSIGN_OR_RETURN(
      SqlRows deleted,
      db_->Query("DELETE FROM webhook_events WHERE created_at < ? RETURNING id", {before}));
  RETURN_IF_ERROR(transaction.Commit());
  return static_cast<int64_t>(deleted.size());
}

Result<std::vector<WebhookBacklog>> WebhookOutbox::Backlog() {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db_->Query("SELECT d.url, "
                 "SUM(CASE WHEN d.state = 'pending' THEN 1 ELSE 0 END), "
                 "SUM(CASE WHEN d.state = 'delivered' THEN 1 ELSE 0 END), "
                 "SUM(CASE WHEN d.state = 'abandoned' THEN 1 ELSE 0 END), "
                 "MIN(CASE WHEN d.state = 'pending' THEN e.id END) "
                 "FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_seq "
                 "GROUP BY d.url ORDER BY d.url"));
  std::vector<WebhookBacklog> backlog;
  for (size_t i = 0; i < rows.size(); ++i) {
    WebhookBacklog b{rows.Text(i, 0), rows.Int(i, 1), rows.Int(i, 2), rows.Int(i, 3), 0, ""};
    if (!rows.IsNull(i, 4)) {
      ASSIGN_OR_RETURN(SqlRows oldest,
                       db_->Query("SELECT e.created_at, d.last_error FROM webhook_events e "
                                  "JOIN webhook_deliveries d ON d.event_seq = e.id "
                                  "WHERE e.id = ? AND d.url = ?",
                                  {rows.Int(i, 4), b.url}));
      if (!oldest.empty()) {
        b.oldest_pending_at = oldest.Int(0, 0);
        b.last_error = oldest.Text(0, 1);
      }
    }
    backlog.push_back(std::move(b));
  }
  return backlog;
}

Result<std::vector<WebhookEvent>> WebhookOutbox::Events() {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT id, event_id, event, body, created_at FROM "
                                            "webhook_events ORDER BY id"));
  std::vector<WebhookEvent> events;
  for (size_t i = 0; i < rows.size(); ++i) {
    events.push_back(
        {rows.Int(i, 0), rows.Text(i, 1), rows.Text(i, 2), rows.Text(i, 3), rows.Int(i, 4)});
  }
  return events;
}

}  // namespace flotilla::tracker
