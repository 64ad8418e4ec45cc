// TUF's time format: "YYYY-MM-DDTHH:MM:SSZ" (UTC, seconds, no fraction).
//
// Pure functions: nothing here reads the clock. The client takes "now" from a
// core Clock and from its persisted time floor (see tuf_client.h).
#pragma once

#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace flotilla::metadata {

// Parses exactly "YYYY-MM-DDTHH:MM:SSZ" with years 1970..2200 (what a 64-bit
// nanosecond time point holds with room to spare); anything else is refused.
Result<WallTime> ParseTufTime(std::string_view text);

// Formats `t`, truncated to whole seconds, in the form ParseTufTime reads.
std::string FormatTufTime(WallTime t);

}  // namespace flotilla::metadata
