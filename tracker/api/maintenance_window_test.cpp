// Maintenance windows: the text and JSON forms, and when a window is open
// (midnight wraps, days of the week, a DST change day, several zones).
#include "tracker/api/maintenance_window.h"

#include <date/date.h>
#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

using namespace std::chrono_literals;

// A UTC instant: y-m-d h:m.
WallTime Utc(int y, unsigned m, unsigned d, int h, int min) {
  return WallTime(date::sys_days(date::year(y) / m / d) + std::chrono::hours(h) +
                  std::chrono::minutes(min));
}

MaintenanceWindow Window(const char* days, const char* from, const char* to, const char* zone) {
  auto w = MakeWindow(days, from, to, zone);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? *w : MaintenanceWindow{};
}

TEST(MaintenanceWindowTest, DaysParseToCanonicalText) {
  EXPECT_EQ(ParseWindowDays("mon-fri").value(), 0x1f);
  EXPECT_EQ(ParseWindowDays("sat,sun").value(), 0x60);
  EXPECT_EQ(WindowDaysText(ParseWindowDays("sun,sat").value()), "sat-sun");
  EXPECT_EQ(WindowDaysText(ParseWindowDays("fri-mon").value()), "mon,fri-sun");
  EXPECT_EQ(WindowDaysText(ParseWindowDays("mon-wed,fri").value()), "mon-wed,fri");
  EXPECT_EQ(WindowDaysText(ParseWindowDays("daily").value()), "daily");
  EXPECT_EQ(WindowDaysText(ParseWindowDays("mon-sun").value()), "daily");
  for (const char* bad : {"", "funday", "mon-", "mon,,tue", "Mon"}) {
    EXPECT_FALSE(ParseWindowDays(bad).ok()) << bad;
  }
}

TEST(MaintenanceWindowTest, TimesAndZonesAreChecked) {
  EXPECT_EQ(ParseWindowTime("22:00", false).value(), 22 * 60);
  EXPECT_EQ(ParseWindowTime("24:00", true).value(), 1440);
  for (const char* bad : {"24:00", "7:00", "07:60", "25:00", "07-00", "ab:cd", "07:00 "}) {
    EXPECT_FALSE(ParseWindowTime(bad, false).ok()) << bad;
  }
  EXPECT_TRUE(CheckWindowZone("Europe/Berlin").ok());
  EXPECT_TRUE(CheckWindowZone("UTC").ok());
  for (const char* bad : {"Mars/Olympus", "../../etc/passwd", "/etc/passwd", "", "Europe"}) {
    EXPECT_FALSE(CheckWindowZone(bad).ok()) << bad;
  }
  auto same = MakeWindow("daily", "06:00", "06:00", "UTC");
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.status().message().find("same time"), std::string::npos);
  EXPECT_FALSE(MakeWindow("daily", "00:00", "24:00", "Nowhere/City").ok());
  EXPECT_TRUE(MakeWindow("daily", "00:00", "24:00", "UTC").ok());
}

TEST(MaintenanceWindowTest, JsonRoundTripsAndRefusesMissingParts) {
  MaintenanceWindow w = Window("mon-fri", "22:00", "06:00", "Europe/Berlin");
  w.group = "shops";
  const Json json = WindowToJson(w);
  EXPECT_EQ(json.dump(), R"({"days":"mon-fri","from":"22:00","group":"shops","to":"06:00",)"
                         R"("tz":"Europe/Berlin"})");
  EXPECT_EQ(WindowFromJson(json).value(), w);
  EXPECT_EQ(WindowText(w), "mon-fri 22:00-06:00 Europe/Berlin");
  Json no_zone = json;
  no_zone.erase("tz");
  EXPECT_FALSE(WindowFromJson(no_zone).ok());
  Json bad_time = json;
  bad_time["from"] = "22";
  EXPECT_FALSE(WindowFromJson(bad_time).ok());
}

