// `flotilla-node status|apps|logs|update|rollback`: the clients of the
// daemon's control API (docs/node.md, "Control API").
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "core/status.h"

namespace flotilla::node {

// The control socket a node configuration file names (`--config FILE`); the
// daemon's configuration format is not this module's to read.
using SocketOfConfig = std::function<Result<std::string>(const std::string& config_path)>;

// Adds the subcommands to `app`; the returned action runs the chosen one and
// returns its exit code (0 ok, 1 error, 2 usage), or -1 when none was chosen.
std::function<int()> RegisterControlCommands(CLI::App& app, SocketOfConfig socket_of_config);

}  // namespace flotilla::node
