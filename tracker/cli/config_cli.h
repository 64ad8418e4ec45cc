// What `config` and `secret` share (config_commands.cpp,
// secret_commands.cpp): the level flags, the state both open, and the
// scope's devices.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "metadata/tuf_types.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"

namespace flotilla::tracker {

struct ConfigFlags {
  DatabaseFlags where;
  std::string app;
  bool fleet = false;
  std::string group;
  std::string site;
  std::string device;
  std::vector<std::string> items;  // NAME=VALUE (set) or NAME (unset)
  bool no_publish = false;
  bool json = false;
};

// The level and scope the flags name.
Result<ConfigChange> ChangeOf(const ConfigFlags& f);

// The database, the fleet model and the image repository's targets.
struct OpenedFleet {
  std::string repository;
  std::unique_ptr<FleetStore> store;
  std::unique_ptr<RolloutStore> rollouts;
  FleetState state;
  std::unique_ptr<RolloutLimits> limits;
  ReleaseFloors floors;
  metadata::TargetsMetadata image_targets;
};
Result<OpenedFleet> OpenFleet(const ConfigFlags& f);

// --repository, --database-url, --config, --json.
void AddWhere(CLI::App* cmd, ConfigFlags& f);
// --app, --fleet, --group, --site, --device, --no-publish.
void AddLevel(CLI::App* cmd, ConfigFlags& f);

}  // namespace flotilla::tracker
