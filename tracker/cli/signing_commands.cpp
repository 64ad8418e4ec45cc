// `flotilla-tracker sign`, `stage-app` and `accept`: offline keys
// (docs/signing.md).
#include <fmt/core.h>

#include <memory>
#include <vector>

#include "core/file_io.h"
#include "metadata/repository.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"
#include "tracker/cli/commands.h"
#include "tracker/publish/offline.h"

namespace flotilla::tracker {
namespace {

struct SignFlags {
  std::string input;
  std::string key_file;
  std::string output;
};

// What the signer is about to vouch for: type, version, expiry, and for
// targets each target and delegation, for root each role's keys.
Status PrintSummary(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(path, 64 << 20));
  ASSIGN_OR_RETURN(auto doc, metadata::ParseSignedDocument(bytes, 64 << 20));
  if (metadata::CheckRoleType(doc.signed_json, metadata::RoleType::kRoot).ok()) {
    ASSIGN_OR_RETURN(auto root, metadata::ParseRoot(doc.signed_json).WithContext(path));
    fmt::print("{}: root version {}, expires {}, {} signature(s) so far\n", path,
               root.common.version, metadata::FormatTufTime(root.common.expires),
               doc.signatures.size());
    for (const auto& [role, keys] : root.roles) {
      fmt::print("  {}: {} key(s), threshold {}\n", metadata::RoleName(role), keys.keyids.size(),
                 keys.threshold);
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(auto targets, metadata::ParseTargets(doc.signed_json).WithContext(path));
  fmt::print("{}: targets version {}, expires {}, {} signature(s) so far\n", path,
             targets.common.version, metadata::FormatTufTime(targets.common.expires),
             doc.signatures.size());
  for (const auto& [name, target] : targets.targets) {
    fmt::print("  target {} ({} bytes)\n", metadata::PercentEncode(name), target.length);
  }
  if (targets.delegations) {
    for (const auto& role : targets.delegations->roles) {
      fmt::print("  delegates {} to {} key(s), threshold {}\n", metadata::PercentEncode(role.name),
                 role.keys.keyids.size(), role.keys.threshold);
    }
  }
  return Status::Ok();
}

int RunSign(const SignFlags& flags) {
  const std::string out = flags.output.empty() ? flags.input : flags.output;
  Status st = PrintSummary(flags.input);
  if (st.ok()) st = metadata::SignMetadataFile(flags.input, flags.key_file, std::nullopt, out);
  if (!st.ok()) {
    fmt::print(stderr, "sign: {}\n", st.ToString());
    return 1;
  }
  fmt::print("signed: {}\n", out);
  return 0;
}

struct StageAppFlags {
  StageAppRequest request;
  int expiry_days = 365;
};

int RunStageApp(StageAppFlags& flags) {
  flags.request.expiry = std::chrono::hours(24 * flags.expiry_days);
  auto path = StageApp(flags.request, SystemClock::Instance());
  if (!path.ok()) {
    fmt::print(stderr, "stage-app: {}\n", path.status().ToString());
    return 1;
  }
  fmt::print("staged {}\nsign it where the targets key lives:\n", *path);
  fmt::print("  flotilla-tracker sign {} --key targets.key\nthen on the tracker:\n", *path);
  fmt::print("  flotilla-tracker accept --repository {} {}\n", flags.request.repository, *path);
  return 0;
}

struct StageRootFlags {
  std::string repository;
  std::vector<std::string> rotate;  // ROLE=PUBLIC_KEY_FILE
};

int RunStageRoot(const StageRootFlags& flags) {
  StageRootRequest request{flags.repository, {}};
  for (const auto& item : flags.rotate) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      fmt::print(stderr, "stage-root: --rotate {}: expected ROLE=PUBLIC_KEY_FILE\n", item);
      return 2;
    }
    request.rotate[item.substr(0, eq)].push_back(item.substr(eq + 1));
  }
  auto path = StageRootRotation(request, SystemClock::Instance());
  if (!path.ok()) {
    fmt::print(stderr, "stage-root: {}\n", path.status().ToString());
    return 1;
  }
  fmt::print("staged {}\nsign it with the current and the new root keys where they live:\n", *path);
  fmt::print("  flotilla-tracker sign {} --key root.key\n", *path);
  fmt::print("put the new online keys in {}/keys, then:\n", flags.repository);
  fmt::print("  flotilla-tracker accept --repository {} {}\n", flags.repository, *path);
  return 0;
}

struct AcceptFlags {
  std::string repository;
  std::string file;
  std::string role;
};

int RunAccept(const AcceptFlags& flags) {
  auto outcome = AcceptSigned(flags.repository, flags.file, flags.role, SystemClock::Instance());
  if (!outcome.ok()) {
    fmt::print(stderr, "{}\n", outcome.status().ToString());
    return 1;
  }
  fmt::print("accepted {} version {}; snapshot and timestamp signed\n",
             metadata::PercentEncode(outcome->role), outcome->version);
  return 0;
}

CLI::App* AddSignCommand(CLI::App& app, SignFlags& flags) {
  auto* sign = app.add_subcommand(
      "sign", "Sign a staged metadata file where the key lives (no repository or database needed)");
  sign->add_option("file", flags.input, "The staged file (pending/<V>.<role>.json)")
      ->required()
      ->check(CLI::ExistingFile);
  sign->add_option("--key", flags.key_file,
                   "Private key: Ed25519 seed file (keygen) or PEM (ECDSA P-256, RSA)")
      ->required()
      ->check(CLI::ExistingFile);
  sign->add_option("--out", flags.output, "Where to write the signed file (default: FILE)");
  return sign;
}

CLI::App* AddStageAppCommand(CLI::App& app, StageAppFlags& flags) {
  auto* stage = app.add_subcommand(
      "stage-app",
      "Stage top-level targets delegating apps/APP to its keys (add an app, rotate its key)");
  stage->add_option("--repository", flags.request.repository, "Repository directory")->required();
  stage->add_option("--app", flags.request.app, "App name")->required();
  stage
      ->add_option("--key-pub", flags.request.public_key_files,
                   "Public key file of the app (keygen's .pub hex, or PEM); repeatable")
      ->required()
      ->check(CLI::ExistingFile);
  stage->add_option("--threshold", flags.request.threshold, "Signatures needed")
      ->capture_default_str();
  stage->add_option("--expiry-days", flags.expiry_days, "Lifetime of the staged version")
      ->check(CLI::Range(1, 3650))
      ->capture_default_str();
  return stage;
}

CLI::App* AddStageRootCommand(CLI::App& app, StageRootFlags& flags) {
  auto* stage_root = app.add_subcommand(
      "stage-root",
      "Stage the next root with new keys for some roles (recovery: docs/metadata.md)");
  stage_root->add_option("--repository", flags.repository, "Repository directory")->required();
  stage_root
      ->add_option("--rotate", flags.rotate,
                   "ROLE=FILE: ROLE (root, targets, snapshot, timestamp) gets the Ed25519 public "
                   "key in FILE (keygen's .pub), threshold 1; repeatable")
      ->required();
  return stage_root;
}

CLI::App* AddAcceptCommand(CLI::App& app, AcceptFlags& flags) {
  auto* accept = app.add_subcommand(
      "accept", "Check a signed file as a device would, then publish it with the online keys");
  accept->add_option("--repository", flags.repository, "Repository directory")->required();
  accept->add_option("--role", flags.role, "Role (default: from the file name)");
  accept->add_option("file", flags.file, "The signed file")->required()->check(CLI::ExistingFile);
  return accept;
}

}  // namespace

CommandAction RegisterSigningCommands(CLI::App& app) {
  auto sign_flags = std::make_shared<SignFlags>();
  auto* sign = AddSignCommand(app, *sign_flags);
  auto stage_flags = std::make_shared<StageAppFlags>();
  auto* stage = AddStageAppCommand(app, *stage_flags);
  auto root_flags = std::make_shared<StageRootFlags>();
  auto* stage_root = AddStageRootCommand(app, *root_flags);
  auto accept_flags = std::make_shared<AcceptFlags>();
  auto* accept = AddAcceptCommand(app, *accept_flags);
  return [=] {
    if (*sign) return RunSign(*sign_flags);
    if (*stage) return RunStageApp(*stage_flags);
    if (*stage_root) return RunStageRoot(*root_flags);
    if (*accept) return RunAccept(*accept_flags);
    return -1;
  };
}

}  // namespace flotilla::tracker
