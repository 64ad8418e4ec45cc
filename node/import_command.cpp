// `flotilla-node import --config FILE BUNDLE`: an offline bundle into a
// stopped node (docs/bundle.md). Exit status 0 when the release is imported,
// 1 with the reason on stderr when the bundle is refused (nothing imported).
#include <fmt/core.h>

#include <memory>
#include <string>

#include "core/clock.h"
#include "node/bundle_import.h"
#include "node/commands.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {

CommandAction RegisterImportCommand(CLI::App& app) {
  auto config_path = std::make_shared<std::string>();
  auto bundle_path = std::make_shared<std::string>();
  auto* import = app.add_subcommand(
      "import",
      "Import an offline bundle (`flotilla-tracker bundle`) into this stopped node: its "
      "metadata is verified against the node's trusted metadata (no rollback, no expired "
      "metadata), its artifacts against the signed release, then the layers are rebuilt into "
      "the store. The next `run` deploys the release with no tracker reachable "
      "(docs/bundle.md). Stop the daemon first: the import takes the data directory's lock.");
  import->add_option("--config", *config_path, "the node's configuration file (docs/node.md)")
      ->required();
  import->add_option("BUNDLE", *bundle_path, "the bundle file")->required();
  return [=]() -> int {
    if (!*import) return -1;
    auto config = LoadNodeConfig(*config_path);
    if (!config.ok()) {
      fmt::print(stderr, "import: {}\n", config.status().ToString());
      return 1;
    }
    auto progress = [](const std::string& line) { fmt::print(stderr, "import: {}\n", line); };
    auto imported = ImportBundle(*config, *bundle_path, SystemClock::Instance(), progress);
    if (!imported.ok()) {
      fmt::print(stderr, "import: refused {}: {}\n", *bundle_path, imported.status().ToString());
      return 1;
    }
    fmt::print(
        "imported {} release {}: {} layer(s) rebuilt from {} byte(s); start the node to "
        "deploy it\n",
        imported->app, imported->version, imported->layers_rebuilt, imported->artifact_bytes);
    return 0;
  };
}

}  // namespace flotilla::node
