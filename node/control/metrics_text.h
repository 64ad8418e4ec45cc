// The node's metrics in the Prometheus text exposition format 0.0.4
// (docs/node.md, "Metrics"): every family has a HELP and a TYPE line, names
// start with flotilla_node_, label values are escaped.
#pragma once

#include <string>
#include <string_view>

#include "node/control/node_control.h"

namespace flotilla::node {

// The phases an app's flotilla_node_app_phase family always lists (one
// sample per phase, 1 for the current one).
inline constexpr std::string_view kAppPhases[] = {"idle",      "downloading", "verifying", "ready",
                                                  "deploying", "running",     "failed"};

std::string RenderMetrics(const NodeView& view);

}  // namespace flotilla::node
