// `flotilla-node import --config FILE BUNDLE`: an offline bundle into the
// node (docs/bundle.md). On a stopped node the command imports it itself; on
// a running one it asks the daemon (control API `import`), prints the
// daemon's progress and ends with its verdict. Exit status 0 when the release
// is imported, 1 with the reason on stderr when the bundle is refused
// (nothing imported).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "core/clock.h"
#include "node/commands.h"
#include "node/control/control_protocol.h"
#include "node/control/control_server.h"
#include "node/daemon/bundle_import.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {
namespace {

using namespace std::chrono_literals;

int Refused(const std::string& bundle, const std::string& why) {
  fmt::print(stderr, "import: refused {}: {}\n", bundle, why);
  return 1;
}

int ImportStopped(const NodeConfig& config, const std::string& bundle) {
  auto progress = [](const ImportProgress& p) { fmt::print(stderr, "import: {}\n", p.line); };
  auto imported = ImportBundle(config, bundle, SystemClock::Instance(), progress);
  if (!imported.ok()) return Refused(bundle, imported.status().ToString());
  fmt::print(
      "imported {} release {}: {} layer(s) rebuilt from {} byte(s){}; start the node to "
      "deploy it\n",
      imported->app, imported->version, imported->layers_rebuilt, imported->artifact_bytes,
      imported->fleet
          ? fmt::format("; this device's fleet document v{} names it", imported->fleet_version)
          : std::string());
  return 0;
}

Result<NodeView> DaemonView(const std::string& socket) {
  ASSIGN_OR_RETURN(Json json, ControlRequest(socket, {{"op", "status"}}, 10s));
  return ViewFromJson(json);
}

// What the daemon does with the release it imported: a node a fleet
// document governs runs the release the document names (docs/bundle.md,
// "Into a fleet-managed node").
std::string WhatFollows(const NodeView& view) {
  // The import says when the bundle's fleet document for this device names the release.
  if (view.fleet.state == "local" ||
      view.import.message.find("fleet document v") != std::string::npos) {
    return "the node deploys it now";
  }
  return fmt::format(
      "a fleet document governs this node: it deploys release {} when the document names it",
      view.import.release);
}

// The daemon imports `bundle` (an absolute path); this prints each progress
// line it shows and its verdict.
int ImportRunning(const NodeConfig& config, const std::string& bundle) {
  const std::string& socket = config.control_socket;
  auto before = DaemonView(socket);
  if (!before.ok())
    return Refused(bundle, "the daemon does not answer: " + before.status().message());
  auto started = ControlRequest(socket, {{"op", "import"}, {"path", bundle}}, 10s);
  if (!started.ok()) return Refused(bundle, started.status().ToString());
  fmt::print(stderr, "import: the running daemon imports it\n");
  uint64_t printed = 0;  // progress lines printed
  for (;;) {
    auto view = DaemonView(socket);
    if (!view.ok())
      return Refused(bundle, "the daemon stopped answering: " + view.status().message());
    const ImportView& now = view->import;
    const bool ours = now.id > before->import.id && now.bundle == bundle;
    for (uint64_t i = std::max(printed, now.lines_dropped);
         ours && i < now.lines_dropped + now.lines.size(); ++i) {
      fmt::print(stderr, "import: {}\n", now.lines[i - now.lines_dropped]);
      printed = i + 1;
    }
    if (ours && now.finished_unix != 0) {
      if (now.step != "imported") {
        const Status refusal =
            StatusFromErrorResponse({{"error", now.message}, {"code", now.code}});
        return Refused(bundle, refusal.ToString());
      }
      fmt::print("{}; {}\n", now.message, WhatFollows(*view));
      return 0;
    }
    std::this_thread::sleep_for(200ms);
  }
}

}  // namespace

CommandAction RegisterImportCommand(CLI::App& app) {
  auto config_path = std::make_shared<std::string>();
  auto bundle_path = std::make_shared<std::string>();
  auto* import = app.add_subcommand(
      "import",
      "Import an offline bundle (`flotilla-tracker bundle`) into this node: its metadata is "
      "verified against the node's trusted metadata (no rollback, no expired metadata), its "
      "artifacts against the signed release, then the layers are rebuilt into the store. When "
      "the daemon runs, it does the import (its progress shows here and in `status`) and then "
      "deploys the release through its health-gated switch; on a stopped node the next `run` "
      "deploys it, with no tracker reachable (docs/bundle.md). Exit status 0: imported; 1: "
      "refused, nothing imported.");
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
    std::error_code ec;
    const std::string bundle = std::filesystem::absolute(*bundle_path, ec).lexically_normal();
    if (ec || !std::filesystem::is_regular_file(bundle)) {
      return Refused(*bundle_path, "not a file");
    }
    if (DaemonHoldsDataDir(DataLayout(config->data_dir))) return ImportRunning(*config, bundle);
    return ImportStopped(*config, bundle);
  };
}

}  // namespace flotilla::node
