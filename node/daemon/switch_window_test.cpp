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
  SwitchDecision held = DecideSwitch(windows, std::nullopt, /*running_healthy=*/true, clock);
  EXPECT_FALSE(held.now);
  EXPECT_EQ(held.waiting, "waiting for the maintenance window, opens 22:00 Europe/Berlin");
  clock.Advance(6h + 59min);  // 21:59 local
  EXPECT_FALSE(DecideSwitch(windows, std::nullopt, true, clock).now);
  clock.Advance(1min);  // 22:00 local
  EXPECT_TRUE(DecideSwitch(windows, std::nullopt, true, clock).now);
  EXPECT_EQ(DecideSwitch(windows, std::nullopt, true, clock).waiting, "");
  clock.Advance(8h);  // Tuesday 06:00: closed again
  EXPECT_FALSE(DecideSwitch(windows, std::nullopt, true, clock).now);
}

TEST(SwitchWindowTest, NoWindowsOrNothingHealthyRunningSwitchesAtOnce) {
  FakeClock clock(Utc(2026, 12, 7, 14, 0));
  EXPECT_TRUE(DecideSwitch({}, std::nullopt, true, clock).now) << "no windowed group: any time";
  const std::vector<tracker::MaintenanceWindow> windows = {
      Window("mon-fri", "22:00", "06:00", "Europe/Berlin")};
  EXPECT_TRUE(DecideSwitch(windows, std::nullopt, /*running_healthy=*/false, clock).now)
      << "an unhealthy app's replacement is not deferred";
}

TEST(SwitchWindowTest, AWindowDaysAwayIsNamedWithItsDay) {
  // Saturday 2026-12-12 12:00 UTC; the window opens Monday 22:00 Berlin.
  FakeClock clock(Utc(2026, 12, 12, 12, 0));
  const std::vector<tracker::MaintenanceWindow> windows = {
      Window("mon-fri", "22:00", "06:00", "Europe/Berlin")};
  EXPECT_EQ(DecideSwitch(windows, std::nullopt, true, clock).waiting,
            "waiting for the maintenance window, opens mon 22:00 Europe/Berlin");
}

// A lock holds the switch until it ends, even inside an open window (or
// with none); it never holds the replacement of an app not running healthy.
TEST(SwitchWindowTest, AnUpdateLockHoldsTheSwitchUntilItEnds) {
  FakeClock clock(Utc(2026, 12, 7, 22, 0));
  const int64_t now = 1796680800;  // 2026-12-07 22:00 UTC
  ASSERT_EQ(
      std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count(),
      now);
  const UpdateLock lock{now + 30 * 60, "customer at the screen"};
  SwitchDecision held = DecideSwitch({}, lock, true, clock);
  EXPECT_FALSE(held.now);
  EXPECT_EQ(held.waiting, "waiting for the update lock, until 22:30 UTC");
  const std::vector<tracker::MaintenanceWindow> open_now = {
      Window("daily", "21:00", "23:00", "UTC")};
  EXPECT_FALSE(DecideSwitch(open_now, lock, true, clock).now) << "an open window does not end it";
  EXPECT_TRUE(DecideSwitch({}, lock, /*running_healthy=*/false, clock).now);
  clock.Advance(std::chrono::minutes(29));
  EXPECT_TRUE(LockHolds(lock, clock));
  clock.Advance(std::chrono::minutes(1));
  EXPECT_FALSE(LockHolds(lock, clock)) << "ended by itself";
  EXPECT_TRUE(DecideSwitch(open_now, lock, true, clock).now);
  // Ended outside a window: the window still decides.
  const std::vector<tracker::MaintenanceWindow> closed = {Window("daily", "01:00", "02:00", "UTC")};
  EXPECT_EQ(DecideSwitch(closed, lock, true, clock).waiting,
            "waiting for the maintenance window, opens 01:00 UTC");
}

}  // namespace
}  // namespace flotilla::node
