// Enrolment: the fleet token is traded once for a device identity
// (POST /api/v1/enroll, docs/tracker.md) kept in <data>/credentials.json,
// mode 0600, written atomically. The credential and passkey are secrets:
// nothing here logs them, and Status messages never contain them.
#pragma once

#include <string>

#include "core/status.h"
#include "node/daemon/node_config.h"
#include "tracker/api/enrolment.h"

namespace flotilla::node {

using tracker::DeviceCredentials;

// The stored credentials, or NotFound when the device never enrolled.
// Refuses a file readable by group or others (PermissionDenied).
Result<DeviceCredentials> LoadCredentials(const std::string& path);

// Loads the stored credentials, or enrols with the configured token and
// stores the answer. Unavailable when the tracker cannot be reached.
Result<DeviceCredentials> EnsureEnrolled(const NodeConfig& config, const DataLayout& layout);

}  // namespace flotilla::node
