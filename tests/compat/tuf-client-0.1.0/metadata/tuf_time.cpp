#include "metadata/tuf_time.h"

#include <chrono>
#include <cstdio>

namespace flotilla::metadata {
namespace {

// Reads `count` decimal digits at `pos`; returns -1 if any is not a digit.
int ReadDigits(std::string_view text, size_t pos, size_t count) {
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

Result<WallTime> ParseTufTime(std::string_view text) {
  // Positions of the fixed separators in "YYYY-MM-DDTHH:MM:SSZ".
  static constexpr std::string_view kShape = "0000-00-00T00:00:00Z";
  auto refuse = [&] {
    return InvalidArgument("time '" + std::string(text.substr(0, 40)) +
                           "' is not of the form YYYY-MM-DDTHH:MM:SSZ");
  };
  if (text.size() != kShape.size()) return refuse();
  for (size_t i = 0; i < kShape.size(); ++i) {
    if (kShape[i] != '0' && text[i] != kShape[i]) return refuse();
  }
  int year = ReadDigits(text, 0, 4), month = ReadDigits(text, 5, 2), day = ReadDigits(text, 8, 2);
  int hour = ReadDigits(text, 11, 2), minute = ReadDigits(text, 14, 2);
  int second = ReadDigits(text, 17, 2);
  if (year < 1970 || year > 2200 || month < 1 || day < 1 || hour > 23 || minute > 59 ||
      second > 59) {
    return refuse();
  }
  std::chrono::year_month_day date{std::chrono::year(year),
                                   std::chrono::month(static_cast<unsigned>(month)),
                                   std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return refuse();
  auto since_epoch = std::chrono::sys_days(date).time_since_epoch() + std::chrono::hours(hour) +
                     std::chrono::minutes(minute) + std::chrono::seconds(second);
  return WallTime(std::chrono::duration_cast<WallTime::duration>(since_epoch));
}

std::string FormatTufTime(WallTime t) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  auto days = std::chrono::floor<std::chrono::days>(seconds);
  std::chrono::year_month_day date{days};
  std::chrono::hh_mm_ss<std::chrono::seconds> clock_time{seconds - days};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock_time.hours().count()),
                static_cast<int>(clock_time.minutes().count()),
                static_cast<int>(clock_time.seconds().count()));
  return buf;
}

}  // namespace flotilla::metadata
