// Remote log requests in the tracker's database (docs/logs.md), on either
// engine: an operator's request for one app's log of one device, and the
// device's upload answering it. Free functions on the caller's SqlEngine, so
// the network thread uses its operator connection and the CLI its own.
// Not thread-safe (one SqlEngine).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

// The largest upload stored for a request (the node's bound too).
inline constexpr size_t kMaxStoredLogBytes = 48 * 1024;

struct LogRequestLimits {
  int64_t ttl_s = 600;              // a request (and its upload) lives this long
  int64_t max_open_per_device = 8;  // unanswered, unexpired requests of one device
};

struct LogRequest {
  int64_t id = 0;
  std::string device_id;
  std::string app;
  int64_t since_s = 0;  // how far back the operator asked; 0: the whole ring
  std::string requested_by;
  int64_t requested_at = 0;
  int64_t expires_at = 0;
  int64_t uploaded_at = 0;  // 0: not answered yet
  std::string log;          // the newest upload
  std::string device_name;  // RecentLogRequests only ("" for a device since removed)
};

// An enrolled device by its name or its id.
struct LogDevice {
  std::string device_id;
  std::string name;
};
// kNotFound when no enrolled device has that name or id.
Result<LogDevice> FindLogDevice(SqlEngine& db, std::string_view name_or_id);

// Stores a request of `actor` and its audit row (action logs.request,
// target `device_name`, detail the app and the window) in one transaction,
// after deleting every expired request. kFailedPrecondition when the device
// already has `max_open_per_device` unanswered requests.
Result<int64_t> CreateLogRequest(SqlEngine& db, std::string_view actor, std::string_view device_id,
                                 std::string_view device_name, std::string_view app,
                                 int64_t since_s, int64_t now, const LogRequestLimits& limits = {});

// The request `id` with its upload; nullopt when unknown or expired.
Result<std::optional<LogRequest>> GetLogRequest(SqlEngine& db, int64_t id, int64_t now);

// The newest `limit` unexpired requests of every device, newest first, with
// their device's name (no log bodies): the dashboard's list.
Result<std::vector<LogRequest>> RecentLogRequests(SqlEngine& db, int64_t now, int64_t limit);

// A device's unanswered, unexpired requests, oldest first (no log bodies).
Result<std::vector<LogRequest>> PendingLogRequests(SqlEngine& db, std::string_view device_id,
                                                   int64_t now);

// Stores `log` as the upload of request `id` of `device_id` (replacing an
// earlier one); a log over kMaxStoredLogBytes keeps its newest bytes, NUL
// bytes and invalid UTF-8 become '?'. kNotFound when the request is not the
// device's or has expired.
Status StoreLogUpload(SqlEngine& db, int64_t id, std::string_view device_id, std::string_view log,
                      int64_t now);

// `text` with NUL bytes and bytes outside valid UTF-8 sequences replaced by '?'.
std::string SanitizeLogText(std::string_view text);

}  // namespace flotilla::tracker
