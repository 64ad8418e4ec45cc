#include "tracker/cli/cli.h"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>

#include "core/canonical_json.h"
#include "core/ed25519.h"
#include "core/file_io.h"
#include "tracker/cli/commands.h"

namespace flotilla::tracker {
namespace {

// Writes NAME (the 32-byte seed, mode 0600) and NAME.pub (hex public key).
int Keygen(const std::string& out, bool json) {
  auto parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) {
    if (Status st = CreateDirectories(parent.string(), 0700); !st.ok()) {
      fmt::print(stderr, "keygen: {}\n", st.ToString());
      return 1;
    }
  }
  auto key = Ed25519PrivateKey::Generate();
  if (Status st = key.SaveFile(out); !st.ok()) {
    fmt::print(stderr, "keygen: {}\n", st.ToString());
    return 1;
  }
  const std::string pub = key.public_key().Hex();
  if (Status st = WriteFileAtomic(out + ".pub", pub + "\n", 0644); !st.ok()) {
    fmt::print(stderr, "keygen: {}\n", st.ToString());
    return 1;
  }
  if (json) {
    fmt::print(
        "{}\n",
        Json{{"private_key_file", out}, {"public_key_file", out + ".pub"}, {"public_key", pub}}
            .dump());
    return 0;
  }
  fmt::print("wrote private key {} (mode 0600) and public key {}.pub\npublic key: {}\n", out, out,
             pub);
  return 0;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "flotilla-tracker: signs releases, computes deltas, is the BitTorrent tracker and HTTP\n"
      "origin for a fleet of devices, collects their reports and serves a fleet dashboard."};
  std::string keygen_out;
  bool keygen_json = false;
  auto* keygen =
      app.add_subcommand("keygen",
                         "Generate an Ed25519 signing key: OUT holds the 32-byte seed (mode 0600), "
                         "OUT.pub its public key in hex. Never overwrites an existing key.");
  keygen->add_option("out", keygen_out, "Path of the private key file to create")->required();
  keygen->add_flag("--json", keygen_json, "Print one JSON document instead of text");

  std::vector<CommandAction> groups = {
      [&] { return *keygen ? Keygen(keygen_out, keygen_json) : -1; },
      RegisterImageCommands(app),
      RegisterServeCommands(app),
      RegisterReleaseCommands(app),
      RegisterSigningCommands(app),
      RegisterDeltaCommands(app),
      RegisterBackupCommands(app),
      RegisterFleetCommands(app),
      RegisterIdentityCommands(app),
      RegisterFloorCommands(app),
      RegisterConfigCommands(app),
      RegisterSecretCommands(app),
      RegisterRolloutCommands(app),
      RegisterWebhookCommands(app),
      RegisterOperatorCommands(app),
      RegisterLogsCommands(app),
      RegisterBundleCommands(app)};
  return RunCommandGroups(app, "flotilla-tracker", groups, argc, argv);
}

CLI::App* AddDatabaseCommand(CLI::App* parent, const std::string& name, const std::string& summary,
                             const std::string& details, const std::string& footnote) {
  CLI::App* cmd = parent->add_subcommand(name, summary);
  std::string footer =
      "\n" + details + "\nDatabase: --repository DIR, --database-url URL or --config FILE.";
  if (!footnote.empty()) footer += "\n" + footnote;
  cmd->footer(footer);
  return cmd;
}

}  // namespace flotilla::tracker