// mon-fri 22:00-06:00 in Berlin (UTC+1 in December): 2026-12-07 is a Monday.
TEST(MaintenanceWindowTest, AWindowWrapsMidnightOnItsOwnDays) {
  const MaintenanceWindow w = Window("mon-fri", "22:00", "06:00", "Europe/Berlin");
  EXPECT_FALSE(WindowOpen(w, Utc(2026, 12, 7, 4, 0))) << "Monday 05:00: Sunday is not a day of it";
  EXPECT_FALSE(WindowOpen(w, Utc(2026, 12, 7, 20, 59))) << "Monday 21:59";
  EXPECT_TRUE(WindowOpen(w, Utc(2026, 12, 7, 21, 0))) << "Monday 22:00";
  EXPECT_TRUE(WindowOpen(w, Utc(2026, 12, 8, 4, 59))) << "Tuesday 05:59, Monday's night";
  EXPECT_FALSE(WindowOpen(w, Utc(2026, 12, 8, 5, 0))) << "Tuesday 06:00: the end is outside";
  EXPECT_TRUE(WindowOpen(w, Utc(2026, 12, 12, 4, 0))) << "Saturday 05:00, Friday's night";
  EXPECT_FALSE(WindowOpen(w, Utc(2026, 12, 12, 21, 30))) << "Saturday 22:30";
  EXPECT_FALSE(WindowOpen(w, Utc(2026, 12, 13, 4, 0))) << "Sunday 05:00";
  // Closed on Sunday afternoon: it opens Monday 22:00 local, 21:00 UTC.
  auto next = NextWindowOpening({w}, Utc(2026, 12, 13, 15, 7) + 30s);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->at, Utc(2026, 12, 14, 21, 0));
}

// Berlin goes from 02:00 CET to 03:00 CEST on 2027-03-28: a window's local
// times stay on the wall clock, so it opens an hour earlier in UTC, and a
// window inside the skipped hour does not open that day.
TEST(MaintenanceWindowTest, LocalTimesFollowTheWallClockAcrossADstChange) {
  const MaintenanceWindow morning = Window("daily", "09:00", "10:00", "Europe/Berlin");
  EXPECT_EQ(NextWindowOpening({morning}, Utc(2027, 3, 27, 0, 0))->at, Utc(2027, 3, 27, 8, 0));
  EXPECT_EQ(NextWindowOpening({morning}, Utc(2027, 3, 28, 0, 0))->at, Utc(2027, 3, 28, 7, 0));
  const MaintenanceWindow skipped = Window("daily", "02:00", "02:30", "Europe/Berlin");
  EXPECT_FALSE(WindowOpen(skipped, Utc(2027, 3, 28, 0, 59)));
  EXPECT_FALSE(WindowOpen(skipped, Utc(2027, 3, 28, 1, 0))) << "03:00 CEST";
  EXPECT_EQ(NextWindowOpening({skipped}, Utc(2027, 3, 28, 0, 0))->at, Utc(2027, 3, 29, 0, 0))
      << "02:00 CEST on Monday";
  const MaintenanceWindow straddling = Window("daily", "02:00", "04:00", "Europe/Berlin");
  EXPECT_EQ(NextWindowOpening({straddling}, Utc(2027, 3, 28, 0, 30))->at, Utc(2027, 3, 28, 1, 0))
      << "opens at 03:00 CEST, the first wall-clock time inside it";
}

// A device in several windowed groups may switch in any of their windows.
TEST(MaintenanceWindowTest, SeveralWindowsOpenTheirUnion) {
  const std::vector<MaintenanceWindow> windows = {
      Window("sat,sun", "10:00", "12:00", "America/New_York"),  // UTC-5 in December
      Window("mon", "09:00", "10:00", "Asia/Tokyo")};           // UTC+9
  EXPECT_TRUE(AnyWindowOpen({}, Utc(2026, 12, 9, 12, 0))) << "no window: any time";
  EXPECT_TRUE(AnyWindowOpen(windows, Utc(2026, 12, 12, 15, 30))) << "Saturday 10:30 New York";
  EXPECT_TRUE(AnyWindowOpen(windows, Utc(2026, 12, 7, 0, 30))) << "Monday 09:30 Tokyo";
  EXPECT_FALSE(AnyWindowOpen(windows, Utc(2026, 12, 7, 15, 30))) << "Monday 10:30 New York";
  auto next = NextWindowOpening(windows, Utc(2026, 12, 7, 2, 0));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->at, Utc(2026, 12, 12, 15, 0));
  EXPECT_EQ(next->window->zone, "America/New_York");
  EXPECT_FALSE(NextWindowOpening({}, Utc(2026, 12, 7, 2, 0)).has_value());
}

// A zone this system does not know (a window from a newer tzdata) is UTC.
TEST(MaintenanceWindowTest, AnUnknownZoneIsEvaluatedAsUtc) {
  MaintenanceWindow w = Window("daily", "10:00", "11:00", "UTC");
  w.zone = "Nowhere/City";
  EXPECT_TRUE(WindowOpen(w, Utc(2026, 12, 9, 10, 30)));
  EXPECT_FALSE(WindowOpen(w, Utc(2026, 12, 9, 11, 30)));
}

}  // namespace
}  // namespace flotilla::tracker
