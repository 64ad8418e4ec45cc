#include "sim/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "flotilla-sim: a virtual fleet of real flotilla-node processes in network namespaces\n"
      "behind shaped links (rate, delay, loss, NAT), for measuring releases before they ship\n"
      "and for end-to-end tests."};
  std::vector<flotilla::CommandAction> groups = {flotilla::sim::RegisterTopoCommands(app),
                                                 flotilla::sim::RegisterProbeCommands(app),
                                                 flotilla::sim::RegisterRunCommands(app)};
  return flotilla::RunCommandGroups(app, "flotilla-sim", groups, argc, argv);
}
