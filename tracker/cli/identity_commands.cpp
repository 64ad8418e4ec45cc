// `flotilla-tracker token create|list|revoke` (batch enrolment tokens) and
// `flotilla-tracker device approve` (a replacement device may take a name)
// and `device decommission` (a device taken out of the fleet): docs/identity.md.
#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <system_error>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "tracker/api/labels.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/rollout.h"
#include "tracker/storage/identity_store.h"

namespace flotilla::tracker {
namespace {

struct IdentityFlags {
  DatabaseFlags database;
  bool json = false;
  std::string name;
  std::string expires = "30d";
  int64_t uses = 0;
  std::string approve_for = "24h";
  bool yes = false;
};

Result<std::unique_ptr<IdentityStore>> OpenStore(const IdentityFlags& flags) {
  ASSIGN_OR_RETURN(const std::string url, FleetDatabaseUrl(flags.database));
  return IdentityStore::Open(url, SystemClock::Instance());
}

// A duration of at least a second ("30d", "12h", "90m", "600s").
Result<int64_t> PositiveSeconds(const std::string& text, std::string_view flag) {
  auto seconds = ParseSeconds(text);
  if (!seconds.ok()) return seconds.status().WithContext(flag);
  if (*seconds <= 0) return InvalidArgument(std::string(flag) + ": must be at least 1s");
  return *seconds;
}

int RunTokenCreate(const IdentityFlags& flags) {
  const char* cmd = "token create";
  if (!IsValidLabel(flags.name)) {
    return FailCommand(cmd, InvalidArgument("--name must be 1-64 of [A-Za-z0-9._-]"));
  }
  if (flags.uses < 0) return FailCommand(cmd, InvalidArgument("--uses must be 0 or more"));
  auto valid_for = PositiveSeconds(flags.expires, "--expires");
  if (!valid_for.ok()) return FailCommand(cmd, valid_for.status());
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto token = (*store)->CreateToken(flags.name, *valid_for, flags.uses);
  if (!token.ok()) return FailCommand(cmd, token.status());
  const int64_t expires_at = UnixSeconds(SystemClock::Instance()) + *valid_for;
  if (flags.json) {
    fmt::print("{}\n", Json{{"name", flags.name},
                            {"token", *token},
                            {"expires_at", UtcText(expires_at)},
                            {"max_uses", flags.uses}}
                           .dump());
    return 0;
  }
  fmt::print("{}\n", *token);
  fmt::print(stderr,
             "token '{}' enrols devices until {} ({}). It is shown this once: put it in the\n"
             "devices' enrolment_token_file. `flotilla-tracker token revoke {}` ends it.\n",
             flags.name, UtcText(expires_at),
             flags.uses == 0 ? std::string("no limit of uses")
                             : "at most " + std::to_string(flags.uses) + " devices",
             flags.name);
  return 0;
}

int RunTokenList(const IdentityFlags& flags) {
  const char* cmd = "token list";
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto tokens = (*store)->Tokens();
  if (!tokens.ok()) return FailCommand(cmd, tokens.status());
  const int64_t now = UnixSeconds(SystemClock::Instance());
  if (flags.json) {
    Json list = Json::array();
    for (const EnrolToken& t : *tokens) {
      list.push_back(
          {{"name", t.name},
           {"state", t.StateAt(now)},
           {"created_at", UtcText(t.created_at)},
           {"expires_at", UtcText(t.expires_at)},
           {"uses", t.uses},
           {"max_uses", t.max_uses},
           {"revoked_at", t.revoked_at == 0 ? Json(nullptr) : Json(UtcText(t.revoked_at))}});
    }
    fmt::print("{}\n", Json{{"tokens", list}}.dump());
    return 0;
  }
  if (tokens->empty()) {
    fmt::print(
        "no enrolment tokens (token create makes one; serve's fleet_token_file also enrols)\n");
    return 0;
  }
  fmt::print("{:<24} {:<8} {:<21} {}\n", "NAME", "STATE", "EXPIRES", "USES");
  for (const EnrolToken& t : *tokens) {
    fmt::print("{:<24} {:<8} {:<21} {}{}\n", t.name, t.StateAt(now), UtcText(t.expires_at), t.uses,
               t.max_uses == 0 ? "" : " of " + std::to_string(t.max_uses));
  }
  return 0;
}

int RunTokenRevoke(const IdentityFlags& flags) {
  const char* cmd = "token revoke";
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  if (Status st = (*store)->RevokeToken(flags.name); !st.ok()) return FailCommand(cmd, st);
  if (flags.json) {
    fmt::print("{}\n", Json{{"name", flags.name}, {"state", "revoked"}}.dump());
  } else {
    fmt::print("token '{}' revoked: it enrols no device from now on (enrolled ones stay)\n",
               flags.name);
  }
  return 0;
}

int RunDeviceApprove(const IdentityFlags& flags) {
  const char* cmd = "device approve";
  auto valid_for = PositiveSeconds(flags.approve_for, "--for");
  if (!valid_for.ok()) return FailCommand(cmd, valid_for.status());
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto until = (*store)->ApproveReplacement(flags.name, *valid_for);
  if (!until.ok()) return FailCommand(cmd, until.status());
  if (*until == 0) {  // a decommissioned name, released
    if (flags.json) {
      fmt::print("{}\n", Json{{"device", flags.name}, {"name_released", true}}.dump());
    } else {
      fmt::print(
          "device name '{}' (decommissioned) released: the next device enrolling under it\n"
          "with a token is a new device\n",
          flags.name);
    }
    return 0;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"device", flags.name}, {"approved_until", UtcText(*until)}}.dump());
  } else {
    fmt::print(
        "device '{}': the next enrolment under this name until {} binds its key, once;\n"
        "the device enrolled now loses its credential and passkey when that happens\n",
        flags.name, UtcText(*until));
  }
  return 0;
}

