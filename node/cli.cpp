#include "node/cli.h"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/digest.h"
#include "core/version.h"
#include "node/commands.h"
#include "node/control/control_commands.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {
namespace {

Result<std::string> ControlSocketOf(const std::string& config_path) {
  ASSIGN_OR_RETURN(NodeConfig config, LoadNodeConfig(config_path));
  return config.control_socket;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "flotilla-node: the device daemon. Follows signed releases of its apps, fetches them\n"
      "from LAN neighbours and the tracker, verifies every byte, and runs the apps in its\n"
      "built-in container runtime with health checks and rollback."};
  app.set_version_flag("--version", std::string("flotilla-node ") + kVersion);
  app.require_subcommand(0, 1);

  std::vector<std::string> files;
  auto* digest = app.add_subcommand(
      "digest", "Print the sha256:<hex> digest of each FILE, as layers and artifacts are named");
  digest->add_option("files", files, "Files to hash")->required()->check(CLI::ExistingFile);

  // Each action returns -1 when none of its group's subcommands was chosen.
  std::vector<CommandAction> groups = {RegisterTufCommands(app), RegisterStoreCommands(app),
                                       RegisterAppCommands(app), RegisterRunCommand(app),
                                       RegisterControlCommands(app, ControlSocketOf)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  if (*digest) {
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
  for (auto& run : groups) {
    if (int rc = run(); rc >= 0) return rc;
  }
  return 1;
}

}  // namespace flotilla::node
