// Registration of flotilla-sim's subcommand groups, one file per group.
#pragma once

#include <string_view>

#include "core/command_groups.h"
#include "core/status.h"

namespace flotilla::sim {

// `topo up|hold|down|ls`, `clean`, `scenario check`.
CommandAction RegisterTopoCommands(CLI::App& app);

// `probe udp-sink|udp-send|tcp-sink|tcp-send`: measuring tools for link tests.
CommandAction RegisterProbeCommands(CLI::App& app);

// `run SCENARIO` and `plot REPORT...`: scenario runs with the real binaries.
CommandAction RegisterRunCommands(CLI::App& app);

// Prints "flotilla-sim WHAT: STATUS" on stderr and returns 1, the exit code.
int SimFail(std::string_view what, const Status& status);

}  // namespace flotilla::sim
