// `flotilla-tracker operator add|list|set-role|disable|enable|remove`,
// `operator token create|list|revoke` and `audit list` (docs/operators.md):
// operator accounts, their API tokens and the audit log, on the tracker host.
#include <fmt/core.h>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/rollout.h"
#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {
namespace {

struct OperatorFlags {
  DatabaseFlags database;
  bool json = false;
  std::string name;
  std::string role;
  std::string password_file;
  std::string expires = "90d";
  std::string label;
  int64_t id = 0;
  std::string since;
  std::string actor;
  int64_t limit = 1000;
};

Result<std::unique_ptr<OperatorStore>> OpenStore(const OperatorFlags& flags) {
  ASSIGN_OR_RETURN(const std::string url, FleetDatabaseUrl(flags.database));
  return OperatorStore::Open(url, SystemClock::Instance());
}

// The first line of --password-file, else of stdin (never a flag: `ps`
// shows flags). The line's end (\n or \r\n) is not part of it.
Result<std::string> ReadPassword(const OperatorFlags& flags) {
  std::string line;
  if (!flags.password_file.empty()) {
    ASSIGN_OR_RETURN(Bytes bytes, ReadFileBounded(flags.password_file, 4096));
    line.assign(bytes.begin(), bytes.end());
    line = line.substr(0, line.find('\n'));
  } else {
    if (!std::getline(std::cin, line)) {
      return InvalidArgument("no password: give it on stdin or with --password-file FILE");
    }
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int RunAdd(const OperatorFlags& flags) {
  const char* cmd = "operator add";
  auto password = ReadPassword(flags);
  if (!password.ok()) return FailCommand(cmd, password.status());
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  if (Status st = (*store)->Add(flags.name, flags.role, *password); !st.ok()) {
    return FailCommand(cmd, st);
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"name", flags.name}, {"role", flags.role}}.dump());
  } else {
    fmt::print(
        "operator '{}' added as {}: the dashboard, /api/v1/fleet and /metrics now need "
        "a login or an operator token\n",
        flags.name, flags.role);
  }
  return 0;
}

int RunList(const OperatorFlags& flags) {
  const char* cmd = "operator list";
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto accounts = (*store)->List();
  if (!accounts.ok()) return FailCommand(cmd, accounts.status());
  if (flags.json) {
    Json list = Json::array();
    for (const OperatorAccount& a : *accounts) {
      list.push_back({{"name", a.name},
                      {"role", a.role},
                      {"disabled", a.disabled},
                      {"created_at", UtcText(a.created_at)},
                      {"tokens", a.tokens}});
    }
    fmt::print("{}\n", Json{{"operators", list}}.dump());
    return 0;
  }
  if (accounts->empty()) {
    fmt::print(
        "no operators: the dashboard, /api/v1/fleet and /metrics are open to whoever "
        "reaches them (operator add NAME --role admin closes them)\n");
    return 0;
  }
  fmt::print("{:<24} {:<10} {:<9} {:>6}  {}\n", "name", "role", "state", "tokens", "created");
  for (const OperatorAccount& a : *accounts) {
    fmt::print("{:<24} {:<10} {:<9} {:>6}  {}\n", a.name, a.role,
               a.disabled ? "disabled" : "enabled", a.tokens, UtcText(a.created_at));
  }
  return 0;
}

int RunChange(const OperatorFlags& flags, const std::string& verb) {
  const std::string cmd = "operator " + verb;
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  Status st = verb == "set-role"  ? (*store)->SetRole(flags.name, flags.role)
              : verb == "disable" ? (*store)->SetDisabled(flags.name, true)
              : verb == "enable"  ? (*store)->SetDisabled(flags.name, false)
                                  : (*store)->Remove(flags.name);
  if (!st.ok()) return FailCommand(cmd, st);
  if (flags.json) {
    Json out{{"name", flags.name}, {"change", verb}};
    if (verb == "set-role") out["role"] = flags.role;
    fmt::print("{}\n", out.dump());
  } else if (verb == "set-role") {
    fmt::print("operator '{}' is now {}\n", flags.name, flags.role);
  } else if (verb == "disable") {
    fmt::print("operator '{}' disabled: its sessions ended, its tokens are refused\n", flags.name);
  } else if (verb == "enable") {
    fmt::print("operator '{}' enabled\n", flags.name);
  } else {
    fmt::print("operator '{}' removed with its tokens and sessions\n", flags.name);
  }
  return 0;
}

