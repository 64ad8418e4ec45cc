// Rollouts (docs/fleet.md, "Rollouts"): a release of one app staged across a
// group (or the whole fleet) in waves that advance on the devices' reports
// and halt themselves past a failure threshold. This file is the model, free
// of storage: wave assignment, the rollout limit the desired-release rule
// asks (RolloutLimit), and one evaluation step of a rollout.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tracker/fleet/desired.h"

namespace flotilla::tracker {

// Shares are in basis points: 10000 is the whole rollout.
inline constexpr uint32_t kWholeShare = 10000;

enum class RolloutState { kRunning, kPaused, kHalted, kAborted, kCompleted };
std::string_view RolloutStateName(RolloutState state);
std::optional<RolloutState> ParseRolloutState(std::string_view name);
// Running, paused and halted rollouts hold their app: no second one starts.
inline bool IsActive(RolloutState s) {
  return s != RolloutState::kAborted && s != RolloutState::kCompleted;
}

struct Rollout {
  int64_t id = 0;
  std::string app;
  uint64_t release = 0;
  std::string group;            // "" : every device that runs the app
  std::vector<uint32_t> waves;  // cumulative shares, increasing, the last kWholeShare
  int64_t soak_s = 0;
  uint32_t max_failures = 0;  // share of a wave's devices that may fail
  int64_t wave_timeout_s = 3600;
  RolloutState state = RolloutState::kRunning;
  std::string reason;       // why it halted (or was paused, aborted)
  size_t current_wave = 0;  // the newest started wave (0-based)
  int64_t created_at = 0;
  int64_t wave_started_at = 0;  // when current_wave started
  int64_t updated_at = 0;
};

// A device of a rollout and what its reports showed of the rollout's release.
struct RolloutMember {
  std::string device_id;
  std::string name;
  size_t wave = 0;
  int64_t sent_at = 0;         // when its wave started; 0: not yet
  int64_t healthy_since = 0;   // first report running the release healthy; 0: none
  std::string failure;         // what failed, from its latest report of the app; "": nothing
  int64_t last_report_at = 0;  // its latest report of the app seen; 0: none
};

// "10%,50%,100%" (percentages with up to two decimals, increasing, the last
// 100%) -> cumulative basis points. InvalidArgument says what is wrong.
Result<std::vector<uint32_t>> ParseWaves(std::string_view text);
// "5%" or "2.5%" -> basis points (0-100%).
Result<uint32_t> ParseShare(std::string_view text);
// "30m", "90s", "1h", "0" -> seconds.
Result<int64_t> ParseSeconds(std::string_view text);
std::string ShareText(uint32_t basis_points);  // 2.5%

// The number of devices the first `share` of `total` devices is: ceil.
size_t CumulativeSize(uint32_t share, size_t total);

// Assigns each device a wave: wave i ends at CumulativeSize(waves[i], N)
// devices in all, and takes from every site in proportion to the site's size
// (each device added goes to the site furthest below its share). Within a
// site the order is a hash of the rollout id and device id, so successive
// rollouts do not always start on the same screens. Deterministic: the same
// input gives the same waves.
std::map<std::string, size_t> AssignWaves(int64_t rollout_id, const std::vector<uint32_t>& waves,
                                          const std::vector<FleetDevice>& devices);

// Whether the rollout covers `device` (its group selects it, or any device
// when it has no group); `state` gives the groups.
bool RolloutCovers(const Rollout& rollout, const FleetState& state, const FleetDevice& device);

// The rollout limit from the newest rollout of each app: a device in a
// started wave may reach the release; a device in a later wave (or covered
// but not yet a member: it joins the last wave) keeps what is below it; an
// aborted rollout holds every device it covers below its release (until the
// next rollout of the app). A completed rollout limits nothing.
class RolloutLimits final : public RolloutLimit {
 public:
  // `rollouts`: the newest of each app; `members`: rollout id -> device id
  // -> wave. `state` must outlive this object.
  RolloutLimits(const FleetState& state, std::vector<Rollout> rollouts,
                std::map<int64_t, std::map<std::string, size_t>> members)
      : state_(state), rollouts_(std::move(rollouts)), members_(std::move(members)) {}
  std::optional<uint64_t> Ceiling(const FleetDevice& device, std::string_view app) const override;

  // The rollout that limits `device` for `app` and the device's wave in it
  // (0-based; a covered device not yet a member is in the last wave).
  struct Placement {
    const Rollout* rollout = nullptr;  // owned by this object
    size_t wave = 0;
  };
  // nullopt when no rollout limits it (none of the app, the newest
  // completed, or the device not covered).
  std::optional<Placement> PlacementOf(const FleetDevice& device, std::string_view app) const;

 private:
  const FleetState& state_;
  std::vector<Rollout> rollouts_;
  std::map<int64_t, std::map<std::string, size_t>> members_;
};

// A device's latest report of one app as stored (device_status).
struct ReportSeen {
  std::string app;
  std::string release;
  std::string state;
  std::string health;
  std::string failure;  // the report's failure kind; "": none named
  int64_t reported_at = 0;
};

// Whether a `failed` report of this kind is one the node retries by itself
// (a fetch that failed, a full disk): pending, not a failure of the release.
bool IsRetriedFailure(std::string_view kind);

struct WaveCounts {
  size_t size = 0;
  size_t healthy = 0;  // ran the release healthy for the soak time
  size_t soaking = 0;  // healthy, not yet for the soak time
  size_t failed = 0;
  size_t pending = 0;  // no verdict yet (fetching, switching, silent)
  size_t silent = 0;   // of pending: no report since the wave started
  bool started = false;
};

struct RolloutStep {
  std::vector<WaveCounts> waves;
  bool changed = false;               // the rollout row changed (state, wave)
  std::vector<std::string> released;  // device ids whose limit changed
};

// One evaluation at `now`: updates the members' observations from
// `reports` (device id -> its latest report of the rollout's app), then, for a running rollout,
// halts it when a started wave has more failures than max_failures allows
// (the reason names the devices and what failed), else starts the next wave
// once the current one has enough healthy devices (after the wave timeout,
// devices silent since the wave started are left out of the count), or
// completes it after the last. Paused, halted and finished rollouts only
// count.
RolloutStep EvaluateRollout(Rollout& rollout, std::vector<RolloutMember>& members,
                            const std::map<std::string, ReportSeen>& reports, int64_t now);

}  // namespace flotilla::tracker
