// When the node may switch an app to a ready release (docs/fleet.md,
// "Maintenance windows" and "Update locks"): inside one of the fleet
// document's windows (any time when it has none) and while no update lock of
// the app holds, on the node's clock. Not deferred: the first install of an
// app (nothing runs) and the replacement of a running app that is not
// healthy. A rollback after a failed health check is part of the switch and
// never waits.
#pragma once

#include <cstdint>
#include <optional>
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

// An app's update lock: it holds until `until_unix` (wall clock).
struct UpdateLock {
  int64_t until_unix = 0;
  std::string reason;
};

// Whether `lock` holds at the clock's time.
bool LockHolds(const std::optional<UpdateLock>& lock, const Clock& clock);

// `running_healthy`: a release of the app runs and its container is running.
SwitchDecision DecideSwitch(const std::vector<tracker::MaintenanceWindow>& windows,
                            const std::optional<UpdateLock>& lock, bool running_healthy,
                            const Clock& clock);

}  // namespace flotilla::node
