// Rollouts in `serve` (docs/fleet.md, "Rollouts"): the evaluation of the
// running rollouts, with the re-signing of the fleet documents of the devices
// whose limit changed, as one of the signing duties (only the replica holding
// the signing lease runs it: tracker/service/signing_duty.h).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/publish/metadata_refresher.h"

namespace flotilla::tracker {

// Re-signs the fleet documents of `device_ids` with the rollouts' limits;
// nullopt (nothing signed) when `repository` is "" or has no fleet root yet
// (`fleet init` was not run): nothing is published to devices then.
Result<std::optional<FleetPublishOutcome>> ResignDevices(const std::string& repository,
                                                         FleetStore& fleet, RolloutStore& rollouts,
                                                         const std::set<std::string>& device_ids,
                                                         const Clock& clock);

struct RolloutRound {
  RolloutPass pass;
  std::optional<FleetPublishOutcome> published;  // nullopt: no fleet root
};

// One evaluation (RolloutStore::Evaluate) and the re-signing of the devices
// it released, or of every device when `resign_all` (the first round of a
// signing replica: a round cut short between the evaluation's commit and the
// re-signing is made good; documents that did not change are not re-signed),
// and of the devices of rollouts changed at or after `changed_since` (unix
// seconds; a command that could not re-sign them, e.g. given only
// --database-url).
Result<RolloutRound> RunRolloutRound(const std::string& repository, FleetStore& fleet,
                                     RolloutStore& rollouts, const Clock& clock,
                                     bool resign_all = false,
                                     std::optional<int64_t> changed_since = std::nullopt);

// A rollout round every `interval`, as a duty of the replica holding the
// signing lease (SigningDuty::SetHolderDuty: outside the signing turn, whose
// transaction would hold SQLite's write lock). Errors are logged and the
// round is tried again after `interval`; they are never returned.
//
// Each round also looks at the image repository's release floors (read again
// only when its timestamp.json changed): when one was raised, or there are
// floors the first time it looks, every device's document is computed again
// and those that changed re-signed, so a device pinned, or held by a
// rollout, below a floor that `accept` just raised is sent the floor without
// a `fleet publish` (docs/fleet.md, "The release floor").
class RolloutDuty final : public MetadataRefresher {
 public:
  RolloutDuty(std::string database_url, std::string repository, Duration interval,
              const Clock& clock)
      : database_url_(std::move(database_url)),
        repository_(std::move(repository)),
        interval_(interval),
        clock_(clock) {}

  Result<Duration> Refresh(WallTime now) override;

 private:
  Status Round();
  // Whether the floors differ from those of the last look (the first look:
  // whether there are any).
  Result<bool> FloorsMoved();

  const std::string database_url_;
  const std::string repository_;
  const Duration interval_;
  const Clock& clock_;
  std::unique_ptr<FleetStore> fleet_;  // opened on the duty's thread
  std::unique_ptr<RolloutStore> rollouts_;
  // Unix seconds when the last good round began; 0 before the first, which
  // so re-signs the devices of every rollout (a round cut short between its
  // commit and the re-signing is made good).
  int64_t last_round_ = 0;
  // The image repository's timestamp.json (device, inode, size, mtime) and
  // the floors read with it.
  std::optional<std::tuple<uint64_t, uint64_t, int64_t, int64_t>> seen_timestamp_;
  std::optional<std::map<std::string, uint64_t>> floors_;
};

}  // namespace flotilla::tracker
