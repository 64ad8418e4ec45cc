#include "node/daemon/switch_window.h"

namespace flotilla::node {

SwitchDecision DecideSwitch(const std::vector<tracker::MaintenanceWindow>& windows,
                            bool running_healthy, const Clock& clock) {
  const WallTime now = clock.Now();
  if (windows.empty() || !running_healthy || tracker::AnyWindowOpen(windows, now)) return {};
  auto opening = tracker::NextWindowOpening(windows, now);
  if (!opening) {
    return {false, "waiting for the maintenance window (none opens within 8 days)"};
  }
  return {false,
          "waiting for the maintenance window, opens " + tracker::WindowOpeningText(*opening, now)};
}

}  // namespace flotilla::node
