#include <fmt/core.h>

#include <cstdio>

#include "sim/commands.h"

namespace flotilla::sim {

int SimFail(std::string_view what, const Status& status) {
  fmt::print(stderr, "flotilla-sim {}: {}\n", what, status.ToString());
  return 1;
}

}  // namespace flotilla::sim

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
