// The webhook outbox (docs/fleet.md, "Notifications") in the tracker's
// database, on either engine. Events are appended by the code that changes
// the state they tell of, in the same transaction (AppendWebhookEvent), so an
// event is never lost and never told of a change that was rolled back. The
// sender reads them back per webhook URL, oldest first, and records each
// attempt; what a webhook has not acknowledged stays pending across restarts
// and replicas (at least once: the stable event id lets a receiver drop a
// repeat).
// Not thread-safe (one SqlEngine).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

// Appends an event to the outbox through `db` (inside the caller's
// transaction, when it has one). `body` is the exact JSON every delivery
// sends; `event_id` its stable id (unique). A non-empty `dedup_key` already
// used makes this a no-op: false is returned then, true when appended.
Result<bool> AppendWebhookEvent(SqlEngine& db, std::string_view event, std::string_view event_id,
                                std::string_view dedup_key, std::string_view body,
                                int64_t created_at);

struct WebhookEvent {
  int64_t seq = 0;  // order of appending
  std::string event_id;
  std::string event;
  std::string body;
  int64_t created_at = 0;
};

// One event not yet delivered to a webhook URL, with its attempts so far.
struct PendingDelivery {
  WebhookEvent event;
  int64_t attempts = 0;
  int64_t next_attempt_at = 0;  // 0: never tried
  std::string last_error;
};

// What `webhook status` shows of one URL.
struct WebhookBacklog {
  std::string url;
  int64_t pending = 0;            // attempted, not yet delivered
  int64_t delivered = 0;          // in the outbox (events are kept for two maximum ages)
  int64_t abandoned = 0;          // given up after the maximum age
  int64_t oldest_pending_at = 0;  // created_at of the oldest pending; 0: none
  std::string last_error;         // of the oldest pending
};

class WebhookOutbox {
 public:
  static Result<std::unique_ptr<WebhookOutbox>> Open(const std::string& url);

  // The oldest events created at or after `since` that `url` has neither
  // acknowledged nor given up, of the `events` kinds (each a known event
  // name, e.g. "rollout.halted"), at most `limit`, oldest first.
  Result<std::vector<PendingDelivery>> Pending(const std::string& url,
                                               const std::vector<std::string>& events,
                                               int64_t since, size_t limit);
  // Records an attempt at event `seq` for `url`: delivered, or failed with
  // `error` and the next attempt at `next_attempt_at`.
  Status RecordDelivered(int64_t seq, const std::string& url, int64_t attempts, int64_t now);
  Status RecordFailed(int64_t seq, const std::string& url, int64_t attempts,
                      int64_t next_attempt_at, const std::string& error, int64_t now);
  // Marks every event created before `before` that `url` has not
  // acknowledged (of the `events` kinds) as given up; returns those events.
  Result<std::vector<PendingDelivery>> Abandon(const std::string& url,
                                               const std::vector<std::string>& events,
                                               int64_t before, int64_t now);
  // Deletes the events created before `before` and their deliveries.
  Result<int64_t> Prune(int64_t before);
  // Every URL with a delivery row, and its counts.
  Result<std::vector<WebhookBacklog>> Backlog();
  // Every event, oldest first (tests, `webhook status --events`).
  Result<std::vector<WebhookEvent>> Events();

 private:
  explicit WebhookOutbox(std::unique_ptr<SqlEngine> db) : db_(std::move(db)) {}
  Status Record(int64_t seq, const std::string& url, std::string_view state, int64_t attempts,
                int64_t next_attempt_at, const std::string& error, int64_t now);

  std::unique_ptr<SqlEngine> db_;
};

// The event names the tracker emits, for validation of a webhook's filter.
const std::vector<std::string>& WebhookEventNames();

}  // namespace flotilla::tracker
