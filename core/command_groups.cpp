#include "core/command_groups.h"

#include <cstdio>
#include <string>

#include "core/version.h"

namespace flotilla {

int RunCommandGroups(CLI::App& app, std::string_view program,
                     const std::vector<CommandAction>& groups, int argc, char** argv) {
  app.set_version_flag("--version", std::string(program) + " " + kVersion);
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  for (const CommandAction& run : groups) {
    if (int rc = run(); rc >= 0) return rc;
  }
  return 1;
}

}  // namespace flotilla
