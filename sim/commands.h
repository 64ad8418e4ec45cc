// Registration of flotilla-sim's subcommand groups, one file per group.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace flotilla::sim {

// A group adds its subcommands to `app` and returns the action to run after
// parsing; the action returns -1 when none of its subcommands was chosen.
using CommandAction = std::function<int()>;

// `topo up|hold|down|ls`, `clean`, `scenario check`.
CommandAction RegisterTopoCommands(CLI::App& app);

// `probe udp-sink|udp-send|tcp-sink|tcp-send`: measuring tools for link tests.
CommandAction RegisterProbeCommands(CLI::App& app);

// `run SCENARIO` and `plot REPORT...`: scenario runs with the real binaries.
CommandAction RegisterRunCommands(CLI::App& app);

}  // namespace flotilla::sim
