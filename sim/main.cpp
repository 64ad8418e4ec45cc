#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/version.h"
#include "sim/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "flotilla-sim: a virtual fleet of real flotilla-node processes in network namespaces\n"
      "behind shaped links (rate, delay, loss, NAT), for measuring releases before they ship\n"
      "and for end-to-end tests."};
  app.set_version_flag("--version", std::string("flotilla-sim ") + flotilla::kVersion);
  app.require_subcommand(0, 1);
  std::vector<flotilla::sim::CommandAction> groups = {flotilla::sim::RegisterTopoCommands(app),
                                                      flotilla::sim::RegisterProbeCommands(app),
                                                      flotilla::sim::RegisterRunCommands(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  for (auto& run : groups) {
    if (int rc = run(); rc >= 0) return rc;
  }
  return 1;
}