int RunDeviceDecommission(const IdentityFlags& flags) {
  const char* cmd = "device decommission";
  if (!flags.yes) {
    return FailCommand(cmd, InvalidArgument("decommissioning '" + flags.name +
                                            "' is final (its key never enrols again): "
                                            "give --yes to go on"));
  }
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto device_id = (*store)->Decommission(flags.name);
  if (!device_id.ok()) return FailCommand(cmd, device_id.status());
  // Its fleet repository: nobody may fetch it any more, and the signer must
  // not re-sign it. Left behind by a cut here, it is only unused bytes.
  std::string removed;
  if (auto repo = FleetRepositoryDir(flags.database); repo.ok()) {
    const std::string devices = *repo + "/fleet/devices";
    std::error_code ec;
    if (std::filesystem::remove_all(devices + "/" + *device_id, ec) > 0 && !ec) {
      removed = devices + "/" + *device_id;
      if (Status st = FsyncDirectory(devices); !st.ok()) {
        return FailCommand(cmd, st.WithContext("remove " + removed));
      }
    }
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"device", flags.name},
                            {"device_id", *device_id},
                            {"state", "decommissioned"},
                            {"fleet_repository_removed", !removed.empty()}}
                           .dump());
  } else {
    fmt::print(
        "device '{}' ({}) decommissioned: its credential and passkey stop working on every\n"
        "serve within a minute, its key never enrols again, and its tags, pins, reports and\n"
        "rollout places are gone{}. Rotate the secrets it held (its key was on its SD card in\n"
        "clear). `device approve {}` lets a new device take the name.\n",
        flags.name, *device_id, removed.empty() ? "" : " (and its fleet repository)", flags.name);
  }
  return 0;
}

void AddDatabaseFlags(CLI::App* cmd, IdentityFlags& f) {
  cmd->add_option("--repository", f.database.repository,
                  "Tracker repository directory (its tracker.db is the database)");
  cmd->add_option("--database-url", f.database.database_url,
                  "sqlite:PATH or postgresql://... (as serve's database_url)");
  cmd->add_option("--config", f.database.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", f.json, "Print one JSON document instead of text");
}

}  // namespace

