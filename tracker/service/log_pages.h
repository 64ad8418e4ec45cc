// The dashboard's device-log pages (docs/logs.md, "On the dashboard"):
// /logs, a form asking a device for an app's log and the newest requests,
// and /logs/ID, one request's answer, refreshing itself until the device
// uploads. Server-rendered HTML without scripts, like the dashboard; every
// text that came from a device or an operator is HTML-escaped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracker/storage/log_store.h"

namespace flotilla::tracker {

// Newest requests the /logs page lists.
inline constexpr int64_t kLogPageRequests = 50;
// How often /logs/ID reloads itself while the device has not answered.
inline constexpr int kLogPageRefreshS = 3;

struct LogFormValues {
  std::string device;
  std::string app;
  int64_t since_s = 0;
};

struct LogsPageContext {
  int64_t now_unix = 0;
  std::string csrf;     // the session's CSRF token ("" when signed in by a token)
  LogFormValues form;   // what the form shows
  std::string message;  // why the form is shown again ("" none)
};

std::string RenderLogsPage(const std::vector<LogRequest>& recent, const LogsPageContext& context);

// One request; `device_name` as the operator knows the device.
std::string RenderLogPage(const LogRequest& request, std::string_view device_name,
                          int64_t now_unix);

}  // namespace flotilla::tracker