int RunTokenCreate(const OperatorFlags& flags) {
  const char* cmd = "operator token create";
  int64_t valid_for = 0;
  if (flags.expires != "never") {
    auto seconds = ParseSeconds(flags.expires);
    if (!seconds.ok()) return FailCommand(cmd, seconds.status().WithContext("--expires"));
    if (*seconds <= 0) {
      return FailCommand(cmd, InvalidArgument("--expires: at least 1s, or never"));
    }
    valid_for = *seconds;
  }
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto token = (*store)->CreateToken(flags.name, flags.label, valid_for);
  if (!token.ok()) return FailCommand(cmd, token.status());
  const Json expires = valid_for == 0
                           ? Json("never")
                           : Json(UtcText(UnixSeconds(SystemClock::Instance()) + valid_for));
  if (flags.json) {
    fmt::print("{}\n",
               Json{{"operator", flags.name}, {"token", *token}, {"expires_at", expires}}.dump());
    return 0;
  }
  fmt::print("{}\n", *token);
  fmt::print(stderr,
             "token of operator '{}' (expires {}). It is shown this once: send it as\n"
             "`Authorization: Bearer TOKEN`. `operator token list` shows its id to revoke it.\n",
             flags.name, expires.get<std::string>());
  return 0;
}

int RunTokenList(const OperatorFlags& flags) {
  const char* cmd = "operator token list";
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto tokens = (*store)->Tokens(flags.name);
  if (!tokens.ok()) return FailCommand(cmd, tokens.status());
  const int64_t now = UnixSeconds(SystemClock::Instance());
  auto time = [](int64_t t, const char* zero) { return t == 0 ? std::string(zero) : UtcText(t); };
  if (flags.json) {
    Json list = Json::array();
    for (const OperatorToken& t : *tokens) {
      list.push_back(
          {{"id", t.id},
           {"operator", t.operator_name},
           {"label", t.label},
           {"state", t.StateAt(now)},
           {"created_at", UtcText(t.created_at)},
           {"expires_at", time(t.expires_at, "never")},
           {"last_used_at", t.last_used_at == 0 ? Json(nullptr) : Json(UtcText(t.last_used_at))}});
    }
    fmt::print("{}\n", Json{{"tokens", list}}.dump());
    return 0;
  }
  if (tokens->empty()) fmt::print("no operator tokens\n");
  for (const OperatorToken& t : *tokens) {
    fmt::print("{:>4}  {:<20} {:<16} {:<8} expires {}  last used {}\n", t.id, t.operator_name,
               t.label.empty() ? "-" : t.label, t.StateAt(now), time(t.expires_at, "never"),
               time(t.last_used_at, "never"));
  }
  return 0;
}

int RunTokenRevoke(const OperatorFlags& flags) {
  const char* cmd = "operator token revoke";
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  if (Status st = (*store)->RevokeToken(flags.id); !st.ok()) return FailCommand(cmd, st);
  if (flags.json) {
    fmt::print("{}\n", Json{{"id", flags.id}, {"revoked", true}}.dump());
  } else {
    fmt::print("operator token {} revoked\n", flags.id);
  }
  return 0;
}

// "1h", "7d" back from now, or unix seconds.
Result<int64_t> SinceOf(const std::string& text) {
  if (text.empty()) return 0;
  int64_t unix_seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), unix_seconds);
  if (ec == std::errc() && end == text.data() + text.size() && unix_seconds > 1'000'000) {
    return unix_seconds;
  }
  auto back = ParseSeconds(text);
  if (!back.ok()) {
    return InvalidArgument("--since: a duration back from now (1h, 7d) or unix seconds");
  }
  return UnixSeconds(SystemClock::Instance()) - *back;
}

int RunAuditList(const OperatorFlags& flags) {
  const char* cmd = "audit list";
  auto since = SinceOf(flags.since);
  if (!since.ok()) return FailCommand(cmd, since.status());
  auto store = OpenStore(flags);
  if (!store.ok()) return FailCommand(cmd, store.status());
  auto entries =
      ListAudit((*store)->engine(), {.since = *since, .actor = flags.actor, .limit = flags.limit});
  if (!entries.ok()) return FailCommand(cmd, entries.status());
  if (flags.json) {
    Json list = Json::array();
    for (const AuditEntry& e : *entries) list.push_back(AuditEntryToJson(e));
    fmt::print("{}\n", Json{{"entries", list}}.dump());
    return 0;
  }
  if (entries->empty()) fmt::print("no audit entries\n");
  for (const AuditEntry& e : *entries) {
    fmt::print("{}  {:<16} {:<18} {:<24} {:<7} {}\n", UtcText(e.at), e.actor, e.action, e.target,
               e.outcome, e.detail.dump());
  }
  return 0;
}

void AddDatabaseFlags(CLI::App* cmd, OperatorFlags& f) {
  cmd->add_option("--repository", f.database.repository,
                  "Tracker repository directory (its tracker.db is the database)");
  cmd->add_option("--database-url", f.database.database_url,
                  "sqlite:PATH or postgresql://... (as serve's database_url)");
  cmd->add_option("--config", f.database.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", f.json, "Print one JSON document instead of text");
}

// An operator account command: run on the tracker host, audited as the Unix user.
CLI::App* OperatorCommand(CLI::App* parent, const std::string& name, const std::string& summary,
                          const std::string& details) {
  return AddDatabaseCommand(
      parent, name, summary, details,
      "Run on the tracker host; audited as local:<unix user> (docs/operators.md).");
}

}  // namespace

