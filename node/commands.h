// Registration of flotilla-node's subcommand groups. Each group lives in its
// own file beside the module it drives, so that cli.cpp stays a thin list.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace flotilla::node {

// A subcommand group adds its subcommands to `app` and returns the action to
// run when one of them was chosen (checked in order after parsing).
using CommandAction = std::function<int()>;

// `flotilla-node tuf ...`: the TUF client (docs/tuf-client.md).
CommandAction RegisterTufCommands(CLI::App& app);
// `flotilla-node store ...`: the layer store (docs/layerstore.md).
CommandAction RegisterStoreCommands(CLI::App& app);
// `flotilla-node app ...`: the container runtime, driven directly (docs/runtime.md).
CommandAction RegisterAppCommands(CLI::App& app);
// `flotilla-node run --config FILE`: the daemon (docs/node.md).
CommandAction RegisterRunCommand(CLI::App& app);

}  // namespace flotilla::node
