#include "tracker/commands.h"

namespace flotilla::tracker {

// No subcommands in this group yet; the layer store issue adds them here.
CommandAction RegisterImageCommands(CLI::App&) {
  return [] { return -1; };
}

}  // namespace flotilla::tracker
