// What the fleet and rollout commands share (fleet_commands.cpp,
// rollout_commands.cpp): where the tracker's database and repository are,
// and how a command fails.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "tracker/fleet/desired.h"

namespace flotilla::tracker {

// --config, --repository, --database-url as given ("" when not).
struct DatabaseFlags {
  std::string config_file;
  std::string repository;
  std::string database_url;
};

// The database the fleet commands use (docs/fleet.md, "Commands"): a SQLite
// file must exist already.
Result<std::string> FleetDatabaseUrl(const DatabaseFlags& flags);
// The tracker repository: --repository, else the configuration's.
Result<std::string> FleetRepositoryDir(const DatabaseFlags& flags);
// The release floors the image repository in `repository` signs
// (metadata::SignedFloors; floor_commands.cpp).
Result<ReleaseFloors> RepositoryFloors(const std::string& repository);
// Prints "COMMAND: message" on stderr; returns 2 for bad input, else 1.
int FailCommand(std::string_view command, const Status& status);

}  // namespace flotilla::tracker
