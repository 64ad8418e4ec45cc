// The operator actions that both the commands (tracker/cli) and serve's
// operator API (docs/operators.md, "Operator API") run, so that a route
// does exactly what its command does: pin (above the release floor), unpin,
// recall, rollout start, pause, resume and abort. Each is audited by the
// store in the change's transaction, as the store's actor.
// Not thread-safe (its stores own one database connection each).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "tracker/fleet/desired.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"

namespace flotilla::tracker {

// FleetStore::Pin, refused (FailedPrecondition) below the app's floor.
Status PinAboveFloor(FleetStore& store, const ReleaseFloors& floors, const PinTarget& target,
                     const std::string& app, uint64_t release);

// The rollout `rollout start` and POST /api/v1/operator/rollouts start, from
// their text forms ("10%,100%", "30m", "5%", "1h"); InvalidArgument names
// the field (`flag_prefix` + "waves", "soak"...).
struct RolloutSpecText {
  std::string app;
  uint64_t release = 0;
  std::string group;
  std::string waves;
  std::string soak = "30m";
  std::string max_failures = "5%";
  std::string wave_timeout = "1h";
};
Result<RolloutSpec> MakeRolloutSpec(const RolloutSpecText& text, std::string_view flag_prefix);

// The form `rollout status --json` and /api/v1/fleet give a rollout.
Json RolloutViewJson(const RolloutView& view);

// The image repository's signed release floors ("" repository: none).
Result<ReleaseFloors> RepositoryReleaseFloors(const std::string& repository, const Clock& clock);

// Each device's desired release of each app it runs (nullopt: none), by device id.
using DesiredByDevice = std::map<std::string, std::map<std::string, std::optional<uint64_t>>>;

// serve's side of the operator API: the actions on its own connections.
// After a change, the fleet documents of the devices whose desired
// releases it changed are re-signed (ResignDevices), before Run returns.
class OperatorActions {
 public:
  static Result<std::unique_ptr<OperatorActions>> Open(const std::string& database_url,
                                                       std::string repository, const Clock& clock);
  // `action` is a role table name (pin, unpin, recall, rollout.start,
  // rollout.pause, rollout.resume, rollout.abort); `body` the request's
  // JSON (docs/operators.md); `rollout_id` for the changes of one rollout.
  // Returns what the command prints with --json, and "resigned": the
  // documents re-signed (absent without a fleet repository), or
  // "resign_error" when the change was made but its signing failed.
  // InvalidArgument for a bad body, else the store's error (nothing changed).
  Result<Json> Run(std::string_view action, const Json& body, const std::string& actor,
                   int64_t rollout_id);

 private:
  Result<Json> Change(std::string_view action, const Json& body, int64_t rollout_id);
  Result<DesiredByDevice> DesiredOfEveryDevice(const ReleaseFloors& floors);

  OperatorActions(std::unique_ptr<FleetStore> fleet, std::unique_ptr<RolloutStore> rollouts,
                  std::string repository, const Clock& clock)
      : fleet_(std::move(fleet)),
        rollouts_(std::move(rollouts)),
        repository_(std::move(repository)),
        clock_(clock) {}
  std::unique_ptr<FleetStore> fleet_;
  std::unique_ptr<RolloutStore> rollouts_;
  const std::string repository_;
  const Clock& clock_;
};

}  // namespace flotilla::tracker
