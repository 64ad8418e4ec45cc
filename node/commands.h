// Registration of flotilla-node's subcommand groups. Each group lives in its
// own file beside the module it drives, so that main.cpp stays a thin list.
#pragma once

#include "core/command_groups.h"

namespace flotilla::node {

// `flotilla-node tuf ...`: the TUF client (docs/tuf-client.md).
CommandAction RegisterTufCommands(CLI::App& app);
// `flotilla-node store ...`: the layer store (docs/layerstore.md).
CommandAction RegisterStoreCommands(CLI::App& app);
// `flotilla-node app ...`: the container runtime, driven directly (docs/runtime.md).
CommandAction RegisterAppCommands(CLI::App& app);
// `flotilla-node run --config FILE`: the daemon (docs/node.md).
CommandAction RegisterRunCommand(CLI::App& app);
// `flotilla-node import --config FILE BUNDLE`: an offline bundle (docs/bundle.md).
CommandAction RegisterImportCommand(CLI::App& app);
// `flotilla-node agent ...`: the agent updating itself (docs/agent-update.md).
CommandAction RegisterAgentCommands(CLI::App& app);

}  // namespace flotilla::node
