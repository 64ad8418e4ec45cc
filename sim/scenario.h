// Scenario files: what flotilla-sim runs (format and examples in
// docs/sim.md and sim/scenarios/). Parsing validates everything and expands
// site groups and random churn into concrete, seed-determined lists, so a
// runner only reads plain values. Unknown keys are errors (a typo must not
// silently become a default).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"
#include "sim/topology.h"

namespace flotilla::sim {

enum class Strategy { kFlotilla, kHttpFull, kHttpDelta };
std::string_view StrategyName(Strategy s);
// "flotilla" (also ""), "http-full", "http-delta".
Result<Strategy> ParseStrategy(const std::string& name);

struct ChurnEvent {
  enum class Kind { kDeviceOff, kWanDown };
  Kind kind = Kind::kDeviceOff;
  int site = 0;
  int device = -1;  // kDeviceOff only
  double from_s = 0;
  double to_s = 0;
  friend bool operator==(const ChurnEvent&, const ChurnEvent&) = default;
};

struct Release {
  std::string image;     // absolute path (resolved against the scenario's directory)
  std::string previous;  // empty: no previous release, so no deltas
  // The measured release's app spec has a health check that always fails:
  // its health-gated switch rolls back (a bad release).
  bool health_fails = false;
};

// A staged rollout of the measured release (`flotilla-tracker rollout
// start`): the run makes the fleet managed and the tracker stages the release.
struct RolloutSpec {
  std::vector<double> waves;  // cumulative percentages, increasing, the last 100
  double max_failures = 5;    // percent of a wave
  uint32_t soak_s = 0;        // healthy this long to count
  uint32_t wave_timeout_s = 600;
  std::string waves_text;         // as `--waves` takes it: "10%,50%,100%"
  std::string max_failures_text;  // as `--max-failures` takes it: "25%"
  friend bool operator==(const RolloutSpec&, const RolloutSpec&) = default;
};

// "10%,50%,100%": up to 20 cumulative shares, each a percentage with at most
// two decimals, increasing, the last 100% (what `rollout start --waves` takes).
Result<std::vector<double>> ParseWaveShares(const std::string& text);

struct Scenario {
  std::string name;
  std::string description;
  uint64_t seed = 1;
  uint32_t time_limit_s = 0;
  Strategy strategy = Strategy::kFlotilla;
  Release release;
  TopologySpec topology;               // sites in file order, groups expanded
  std::vector<ChurnEvent> churn;       // sorted by from_s, then site, then device
  std::optional<RolloutSpec> rollout;  // none: every device takes the release at once
  // The nodes' `origin_wait_s` (docs/node.md); 0: the node's default. Set by
  // `flotilla-sim run --origin-wait`, not by the file.
  uint32_t node_origin_wait_s = 0;
};

inline constexpr size_t kMaxScenarioBytes = 1 << 20;

// `base_dir` resolves relative image paths.
Result<Scenario> ParseScenario(std::string_view json_text, const std::string& base_dir);
Result<Scenario> LoadScenario(const std::string& path);

// The expanded scenario as JSON (what `flotilla-sim scenario check` prints).
Json ScenarioToJson(const Scenario& s);

}  // namespace flotilla::sim
