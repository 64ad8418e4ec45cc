// Running a scenario: the real tracker and one real node per device in the
// scenario's network, a release published, completion watched, churn
// applied, ground truth collected into a RunReport (docs/sim.md, "Scenario
// runs").
#pragma once

#include <atomic>
#include <string>

#include "core/status.h"
#include "sim/run_report.h"
#include "sim/scenario.h"

namespace flotilla::sim {

struct ScenarioRunOptions {
  std::string tracker_binary;  // flotilla-tracker
  std::string node_binary;     // flotilla-node
  std::string out_dir;         // report.json, plots, logs/ (copied from the run before teardown)
  bool progress = true;        // one status line per second on stderr
  // Set from a signal handler: the run stops at the next tick, tears down and
  // reports what it had ("interrupted").
  const std::atomic<bool>* interrupted = nullptr;
};

// Seconds between two looks at the fleet.
inline constexpr double kTickSeconds = 1.0;

Result<RunReport> RunScenario(const Scenario& scenario, const ScenarioRunOptions& options);

// The node configuration the harness writes for device `device` of `site`
// (strategy -> transfer mode and deltas; addresses from the topology).
Json NodeConfigFor(const Scenario& scenario, int site, int device, const std::string& data_dir,
                   const std::string& token_file, const std::string& root_file);

}  // namespace flotilla::sim
