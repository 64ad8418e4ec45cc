// Registration of flotilla-tracker's subcommand groups, one file per group.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace flotilla::tracker {

// A group adds its subcommands to `app` and returns the action to run after
// parsing; the action returns -1 when none of its subcommands was chosen.
using CommandAction = std::function<int()>;

// `flotilla-tracker image ...`: import and inspect images (docs/layerstore.md).
CommandAction RegisterImageCommands(CLI::App& app);

// `flotilla-tracker serve` and `flotilla-tracker artifact add` (docs/tracker.md).
CommandAction RegisterServeCommands(CLI::App& app);

CommandAction RegisterReleaseCommands(CLI::App& app);

// `flotilla-tracker delta create` (docs/delta.md).
CommandAction RegisterDeltaCommands(CLI::App& app);

}  // namespace flotilla::tracker
