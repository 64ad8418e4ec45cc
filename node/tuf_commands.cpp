// `flotilla-node tuf ...`: the TUF client, with the command line of the TUF
// conformance suite's client-under-test protocol (docs/tuf-client.md):
//   tuf --metadata-dir D init ROOT
//   tuf --metadata-dir D --metadata-url U refresh
//   tuf --metadata-dir D --metadata-url U --target-name T --target-base-url B
//       --target-dir O download
//   tuf --metadata-dir D sign IN --key KEY_FILE [--public-key HEX] --out OUT
//       (offline signing of an exported document, e.g. a staged root; D unused)
// Exit status 0 on success, 1 on any failure (with the reason on stderr).
#include <fmt/core.h>

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/file_io.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"
#include "node/commands.h"
#include "node/daemon/tuf_metadata_source.h"

namespace flotilla::node {
namespace {

struct TufOptions {
  std::string metadata_dir;
  std::string metadata_url;
  std::string target_name;
  std::string target_base_url;
  std::string target_dir;
  std::string trusted_root;
  std::string sign_input;
  std::string sign_key;
  std::string sign_public_key;
  std::string sign_output;
};

int TufFail(std::string_view verb, const Status& status) {
  fmt::print(stderr, "tuf {}: {}\n", verb, status.ToString());
  return 1;
}

int RunInit(const TufOptions& o) {
  auto root = ReadTextFileBounded(o.trusted_root, metadata::ClientLimits{}.max_root_bytes);
  if (!root.ok()) return TufFail("init", root.status());
  Status st = metadata::TufClient::Initialize(o.metadata_dir, *root);
  if (!st.ok()) return TufFail("init", st);
  fmt::print("tuf init: trusted root installed in {}\n", o.metadata_dir);
  return 0;
}

Result<std::unique_ptr<metadata::TufClient>> RefreshedClient(const TufOptions& o,
                                                             HttpRemote& remote) {
  if (o.metadata_url.empty()) return InvalidArgument("--metadata-url is required");
  ASSIGN_OR_RETURN(auto client,
                   metadata::TufClient::Open(o.metadata_dir, remote, SystemClock::Instance()));
  RETURN_IF_ERROR(client->Refresh());
  return client;
}

int RunRefresh(const TufOptions& o) {
  HttpRemote remote(o.metadata_url, o.target_base_url);
  auto client = RefreshedClient(o, remote);
  if (!client.ok()) return TufFail("refresh", client.status());
  fmt::print("tuf refresh: root v{}, timestamp v{}, snapshot v{}, targets v{}\n",
             (*client)->root().common.version, (*client)->timestamp()->common.version,
             (*client)->snapshot()->common.version, (*client)->targets()->common.version);
  return 0;
}

int RunDownload(const TufOptions& o) {
  if (o.target_name.empty() || o.target_dir.empty() || o.target_base_url.empty()) {
    return TufFail(
        "download",
        InvalidArgument("--target-name, --target-base-url and --target-dir are required"));
  }
  HttpRemote remote(o.metadata_url, o.target_base_url);
  auto client = RefreshedClient(o, remote);
  if (!client.ok()) return TufFail("download", client.status());
  auto info = (*client)->GetTargetInfo(o.target_name);
  if (!info.ok()) return TufFail("download", info.status());
  auto got = (*client)->DownloadTarget(*info, o.target_dir);
  if (!got.ok()) return TufFail("download", got.status());
  fmt::print("tuf download: {} {}\n", got->fetched ? "fetched" : "already present", got->path);
  return 0;
}

int RunSign(const TufOptions& o) {
  std::optional<Ed25519PublicKey> expected;
  if (!o.sign_public_key.empty()) {
    auto key = Ed25519PublicKey::FromHex(o.sign_public_key);
    if (!key.ok()) return TufFail("sign", key.status());
    expected = *key;
  }
  Status st = metadata::SignMetadataFile(o.sign_input, o.sign_key, expected, o.sign_output);
  if (!st.ok()) return TufFail("sign", st);
  fmt::print("tuf sign: wrote {}\n", o.sign_output);
  return 0;
}

}  // namespace

CommandAction RegisterTufCommands(CLI::App& app) {
  auto options = std::make_shared<TufOptions>();
  auto* tuf = app.add_subcommand(
      "tuf", "TUF client: verify signed release metadata (TUF conformance client protocol)");
  tuf->fallthrough();
  tuf->require_subcommand(1);
  tuf->add_option("--metadata-dir", options->metadata_dir,
                  "Trusted metadata directory (required by init, refresh, download)");
  tuf->add_option("--metadata-url", options->metadata_url, "Base URL of the repository metadata");
  tuf->add_option("--target-name", options->target_name, "TUF target path to download");
  tuf->add_option("--target-base-url", options->target_base_url, "Base URL of the targets");
  tuf->add_option("--target-dir", options->target_dir, "Where verified targets are stored");
  auto* init = tuf->add_subcommand("init", "Install ROOT as the trusted root (no network)");
  init->add_option("root", options->trusted_root, "Initial trusted root.json")->required();
  auto* refresh = tuf->add_subcommand("refresh", "Update metadata by the TUF client workflow");
  auto* download = tuf->add_subcommand("download", "Refresh, then download and verify one target");
  auto* sign = tuf->add_subcommand(
      "sign", "Add the signature of KEY_FILE to the metadata document IN (offline root signing)");
  sign->add_option("input", options->sign_input, "Document to sign")->required();
  sign->add_option("--key", options->sign_key, "Private key file (32-byte seed, mode 0600)")
      ->required();
  sign->add_option("--public-key", options->sign_public_key,
                   "Hex public key the key file must hold (refused otherwise)");
  sign->add_option("--out", options->sign_output, "Where to write the signed document")->required();
  return [=] {
    if (!*tuf) return -1;
    if (!*sign && options->metadata_dir.empty()) {
      return TufFail("", InvalidArgument("--metadata-dir is required"));
    }
    if (*init) return RunInit(*options);
    if (*refresh) return RunRefresh(*options);
    if (*download) return RunDownload(*options);
    if (*sign) return RunSign(*options);
    return 1;
  };
}

}  // namespace flotilla::node
