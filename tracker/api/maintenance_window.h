// Maintenance windows (docs/fleet.md, "Maintenance windows"): when a device
// may switch an app to a new release. A window is a set of days of the week
// and a from-to local time (wrapping midnight when `to` is not after `from`)
// in an IANA time zone. The tracker checks and stores them per group and
// writes a device's windows into its fleet document; the node evaluates them
// on its own clock. One text form and one JSON form, shared by both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"

namespace flotilla::tracker {

struct MaintenanceWindow {
  uint8_t days = 0;          // bit 0 Monday ... bit 6 Sunday; never 0
  uint16_t from_minute = 0;  // after local midnight, 0..1439
  uint16_t to_minute = 0;    // 1..1440 (24:00); at or before from: ends the next day
  std::string zone;          // IANA name, e.g. Europe/Berlin
  std::string group;         // the group that set it (informational)

  bool operator==(const MaintenanceWindow&) const = default;
};

// "mon-fri", "sat,sun", "mon-wed,fri", "daily"; days are mon tue wed thu fri
// sat sun, a range goes forward and may wrap ("fri-mon").
Result<uint8_t> ParseWindowDays(std::string_view text);
// The canonical form: ranges of consecutive days joined by ',' ("daily" for all).
std::string WindowDaysText(uint8_t days);
// "HH:MM", 00:00 to 23:59; `allow_24` also takes 24:00 (the end of the day).
Result<uint16_t> ParseWindowTime(std::string_view text, bool allow_24);
std::string WindowTimeText(uint16_t minute);
// A zone the system's time zone database (/usr/share/zoneinfo) holds.
Status CheckWindowZone(const std::string& zone);
// Parses and checks all four parts; from and to must differ.
Result<MaintenanceWindow> MakeWindow(std::string_view days, std::string_view from,
                                     std::string_view to, const std::string& zone);

// "mon-fri 22:00-06:00 Europe/Berlin"
std::string WindowText(const MaintenanceWindow& window);
// {"days":"mon-fri","from":"22:00","to":"06:00","tz":"Europe/Berlin"} (+ "group" when set)
Json WindowToJson(const MaintenanceWindow& window);
// The strict reverse: every part checked as MakeWindow does, except that the
// zone is not looked up (the node evaluates an unknown zone as UTC).
Result<MaintenanceWindow> WindowFromJson(const Json& json);

// Whether `window` is open at `at`: the local wall-clock time in its zone is
// within [from, to) on one of its days, or, for a window that wraps
// midnight, within [00:00, to) on the day after one of its days. A zone the
// system does not know is evaluated as UTC.
bool WindowOpen(const MaintenanceWindow& window, WallTime at);
// Whether any window is open at `at` (an empty list: always).
bool AnyWindowOpen(const std::vector<MaintenanceWindow>& windows, WallTime at);
// The next moment after `now`, to the minute, at which one of `windows`
// opens, within 8 days; nullopt when none does (or the list is empty).
struct WindowOpening {
  WallTime at;
  const MaintenanceWindow* window;
};
std::optional<WindowOpening> NextWindowOpening(const std::vector<MaintenanceWindow>& windows,
                                               WallTime now);
// The opening's local time and zone, "22:00 Europe/Berlin", with the day
// ("sat 10:00 America/New_York") when it is 24 hours or more after `now`.
std::string WindowOpeningText(const WindowOpening& opening, WallTime now);

}  // namespace flotilla::tracker
