// The release floor of an app (docs/signing.md, "The release floor"): the
// lowest release of the app a device may be sent by the fleet. It is a target
// of the image repository in the app's namespace, apps/<app>/floor.json,
// signed by the keys that sign the app's releases: the app's delegated role
// apps/<app> when the app has an app key, else the top-level targets. The
// online keys (snapshot, timestamp, the fleet's) can neither raise nor lower
// it. Its `custom`, which a node reads from its verified metadata without
// downloading the file, is
//
//   {"floor": {"app": "kiosk", "floor": 3, "format": 1}}
//
// and the file's bytes are the canonical JSON of the inner object. A target
// without custom "flotilla" is not a release, so nodes running 0.1.0 pass
// over it. When both the top-level targets and the app's role list a floor,
// the higher one holds. A floor only goes up: the writers here and `accept`
// refuse a version that lowers or removes one.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "metadata/repository.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

class TufClient;

// The newest floor format this code reads; a newer one is refused.
inline constexpr uint64_t kFloorFormat = 1;

struct ReleaseFloor {
  std::string app;
  uint64_t floor = 0;  // the lowest release a device may be sent (>= 1)
};

// "apps/<app>/floor.json".
std::string FloorTargetName(const std::string& app);
// Whether `name` has the form of a floor target (apps/<something>/floor.json).
bool IsFloorTargetName(std::string_view name);

// The target's `custom` for `floor`, and the file's bytes.
Json FloorToJson(const ReleaseFloor& floor);
Result<std::string> FloorFileBytes(const ReleaseFloor& floor);
// Parses a floor target's `custom`: app a valid app name, floor >= 1,
// format (1 when absent) at most kFloorFormat; members this code does not
// know are ignored (a newer writer's additions within a format).
Result<ReleaseFloor> ParseFloor(const Json& custom);

// The floors `targets` lists, app -> floor. A floor target that does not
// parse or whose name is not its app's floor target name is an error.
Result<std::map<std::string, uint64_t>> FloorsOf(const TargetsMetadata& targets);

// Refuses `next` (a version of the same role as `current`, which may be
// null) when it lowers or removes a floor `current` lists, or lists one that
// does not parse.
Status CheckFloorsMonotonic(const TargetsMetadata* current, const TargetsMetadata& next);

// The floor of each app in `repo` (the tracker's view): the higher of the
// top-level targets' floor and the app role's. Apps without one are absent.
Result<std::map<std::string, uint64_t>> SignedFloors(const Repository& repo);

// REQUIRES: a successful Refresh(). The floor of `app` in the client's
// verified metadata, 0 when none is signed: the higher of the top-level
// targets' apps/<app>/floor.json and that of the role apps/<app> when the
// top-level delegates the floor's name to it. An error when a floor does not
// parse or the app's role cannot be loaded.
Result<uint64_t> TrustedFloor(TufClient& client, const std::string& app);

// Where a floor for `app` is signed: its role when the top-level targets
// delegates apps/<app>, else "targets".
std::string FloorRoleOf(const Repository& repo, const std::string& app);

// The checks of a raise: `floor.floor` is above the app's current floor and
// a release of that version is signed in `repo`.
Status CheckFloorRaise(const Repository& repo, const ReleaseFloor& floor);

// FloorRoleOf(app)'s next version with the floor set (every other target as
// it is), unsigned, after CheckFloorRaise.
Result<SignedDocument> StageFloor(Repository& repo, const ReleaseFloor& floor, Duration expiry);

// With the top-level targets key online (an app without an app role): adds
// the floor to the top-level targets and publishes targets, snapshot and
// timestamp, after CheckFloorRaise.
Status PublishFloor(Repository& repo, const ReleaseFloor& floor, const KeyRing& signers);

}  // namespace flotilla::metadata
