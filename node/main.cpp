// flotilla-node-full: every command of flotilla-node (front_main.cpp execs
// into it all but `app`).
#include <fmt/core.h>

#include <CLI/CLI.hpp>

#include "core/digest.h"
#include "node/commands.h"
#include "node/control/control_commands.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {
namespace {

Result<std::string> ControlSocketOf(const std::string& config_path) {
  ASSIGN_OR_RETURN(NodeConfig config, LoadNodeConfig(config_path));
  return config.control_socket;
}

// Prints "sha256:<hex>  FILE" for each file; 1 when one could not be read.
int PrintDigests(const std::vector<std::string>& files) {
  int rc = 0;
  for (const auto& f : files) {
    auto d = HashFile(f);
    if (!d.ok()) {
      fmt::print(stderr, "digest: {}\n", d.status().ToString());
      rc = 1;
      continue;
    }
    fmt::print("{}  {}\n", d->ToString(), f);
  }
  return rc;
}

}  // namespace
}  // namespace flotilla::node

int main(int argc, char** argv) {
  namespace node = flotilla::node;
  CLI::App app{
      "flotilla-node: the device daemon. Follows signed releases of its apps, fetches them\n"
      "from LAN neighbours and the tracker, verifies every byte, and runs the apps in its\n"
      "built-in container runtime with health checks and rollback."};

  std::vector<std::string> files;
  auto* digest = app.add_subcommand(
      "digest", "Print the sha256:<hex> digest of each FILE, as layers and artifacts are named");
  digest->add_option("files", files, "Files to hash")->required()->check(CLI::ExistingFile);

  std::vector<flotilla::CommandAction> groups = {
      [&] { return *digest ? node::PrintDigests(files) : -1; },
      node::RegisterTufCommands(app),
      node::RegisterStoreCommands(app),
      node::RegisterAppCommands(app),
      node::RegisterRunCommand(app),
      node::RegisterImportCommand(app),
      node::RegisterAgentCommands(app),
      node::RegisterControlCommands(app, node::ControlSocketOf)};
  return flotilla::RunCommandGroups(app, "flotilla-node", groups, argc, argv);
}
