// The rollouts' tables (docs/fleet.md, "Rollouts") in the tracker's database,
// on either engine: starting, pausing, resuming and aborting a rollout, and
// the evaluation step that advances or halts the running ones from the
// devices' latest reports. Each change is one transaction.
// Not thread-safe (one SqlEngine).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/fleet/rollout.h"
#include "tracker/storage/operator_store.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

struct RolloutSpec {
  std::string app;
  uint64_t release = 0;
  std::string group;  // "": every device that runs the app
  std::vector<uint32_t> waves;
  int64_t soak_s = 30 * 60;
  uint32_t max_failures = 500;  // 5%
  int64_t wave_timeout_s = 3600;
};

// A rollout as `rollout status` shows it.
struct RolloutView {
  Rollout rollout;
  std::vector<RolloutMember> members;
  std::vector<WaveCounts> waves;
};

// What an evaluation did: the devices (ids) whose limit changed, to re-sign.
struct RolloutPass {
  std::vector<std::string> released;
  size_t rollouts = 0;  // evaluated
};

class RolloutStore {
 public:
  static Result<std::unique_ptr<RolloutStore>> Open(const std::string& url, const Clock& clock);

  // Starts a rollout over the devices `state` shows covered by it that run
  // the app; its first wave starts at once. FailedPrecondition when another
  // rollout of the app is running, paused or halted, when the release is
  // recalled or no device runs the app there; NotFound for a release not
  // published or an unknown group.
  Result<RolloutView> Start(const RolloutSpec& spec, const FleetState& state);
  // Every rollout (or one: NotFound when unknown), newest first, counted
  // from the members' stored observations; at most `limit` (0: no limit).
  Result<std::vector<RolloutView>> List(std::optional<int64_t> id, size_t limit = 0);
  // How many rollouts the database holds.
  Result<uint64_t> Count();
  // pause: running -> paused; resume: paused or halted -> running; abort:
  // running, paused or halted -> aborted. FailedPrecondition otherwise.
  Result<RolloutView> Pause(int64_t id);
  Result<RolloutView> Resume(int64_t id);
  Result<RolloutView> Abort(int64_t id);

  // One evaluation of every running, paused and halted rollout: devices
  // newly covered join the last wave, the members' reports are read, and
  // each rollout advances, halts or completes (EvaluateRollout). In the same
  // transaction, the webhook outbox (tracker/storage/webhook_outbox.h) gets
  // rollout.halted and rollout.completed for a running rollout that halted
  // or completed, and rollout.wave_stalled once per wave for a running
  // rollout whose current wave is past its wave timeout and did not advance.
  Result<RolloutPass> Evaluate(const FleetState& state);

  // The devices (ids) of the rollouts started or changed (by a command or an
  // evaluation) at or after `since` (unix seconds).
  Result<std::vector<std::string>> MembersChangedSince(int64_t since);

  // The limit of the newest rollout of each app, over `state`.
  Result<std::unique_ptr<RolloutLimits>> Limits(const FleetState& state);

  // Who the audit log names for start, pause, resume and abort (in their
  // transactions); LocalActor() until set.
  void set_actor(std::string actor) { actor_ = std::move(actor); }

 private:
  RolloutStore(std::unique_ptr<SqlEngine> db, const Clock& clock)
      : db_(std::move(db)), clock_(clock), actor_(LocalActor()) {}
  int64_t NowSeconds() const;
  // Newest first; `limit` 0: every one.
  Result<std::vector<Rollout>> LoadRollouts(const std::string& where,
                                            std::initializer_list<SqlValue> params,
                                            size_t limit = 0);
  Result<std::vector<RolloutMember>> LoadMembers(int64_t id);
  // Unavailable when the stored state is no longer `expected` (a concurrent change).
  Status SaveRollout(const Rollout& r, RolloutState expected);
  Status SaveMembers(int64_t id, const std::vector<RolloutMember>& members);
  Result<RolloutView> ChangeState(int64_t id, std::string_view verb);
  // Appends `event` about `r` (as the evaluation left it) to the outbox.
  Status Notify(std::string_view event, const Rollout& r, const RolloutStep& step, int64_t now);

  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  std::string actor_;
};

// The webhook events of rollouts (docs/fleet.md, "Notifications").
inline constexpr std::string_view kRolloutHalted = "rollout.halted";
inline constexpr std::string_view kRolloutCompleted = "rollout.completed";
inline constexpr std::string_view kRolloutWaveStalled = "rollout.wave_stalled";

// The JSON body of a rollout event, as every delivery of it sends it: its
// id, name and time (UTC), the rollout as `event` left it, and the counts of
// its current wave.
std::string RolloutEventBody(std::string_view event, std::string_view event_id,
                             const Rollout& rollout, const WaveCounts& wave, int64_t at);

// The devices a rollout of `app` over `group` ("" the fleet) covers that run
// the app, by name.
std::vector<FleetDevice> RolloutDevices(const FleetState& state, const std::string& app,
                                        const std::string& group);

}  // namespace flotilla::tracker