CommandAction RegisterIdentityCommands(CLI::App& app) {
  auto f = std::make_shared<IdentityFlags>();
  const std::string database = "\nDatabase: --repository DIR, --database-url URL or --config FILE.";
  auto* token = app.add_subcommand(
      "token", "Batch enrolment tokens: expire, limited uses, revocable (docs/identity.md)");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Create a token and print it, once");
  create->footer(
      "\nA device enrols with the token (its enrolment_token_file) until the token\n"
      "expires, is revoked or has enrolled --uses devices. Only its SHA-256 is stored:\n"
      "the token is printed on stdout this once (the rest goes to stderr).\n"
      "  flotilla-tracker token create --name batch-2026-12 --expires 30d --uses 500 "
      "--repository R" +
      database);
  create->add_option("--name", f->name, "Token name (a label, never reused)")->required();
  create->add_option("--expires", f->expires, "Valid for: 30d, 12h, 90m... (default 30d)");
  create->add_option("--uses", f->uses, "At most this many enrolments (default: no limit)");
  auto* list = token->add_subcommand("list", "List the tokens, their state and uses");
  list->footer("\n  flotilla-tracker token list --repository R" + database);
  auto* revoke = token->add_subcommand("revoke", "Revoke a token: it enrols no more devices");
  revoke->footer(
      "\nDevices it enrolled stay enrolled, and re-enrol with their own key.\n"
      "  flotilla-tracker token revoke batch-2026-12 --repository R" +
      database);
  revoke->add_option("name", f->name, "Token name")->required();

  // `device approve` joins the fleet commands' `device` (registered before).
  CLI::App* device = nullptr;
  try {
    device = app.get_subcommand("device");
  } catch (const CLI::OptionNotFound&) {
    device = app.add_subcommand("device", "Enrolled devices");
    device->require_subcommand(1);
  }
  auto* approve = device->add_subcommand(
      "approve", "Let a replacement device take a name: its next enrolment binds a new key, once");
  approve->footer(
      "\nA name is bound to the key of the device that enrolled it; another device\n"
      "(a replaced screen, a card flashed anew) is refused until an operator approves\n"
      "it. The approval lapses after --for; the old device's credential and passkey\n"
      "stop working when the replacement enrols. Id, tags, pins and groups stay.\n"
      "  flotilla-tracker device approve kiosk-lobby --for 2h --repository R" +
      database);
  approve->add_option("name", f->name, "Device name")->required();
  approve->add_option("--for", f->approve_for, "How long the approval waits (default 24h)");

  auto* decommission = device->add_subcommand(
      "decommission", "Take a device out of the fleet for good: revoke it and forget its key");
  decommission->footer(
      "\nIts credential and passkey stop working (on every serve within a minute: no more\n"
      "announces, reports or fleet documents), its key is refused at any later enrolment,\n"
      "and its tags, pins, reports, failures and rollout places are deleted; its fleet\n"
      "repository is removed. The key sat on its SD card in clear: rotate the secrets the\n"
      "device held. The name is kept from new devices until `device approve NAME`.\n"
      "To swap a broken screen and keep its name, tags, pins and groups, use\n"
      "`device approve` alone (docs/identity.md).\n"
      "  flotilla-tracker device decommission kiosk-lobby --yes --repository R" +
      database);
  decommission->add_option("name", f->name, "Device name")->required();
  decommission->add_flag("--yes", f->yes, "Confirm: decommissioning is final");

  for (auto* cmd : {create, list, revoke, approve, decommission}) AddDatabaseFlags(cmd, *f);
  return [f, create, list, revoke, approve, decommission] {
    if (*create) return RunTokenCreate(*f);
    if (*list) return RunTokenList(*f);
    if (*revoke) return RunTokenRevoke(*f);
    if (*approve) return RunDeviceApprove(*f);
    if (*decommission) return RunDeviceDecommission(*f);
    return -1;
  };
}

}  // namespace flotilla::tracker
