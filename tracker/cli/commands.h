// Registration of flotilla-tracker's subcommand groups, one file per group.
#pragma once

#include <string>

#include "core/command_groups.h"

namespace flotilla::tracker {

// `flotilla-tracker image ...`: import and inspect images (docs/layerstore.md).
CommandAction RegisterImageCommands(CLI::App& app);

// `flotilla-tracker serve` and `flotilla-tracker artifact add` (docs/tracker.md).
CommandAction RegisterServeCommands(CLI::App& app);

CommandAction RegisterReleaseCommands(CLI::App& app);

// `flotilla-tracker sign`, `stage-app`, `accept` (docs/signing.md).
CommandAction RegisterSigningCommands(CLI::App& app);

// `flotilla-tracker delta create` (docs/delta.md).
CommandAction RegisterDeltaCommands(CLI::App& app);

// `flotilla-tracker backup` and `restore` (docs/tracker.md, "Backup and restore").
CommandAction RegisterBackupCommands(CLI::App& app);

// `flotilla-tracker device`, `group`, `app`, `pin`, `unpin`, `recall`, `fleet` (docs/fleet.md).
CommandAction RegisterFleetCommands(CLI::App& app);

// `flotilla-tracker floor`: the release floor (docs/signing.md, "The release floor").
CommandAction RegisterFloorCommands(CLI::App& app);

// `flotilla-tracker rollout start|status|pause|resume|abort` (docs/fleet.md, "Rollouts").
CommandAction RegisterRolloutCommands(CLI::App& app);

// `flotilla-tracker webhook status` (docs/fleet.md, "Notifications").
CommandAction RegisterWebhookCommands(CLI::App& app);

// `flotilla-tracker token create|list|revoke` and `device approve`
// (docs/identity.md); after RegisterFleetCommands, whose `device` it joins.
CommandAction RegisterIdentityCommands(CLI::App& app);

// `flotilla-tracker operator ...` and `audit list` (docs/operators.md).
CommandAction RegisterOperatorCommands(CLI::App& app);
// `flotilla-tracker config set|unset|show`: per-device configuration (docs/config.md).
CommandAction RegisterConfigCommands(CLI::App& app);
// `flotilla-tracker secret set|unset|show`: secrets sealed per device (docs/config.md).
CommandAction RegisterSecretCommands(CLI::App& app);

// `flotilla-tracker logs DEVICE APP`: an app's log from a device (docs/logs.md).
CommandAction RegisterLogsCommands(CLI::App& app);

// `flotilla-tracker bundle`: an offline bundle (docs/bundle.md).
CommandAction RegisterBundleCommands(CLI::App& app);

// Adds to `parent` a subcommand that works on the tracker's database: its help
// ends with `details`, how the database is named, and `footnote` if any.
CLI::App* AddDatabaseCommand(CLI::App* parent, const std::string& name, const std::string& summary,
                             const std::string& details, const std::string& footnote = "");

}  // namespace flotilla::tracker
