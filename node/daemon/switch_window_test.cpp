// The switch decision on a fake clock: held outside the windows, released
// when one opens, never held for an app that is not running healthy.
#include "node/daemon/switch_window.h"

#include <date/date.h>
#include <gtest/gtest.h>

namespace flotilla::node {
namespace {

using namespace std::chrono_literals;

WallTime Utc(int y, unsigned m, unsigned d, int h, int min) {
  return WallTime(date::sys_days(date::year(y) / m / d) + std::chrono::hours(h) +
                  std::chrono::minutes(min));
}

tracker::MaintenanceWindow Window(const char* days, const char* from, const char* to,
                                  const char* zone) {
  return tracker::MakeWindow(days, from, to, zone).value();
}

TEST(SwitchWindowTest, HeldOutsideTheWindowAndReleasedWhenItOpens) {
  // Monday 2026-12-07 15:00 in Berlin (14:00 UTC).
  FakeClock clock(Utc(2026, 12, 7, 14, 0));
  const std::vector<tracker::MaintenanceWindow> windows = {
      Window("mon-fri", "22:00", "06:00", "Europe/Berlin")};
  SwitchDecision held = DecideSwitch(windows, /*running_healthy=*/true, clock);
  EXPECT_FALSE(held.now);
  EXPECT_EQ(held.waiting, "waiting for the maintenance window, opens 22:00 Europe/Berlin");
  clock.Advance(6h + 59min);  // 21:59 local
  EXPECT_FALSE(DecideSwitch(windows, true, clock).now);
  clock.Advance(1min);  // 22:00 local
  EXPECT_TRUE(DecideSwitch(windows, true, clock).now);
  EXPECT_EQ(DecideSwitch(windows, true, clock).waiting, "");
  clock.Advance(8h);  // Tuesday 06:00: closed again
  EXPECT_FALSE(DecideSwitch(windows, true, clock).now);
}

TEST(SwitchWindowTest, NoWindowsOrNothingHealthyRunningSwitchesAtOnce) {
  FakeClock clock(Utc(2026, 12, 7, 14, 0));
  EXPECT_TRUE(DecideSwitch({}, true, clock).now) << "no windowed group: any time";
  const std::vector<tracker::MaintenanceWindow> windows = {
      Window("mon-fri", "22:00", "06:00", "Europe/Berlin")};
  EXPECT_TRUE(DecideSwitch(windows, /*running_healthy=*/false, clock).now)
      << "an unhealthy app's replacement is not deferred";
}

TEST(SwitchWindowTest, AWindowDaysAwayIsNamedWithItsDay) {
  // Saturday 2026-12-12 12:00 UTC; the window opens Monday 22:00 Berlin.
  FakeClock clock(Utc(2026, 12, 12, 12, 0));
  const std::vector<tracker::MaintenanceWindow> windows = {
      Window("mon-fri", "22:00", "06:00", "Europe/Berlin")};
  EXPECT_EQ(DecideSwitch(windows, true, clock).waiting,
            "waiting for the maintenance window, opens mon 22:00 Europe/Berlin");
}

}  // namespace
}  // namespace flotilla::node
