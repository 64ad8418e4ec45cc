// The fleet dashboard: one self-contained HTML page (inline CSS, no scripts,
// no external assets) rendered on the server from the device database.
#pragma once

#include <cstdint>
#include <string>

#include "tracker/api/fleet.h"

namespace flotilla::tracker {

struct DashboardContext {
  int64_t now_unix = 0;
  size_t swarms = 0;
  size_t peers = 0;
};

// Every text that came from a device or an operator is HTML-escaped.
std::string RenderDashboard(const FleetSnapshot& fleet, const DashboardContext& context);

std::string HtmlEscape(std::string_view text);

// "1.5 MiB"
std::string HumanBytes(uint64_t bytes);

}  // namespace flotilla::tracker