CommandAction RegisterOperatorCommands(CLI::App& app) {
  auto f = std::make_shared<OperatorFlags>();
  auto* group = app.add_subcommand(
      "operator",
      "Operator accounts, roles and API tokens for the dashboard and operator API "
      "(docs/operators.md)");
  group->require_subcommand(1);
  auto* add = OperatorCommand(
      group, "add", "Add an account with a role (read-only, deployer, admin)",
      "The password is the first line of stdin or of --password-file (12 to 1024 bytes),\n"
      "stored only as an Argon2id hash. The first account must be an admin; once one\n"
      "exists, the dashboard, /api/v1/fleet and /metrics need a login or a token.\n"
      "  flotilla-tracker operator add alice --role admin --repository R < alice.pass");
  add->add_option("name", f->name, "Account name (1-64 of [A-Za-z0-9._-])")->required();
  add->add_option("--role", f->role, "read-only, deployer or admin")->required();
  add->add_option("--password-file", f->password_file, "Read the password from this file")
      ->check(CLI::ExistingFile);
  auto* list = OperatorCommand(group, "list", "List the accounts: role, enabled, live tokens",
                               "  flotilla-tracker operator list --repository R --json");
  auto* set_role =
      OperatorCommand(group, "set-role", "Change an account's role",
                      "Applies to its next request (sessions and tokens alike). Never\n"
                      "leaves the tracker without an enabled admin.\n"
                      "  flotilla-tracker operator set-role ci read-only --repository R");
  set_role->add_option("name", f->name, "Account name")->required();
  set_role->add_option("role", f->role, "read-only, deployer or admin")->required();
  std::vector<std::pair<CLI::App*, std::string>> changes = {{set_role, "set-role"}};
  for (const auto& [verb, summary] : std::vector<std::pair<std::string, std::string>>{
           {"disable", "Disable an account: its sessions end, its tokens are refused"},
           {"enable", "Enable a disabled account again"},
           {"remove", "Remove an account with its tokens and sessions (audit rows stay)"}}) {
    auto* cmd = OperatorCommand(group, verb, summary,
                                "  flotilla-tracker operator " + verb + " ci --repository R");
    cmd->add_option("name", f->name, "Account name")->required();
    changes.emplace_back(cmd, verb);
  }
  auto* token = group->add_subcommand("token", "Operator API tokens (Authorization: Bearer)");
  token->require_subcommand(1);
  auto* token_create = OperatorCommand(
      token, "create", "Create a token of an account and print it, once",
      "The token acts as its account with the account's current role, until it\n"
      "expires or is revoked. Only its SHA-256 is stored.\n"
      "  flotilla-tracker operator token create ci --expires 90d --label prometheus "
      "--repository R");
  token_create->add_option("name", f->name, "Account name")->required();
  token_create->add_option("--expires", f->expires, "Valid for: 90d, 12h... or never (90d)");
  token_create->add_option("--label", f->label, "What it is for (a label)");
  auto* token_list =
      OperatorCommand(token, "list", "List tokens: id, account, label, state, last use",
                      "  flotilla-tracker operator token list ci --repository R");
  token_list->add_option("name", f->name, "Only this account's");
  auto* token_revoke = OperatorCommand(token, "revoke", "Revoke a token by its id",
                                       "  flotilla-tracker operator token revoke 4 --repository R");
  token_revoke->add_option("id", f->id, "Token id (token list)")->required();

  auto* audit = app.add_subcommand("audit", "The audit log: who did what (docs/operators.md)");
  audit->require_subcommand(1);
  auto* audit_list = OperatorCommand(
      audit, "list", "List audit entries, newest first",
      "Every rollout, pin, unpin, recall, fleet change, operator and token change,\n"
      "device approval, login (failed or not) and refusal by role, with its actor:\n"
      "an operator's name, or local:<unix user> for a command on the host.\n"
      "  flotilla-tracker audit list --since 1d --actor alice --repository R");
  audit_list->add_option("--since", f->since, "A duration back (1h, 7d) or unix seconds");
  audit_list->add_option("--actor", f->actor, "Only this actor's entries");
  audit_list->add_option("--limit", f->limit, "At most this many (1000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));

  for (auto* cmd : {add, list, token_create, token_list, token_revoke, audit_list}) {
    AddDatabaseFlags(cmd, *f);
  }
  for (auto& [cmd, verb] : changes) AddDatabaseFlags(cmd, *f);
  return [f, add, list, changes, token_create, token_list, token_revoke, audit_list] {
    if (*add) return RunAdd(*f);
    if (*list) return RunList(*f);
    for (const auto& [cmd, verb] : changes) {
      if (*cmd) return RunChange(*f, verb);
    }
    if (*token_create) return RunTokenCreate(*f);
    if (*token_list) return RunTokenList(*f);
    if (*token_revoke) return RunTokenRevoke(*f);
    if (*audit_list) return RunAuditList(*f);
    return -1;
  };
}

}  // namespace flotilla::tracker
