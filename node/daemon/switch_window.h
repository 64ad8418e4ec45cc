// When the node may switch an app to a ready release it follows from the
// fleet (docs/fleet.md, "Maintenance windows"): inside one of the fleet
// document's windows, on the node's clock. Not deferred: a switch when the
// document has no windows, the first install of an app (nothing runs) and
// the replacement of a running app that is not healthy. A rollback after a
// failed health check is part of the switch and never waits.
#pragma once

#include <string>
#include <vector>

#include "core/clock.h"
#include "tracker/api/maintenance_window.h"

namespace flotilla::node {

struct SwitchDecision {
  bool now = true;
  // Why it waits, for status: "waiting for the maintenance window, opens
  // 22:00 Europe/Berlin" ("" when it switches now).
  std::string waiting;
};

// `running_healthy`: a release of the app runs and its container is running.
SwitchDecision DecideSwitch(const std::vector<tracker::MaintenanceWindow>& windows,
                            bool running_healthy, const Clock& clock);

}  // namespace flotilla::node
