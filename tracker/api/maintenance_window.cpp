#include "tracker/api/maintenance_window.h"

#include <date/tz.h>
#include <unistd.h>

#include <array>
#include <charconv>

namespace flotilla::tracker {
namespace {

constexpr std::array<std::string_view, 7> kDayNames = {"mon", "tue", "wed", "thu",
                                                       "fri", "sat", "sun"};
constexpr uint8_t kAllDays = 0x7f;
constexpr char kZoneDir[] = "/usr/share/zoneinfo/";

std::optional<int> DayIndex(std::string_view name) {
  for (size_t i = 0; i < kDayNames.size(); ++i) {
    if (kDayNames[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// The zone, or UTC when the system does not know it.
const date::time_zone* ZoneOrUtc(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return date::locate_zone("UTC");
  }
}

// Local wall time of `at` in `zone`: the day of the week (0 Monday) and the minute of the day.
std::pair<int, int> LocalDayMinute(const date::time_zone* zone, WallTime at) {
  const auto local = zone->to_local(std::chrono::time_point_cast<std::chrono::seconds>(at));
  const auto day = date::floor<date::days>(local);
  const int weekday = static_cast<int>(date::weekday(day).iso_encoding()) - 1;  // 0 Monday
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(local - day).count();
  return {weekday, static_cast<int>(minutes)};
}

bool HasDay(uint8_t days, int weekday) { return (days >> ((weekday + 7) % 7)) & 1; }

}  // namespace

Result<uint8_t> ParseWindowDays(std::string_view text) {
  text = Trim(text);
  if (text == "daily") return kAllDays;
  if (text.empty()) return InvalidArgument("days: empty (e.g. mon-fri, sat,sun, daily)");
  uint8_t days = 0;
  while (true) {
    const size_t comma = text.find(',');
    std::string_view part = Trim(text.substr(0, comma));
    const size_t dash = part.find('-');
    auto first = DayIndex(Trim(part.substr(0, dash)));
    auto last = dash == std::string_view::npos ? first : DayIndex(Trim(part.substr(dash + 1)));
    if (!first || !last) {
      return InvalidArgument("days: '" + std::string(part) +
                             "' is not a day or a range of days (mon tue wed thu fri sat sun, "
                             "e.g. mon-fri)");
    }
    for (int d = *first;; d = (d + 1) % 7) {
      days |= uint8_t(1u << d);
      if (d == *last) break;
    }
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return days;
}

std::string WindowDaysText(uint8_t days) {
  if ((days & kAllDays) == kAllDays) return "daily";
  std::string out;
  for (int d = 0; d < 7;) {
    if (!HasDay(days, d)) {
      ++d;
      continue;
    }
    int end = d;
    while (end + 1 < 7 && HasDay(days, end + 1)) ++end;
    if (!out.empty()) out += ",";
    out += kDayNames[d];
    if (end > d) out += "-" + std::string(kDayNames[end]);
    d = end + 1;
  }
  return out;
}

Result<uint16_t> ParseWindowTime(std::string_view text, bool allow_24) {
  auto bad = [&] {
    return InvalidArgument("time '" + std::string(text) + "' is not HH:MM from 00:00 to " +
                           (allow_24 ? "24:00" : "23:59"));
  };
  if (text.size() != 5 || text[2] != ':') return bad();
  int hours = 0, minutes = 0;
  auto h = std::from_chars(text.data(), text.data() + 2, hours);
  auto m = std::from_chars(text.data() + 3, text.data() + 5, minutes);
  if (h.ec != std::errc() || h.ptr != text.data() + 2 || m.ec != std::errc() ||
      m.ptr != text.data() + 5 || minutes > 59) {
    return bad();
  }
  const int total = hours * 60 + minutes;
  if (total > (allow_24 ? 1440 : 1439)) return bad();
  return static_cast<uint16_t>(total);
}

std::string WindowTimeText(uint16_t minute) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", minute / 60, minute % 60);
  return buf;
}

Status CheckWindowZone(const std::string& zone) {
  const bool shaped = !zone.empty() && zone.size() <= 64 && zone.front() != '/' &&
                      zone.find("..") == std::string::npos &&
                      zone.find_first_not_of(
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") ==
                          std::string::npos;
  if (!shaped || ::access((kZoneDir + zone).c_str(), R_OK) != 0) {
    return InvalidArgument("time zone '" + zone + "' is not in " + kZoneDir +
                           " (an IANA name such as Europe/Berlin or UTC)");
  }
  try {
    date::locate_zone(zone);
  } catch (const std::exception& e) {
    return InvalidArgument("time zone '" + zone + "': " + e.what());
  }
  return Status::Ok();
}

Result<MaintenanceWindow> MakeWindow(std::string_view days, std::string_view from,
                                     std::string_view to, const std::string& zone) {
  MaintenanceWindow w;
  ASSIGN_OR_RETURN(w.days, ParseWindowDays(days));
  auto start = ParseWindowTime(from, /*allow_24=*/false);
  if (!start.ok()) return start.status().WithContext("--from");
  auto end = ParseWindowTime(to, /*allow_24=*/true);
  if (!end.ok()) return end.status().WithContext("--to");
  if (*start == *end) {
    return InvalidArgument(
        "--from and --to are the same time: a window needs a length "
        "(a whole day is 00:00 to 24:00)");
  }
  w.from_minute = *start;
  w.to_minute = *end;
  RETURN_IF_ERROR(CheckWindowZone(zone));
  w.zone = zone;
  return w;
}

std::string WindowText(const MaintenanceWindow& w) {
  return WindowDaysText(w.days) + " " + WindowTimeText(w.from_minute) + "-" +
         WindowTimeText(w.to_minute) + " " + w.zone;
}

Json WindowToJson(const MaintenanceWindow& w) {
  Json json{{"days", WindowDaysText(w.days)},
            {"from", WindowTimeText(w.from_minute)},
            {"to", WindowTimeText(w.to_minute)},
            {"tz", w.zone}};
  if (!w.group.empty()) json["group"] = w.group;
  return json;
}

Result<MaintenanceWindow> WindowFromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgument("window: not an object");
  for (const char* key : {"days", "from", "to", "tz"}) {
    if (!json.contains(key) || !json.at(key).is_string()) {
      return InvalidArgument(std::string("window: ") + key + " is missing or not a string");
    }
  }
  MaintenanceWindow w;
  ASSIGN_OR_RETURN(w.days, ParseWindowDays(json.at("days").get<std::string>()));
  ASSIGN_OR_RETURN(w.from_minute, ParseWindowTime(json.at("from").get<std::string>(), false));
  ASSIGN_OR_RETURN(w.to_minute, ParseWindowTime(json.at("to").get<std::string>(), true));
  if (w.from_minute == w.to_minute) return InvalidArgument("window: from equals to");
  w.zone = json.at("tz").get<std::string>();
  if (w.zone.empty() || w.zone.size() > 64) return InvalidArgument("window: bad tz");
  if (json.contains("group") && json.at("group").is_string()) {
    w.group = json.at("group").get<std::string>();
  }
  return w;
}

bool WindowOpen(const MaintenanceWindow& w, WallTime at) {
  const auto [weekday, minute] = LocalDayMinute(ZoneOrUtc(w.zone), at);
  if (w.from_minute < w.to_minute) {
    return HasDay(w.days, weekday) && minute >= w.from_minute && minute < w.to_minute;
  }
  // Wraps midnight: the evening of one of its days, or the morning after.
  return (HasDay(w.days, weekday) && minute >= w.from_minute) ||
         (HasDay(w.days, weekday - 1) && minute < w.to_minute);
}

bool AnyWindowOpen(const std::vector<MaintenanceWindow>& windows, WallTime at) {
  if (windows.empty()) return true;
  for (const auto& w : windows) {
    if (WindowOpen(w, at)) return true;
  }
  return false;
}

std::optional<WindowOpening> NextWindowOpening(const std::vector<MaintenanceWindow>& windows,
                                               WallTime now) {
  // Minute by minute: exact across DST changes (a wall-clock time that does
  // not exist opens at the first one that does), 11,520 steps at most.
  auto t = std::chrono::ceil<std::chrono::minutes>(now);
  if (t == now) t += std::chrono::minutes(1);
  std::vector<bool> was_open;
  for (const auto& w : windows) was_open.push_back(WindowOpen(w, now));
  for (int step = 0; step < 8 * 24 * 60; ++step, t += std::chrono::minutes(1)) {
    for (size_t i = 0; i < windows.size(); ++i) {
      const bool open = WindowOpen(windows[i], t);
      if (open && !was_open[i]) return WindowOpening{t, &windows[i]};
      was_open[i] = open;
    }
  }
  return std::nullopt;
}

std::string WindowOpeningText(const WindowOpening& opening, WallTime now) {
  const auto [weekday, minute] = LocalDayMinute(ZoneOrUtc(opening.window->zone), opening.at);
  std::string text = WindowTimeText(static_cast<uint16_t>(minute)) + " " + opening.window->zone;
  if (opening.at - now >= std::chrono::hours(24)) {
    text = std::string(kDayNames[weekday]) + " " + text;
  }
  return text;
}

}  // namespace flotilla::tracker
