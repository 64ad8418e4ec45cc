// What every flotilla program's main does: subcommand groups register on one
// CLI::App, one of them runs.
//
//   CLI::App app{"flotilla-sim: ..."};
//   std::vector<CommandAction> groups = {RegisterTopoCommands(app), ...};
//   return RunCommandGroups(app, "flotilla-sim", groups, argc, argv);
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string_view>
#include <vector>

namespace flotilla {

// A subcommand group adds its subcommands to the app and returns the action to
// run after parsing; the action returns -1 when none of its subcommands was
// chosen.
using CommandAction = std::function<int()>;

// Adds --version ("PROGRAM VERSION") and at most one subcommand to `app`,
// parses the command line and runs the first group whose subcommand was
// chosen. Returns its exit code; CLI11's for a parse error, --help or
// --version; 2, with the help on stderr, when no subcommand was given.
int RunCommandGroups(CLI::App& app, std::string_view program,
                     const std::vector<CommandAction>& groups, int argc, char** argv);

}  // namespace flotilla
