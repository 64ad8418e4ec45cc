// The fleet dashboard: one self-contained HTML page (inline CSS, no scripts,
// no external assets) rendered on the server from the device database and
// the fleet model (docs/tracker.md, "GET /"). Its size is bounded whatever
// the fleet's: a page of devices, the newest rollouts, the newest failures.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "tracker/api/fleet.h"
#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {

// Devices on one page of the dashboard (?page=N) and of /api/v1/fleet?page=N.
inline constexpr uint64_t kDashboardDevicesPerPage = 100;
// Rollouts shown, the newest first, and failed devices shown of each.
inline constexpr size_t kDashboardRollouts = 20;
inline constexpr size_t kDashboardFailedPerRollout = 20;

// The fleet model's part of what the dashboard and /api/v1/fleet show: adds
// to a snapshot the `max_rollouts` newest rollouts (with at most
// `max_failed` failed devices each) and its devices' desired releases.
// `serve` gives tracker/fleet's FleetView::Fill; called on the network thread.
using FleetModelView =
    std::function<Status(FleetSnapshot& snapshot, size_t max_rollouts, size_t max_failed)>;

struct DashboardContext {
  int64_t now_unix = 0;
  size_t swarms = 0;
  size_t peers = 0;
  // The signed-in operator ("" none: no account exists) and the session's
  // CSRF token for the logout form ("" when signed in by a bearer token).
  OperatorIdentity signed_in;
  std::string csrf;
  // The newest audit entries, for an admin (nullopt: no section).
  std::optional<std::vector<AuditEntry>> audit;
  // Whether the operator may ask for device logs (a link to /logs).
  bool logs_link = false;
};

// Audit entries the dashboard shows an admin.
inline constexpr int64_t kDashboardAuditEntries = 50;

// Every text that came from a device or an operator is HTML-escaped.
std::string RenderDashboard(const FleetSnapshot& fleet, const DashboardContext& context);

std::string HtmlEscape(std::string_view text);

// The start of every dashboard page up to and including <body>: the style
// sheet, the title, and a refresh every `refresh_s` seconds (0: none; the
// pages have no scripts).
std::string PageHead(std::string_view title, int refresh_s);

// "12 s ago", "3 min ago", ...; "never" for 0.
std::string Ago(int64_t now, int64_t then);

// "1.5 MiB"
std::string HumanBytes(uint64_t bytes);

}  // namespace flotilla::tracker
