#include <CLI/CLI.hpp>

#include <iostream>

#include "core/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "flotilla-sim: a virtual fleet of real flotilla-node processes in network namespaces\n"
      "behind shaped links (rate, delay, loss, NAT), for measuring releases before they ship\n"
      "and for end-to-end tests."};
  app.set_version_flag("--version", std::string("flotilla-sim ") + flotilla::kVersion);
  CLI11_PARSE(app, argc, argv);
  std::cout << app.help();
  return 1;
}
