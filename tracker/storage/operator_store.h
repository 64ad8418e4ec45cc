// Operators in the tracker's database (docs/operators.md): accounts with a
// role and an Argon2id password hash (libsodium crypto_pwhash_str), operator
// API tokens and dashboard sessions (random secrets stored as SHA-256), the
// role table, and the audit log, which the other stores append to inside
// their own transactions (AppendAudit).
// Not thread-safe: one OperatorStore per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

// The roles, each allowing what the ones before it allow.
inline constexpr std::string_view kRoleReadOnly = "read-only";
inline constexpr std::string_view kRoleDeployer = "deployer";
inline constexpr std::string_view kRoleAdmin = "admin";
bool IsRole(std::string_view role);
// Whether `role` may do `action` (docs/operators.md, "Roles"). An unknown
// role or action is refused.
bool RoleAllows(std::string_view role, std::string_view action);

// One audit row to write: who did what to what, and how it ended.
struct AuditRecord {
  std::string actor;   // an operator's name, or "local:<unix user>"
  std::string action;  // "pin", "operator.add"... (docs/operators.md)
  std::string target;  // what it acted on ("group:g", an app, an operator)
  Json detail = Json::object();
  std::string outcome = "ok";  // "ok", "denied", "failed"
};

struct AuditEntry {
  int64_t id = 0;
  int64_t at = 0;
  std::string actor;
  std::string action;
  std::string target;
  Json detail;
  std::string outcome;
};

struct AuditFilter {
  int64_t since = 0;  // unix seconds, inclusive
  std::string actor;  // "" every actor
  int64_t limit = 1000;
};

// Appends `record` at `at` (unix seconds): inside the caller's transaction
// when it has one, so the change and its record commit together.
Status AppendAudit(SqlEngine& db, int64_t at, const AuditRecord& record);
// Newest first.
Result<std::vector<AuditEntry>> ListAudit(SqlEngine& db, const AuditFilter& filter);
// "local:<name of the effective unix user>" (its uid when it has no name):
// the actor of a command run on the tracker host.
std::string LocalActor();
// The JSON form `audit list --json` and the operator API give an entry.
Json AuditEntryToJson(const AuditEntry& entry);

// Who a request is: an enabled account and its current role.
struct OperatorIdentity {
  std::string name;
  std::string role;
};

struct OperatorAccount {
  std::string name;
  std::string role;
  bool disabled = false;
  int64_t created_at = 0;
  int64_t tokens = 0;  // live tokens (not revoked, not expired)
};

struct OperatorToken {
  int64_t id = 0;
  std::string operator_name;
  std::string label;
  int64_t created_at = 0;
  int64_t expires_at = 0;  // 0: never
  int64_t revoked_at = 0;  // 0: not revoked
  int64_t last_used_at = 0;
  // "active", "expired" or "revoked" at `now`.
  std::string StateAt(int64_t now) const;
};

// The prefix of every operator API token: a bearer value without it (an
// enrolment token, a device credential) is never looked up as one.
inline constexpr std::string_view kOperatorTokenPrefix = "flop_";

// A new dashboard session: the cookie value (shown once) and its CSRF token.
struct OperatorSession {
  std::string cookie;
  std::string csrf;
  OperatorIdentity identity;
};

// The CSRF token bound to a session cookie: hex SHA-256 of "csrf:" + cookie.
std::string CsrfTokenOf(std::string_view cookie);

// A login between its steps (OperatorStore::Login): what the database said
// of the name, for the password check that may run on another thread.
struct PendingLogin {
  std::string name;                          // as given
  std::optional<OperatorIdentity> identity;  // none: no such account
  std::string password_hash;                 // a fixed one when there is no account
  bool disabled = true;
};

// The password check of a login: Argon2id, about 0.1 s of CPU and 64 MiB.
// Touches no database: thread-safe, so a server runs it off its network
// thread. False for a password over kMaxPasswordBytes.
bool PasswordMatches(const PendingLogin& login, std::string_view password);

class OperatorStore {
 public:
  static constexpr int64_t kSessionIdleS = 30 * 60;
  static constexpr int64_t kSessionAbsoluteS = 12 * 3600;
  static constexpr size_t kMinPasswordBytes = 12;
  static constexpr size_t kMaxPasswordBytes = 1024;

  // Opens (and migrates) the tracker database `url` names. Changes are
  // audited as LocalActor() until set_actor.
  static Result<std::unique_ptr<OperatorStore>> Open(const std::string& url, const Clock& clock);

  void set_actor(std::string actor) { actor_ = std::move(actor); }
  const std::string& actor() const { return actor_; }
  SqlEngine& engine() { return *db_; }

  // Whether any account exists (then the operator endpoints need a login).
  Result<bool> HasOperators();

  // InvalidArgument for a bad name, role or password; AlreadyExists for a
  // name in use; FailedPrecondition when the first account is not an admin.
  Status Add(std::string_view name, std::string_view role, std::string_view password);
  Result<std::vector<OperatorAccount>> List();
  // These three refuse (FailedPrecondition) to leave no enabled admin.
  Status SetRole(std::string_view name, std::string_view role);
  Status SetDisabled(std::string_view name, bool disabled);
  Status Remove(std::string_view name);

  // A token of account `name`, valid for `valid_for_s` seconds (0: never
  // expires); returned this once.
  Result<std::string> CreateToken(std::string_view name, std::string_view label,
                                  int64_t valid_for_s);
  // Every token, or those of one account, oldest first.
  Result<std::vector<OperatorToken>> Tokens(std::string_view name = "");
  // NotFound for an unknown id; revoking twice is fine.
  Status RevokeToken(int64_t id);

  // PermissionDenied for anything but a live token of an enabled account.
  Result<OperatorIdentity> AuthenticateToken(std::string_view token);

  // Checks the password (PermissionDenied, one message for every refusal)
  // and opens a session. Audits the login either way (as `name`, or "?" for
  // a name that is not a label).
  Result<OperatorSession> Login(std::string_view name, std::string_view password,
                                std::string_view from);
  // Login in three steps, for a server that checks the password off its
  // network thread: BeginLogin reads the account, PasswordMatches checks,
  // FinishLogin audits and opens the session (PermissionDenied unless the
  // password matched an enabled account).
  Result<PendingLogin> BeginLogin(std::string_view name);
  Result<OperatorSession> FinishLogin(const PendingLogin& login, bool password_matches,
                                      std::string_view from);
  // PermissionDenied for an unknown, idle, too old session or a disabled
  // account.
  Result<OperatorIdentity> AuthenticateSession(std::string_view cookie);
  // Ends the session (nothing when unknown); audited as its operator.
  Status Logout(std::string_view cookie);

  // Appends a row of its own (a refusal, a failed login).
  Status Audit(const AuditRecord& record);

 private:
  OperatorStore(std::unique_ptr<SqlEngine> db, const Clock& clock);
  int64_t NowSeconds() const;
  // FailedPrecondition when no enabled admin would be left (inside a transaction).
  Status RequireAnAdmin(std::string_view change);

  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  std::string actor_;
};

}  // namespace flotilla::tracker
