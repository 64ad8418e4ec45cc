// `flotilla-tracker serve`: wires the configuration, the device database, the
// tracker service and the HTTP server, and runs until SIGINT or SIGTERM.
#pragma once

#include "core/status.h"
#include "tracker/publish/metadata_refresher.h"
#include "tracker/service/config.h"
#include "tracker/service/dashboard.h"
#include "tracker/service/tracker_service.h"

namespace flotilla::tracker {

// Runs the server on the calling thread until a termination signal.
// `refresher` (may be null) is called on a timer to re-sign expiring
// metadata: the metadata module supplies it (see metadata_refresher.h).
// `holder_duty` (may be null; only with a refresher) runs beside it on the
// replica holding the signing lease (SigningDuty::SetHolderDuty).
// `fleet_model` (may be empty) adds the rollouts and desired releases to the
// dashboard and /api/v1/fleet.
// `operator_actions` (may be empty) runs the operator API's actions.
Status RunTrackerServer(const TrackerConfig& config, MetadataRefresher* refresher,
                        MetadataRefresher* holder_duty = nullptr, FleetModelView fleet_model = {},
                        OperatorActionRunner operator_actions = {});

}  // namespace flotilla::tracker
