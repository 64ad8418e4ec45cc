#include "node/commands.h"

namespace flotilla::node {

// No subcommands in this group yet; its issue adds them here.
CommandAction RegisterAppCommands(CLI::App&) {
  return [] { return -1; };
}

}  // namespace flotilla::node
