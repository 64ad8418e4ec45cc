#include "node/daemon/switch_window.h"

#include <fmt/core.h>

namespace flotilla::node {
namespace {

int64_t UnixOf(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// "23:14 UTC"
std::string UtcClockText(int64_t unix_seconds) {
  const int64_t of_day = ((unix_seconds % 86400) + 86400) % 86400;
  return fmt::format("{:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60);
}

}  // namespace

bool LockHolds(const std::optional<UpdateLock>& lock, const Clock& clock) {
  return lock && lock->until_unix > UnixOf(clock.Now());
}

SwitchDecision DecideSwitch(const std::vector<tracker::MaintenanceWindow>& windows,
                            const std::optional<UpdateLock>& lock, bool running_healthy,
                            const Clock& clock) {
  if (!running_healthy) return {};
  if (LockHolds(lock, clock)) {
    return {false, "waiting for the update lock, until " + UtcClockText(lock->until_unix)};
  }
  const WallTime now = clock.Now();
  if (windows.empty() || tracker::AnyWindowOpen(windows, now)) return {};
  auto opening = tracker::NextWindowOpening(windows, now);
  if (!opening) {
    return {false, "waiting for the maintenance window (none opens within 8 days)"};
  }
  return {false,
          "waiting for the maintenance window, opens " + tracker::WindowOpeningText(*opening, now)};
}

}  // namespace flotilla::node
