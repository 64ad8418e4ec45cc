#include "tracker/storage/operator_store.h"

#include <pwd.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "tracker/api/labels.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

// Each action and the least role that may do it (docs/operators.md, "Roles").
struct RoleAction {
  std::string_view action;
  int least;  // 0 read-only, 1 deployer, 2 admin
};
constexpr std::array kRoleActions = {
    RoleAction{"dashboard", 0},
    RoleAction{"fleet.read", 0},
    RoleAction{"metrics", 0},
    RoleAction{"rollout.start", 1},
    RoleAction{"rollout.pause", 1},
    RoleAction{"rollout.resume", 1},
    RoleAction{"rollout.abort", 1},
    RoleAction{"pin", 1},
    RoleAction{"unpin", 1},
    RoleAction{"recall", 1},
    RoleAction{"config.set", 1},
    RoleAction{"audit.read", 2},
    RoleAction{"operator.add", 2},
    RoleAction{"operator.set-role", 2},
    RoleAction{"operator.disable", 2},
    RoleAction{"operator.enable", 2},
    RoleAction{"operator.remove", 2},
    RoleAction{"token.create", 2},
    RoleAction{"token.revoke", 2},
    RoleAction{"enrol-token.create", 2},
    RoleAction{"enrol-token.revoke", 2},
    RoleAction{"device.approve", 2},
    RoleAction{"device.decommission", 2},
    RoleAction{"secret.set", 2},
    RoleAction{"logs.request", 2},
};

int RoleRank(std::string_view role) {
  if (role == kRoleReadOnly) return 0;
  if (role == kRoleDeployer) return 1;
  if (role == kRoleAdmin) return 2;
  return -1;
}

Status CheckName(std::string_view name) {
  if (!IsValidLabel(name)) {
    return InvalidArgument("an operator name is 1-64 of [A-Za-z0-9._-]");
  }
  return Status::Ok();
}

Status CheckRole(std::string_view role) {
  if (!IsRole(role)) {
    return InvalidArgument("unknown role '" + std::string(role) +
                           "' (read-only, deployer or admin)");
  }
  return Status::Ok();
}

// The hash the database stores; the same for every unknown name's check, so
// that a login for one costs as much as a wrong password.
Result<std::string> HashPassword(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return ResourceExhausted("password hashing ran out of memory");
  }
  return std::string(out);
}

bool VerifyPassword(const std::string& hash, std::string_view password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string NotFoundName(std::string_view name) {
  return "no operator named '" + std::string(name) + "' (operator list shows them)";
}

}  // namespace

bool IsRole(std::string_view role) { return RoleRank(role) >= 0; }

bool RoleAllows(std::string_view role, std::string_view action) {
  const int rank = RoleRank(role);
  if (rank < 0) return false;
  for (const RoleAction& entry : kRoleActions) {
    if (entry.action == action) return rank >= entry.least;
  }
  return false;
}

Status AppendAudit(SqlEngine& db, int64_t at, const AuditRecord& record) {
  const std::string detail = record.detail.dump();
  return db
      .Query(
          "INSERT INTO audit_log(at, actor, action, target, detail, outcome) "
          "VALUES(?, ?, ?, ?, ?, ?)",
          {at, record.actor, record.action, record.target, detail, record.outcome})
      .status();
}

Result<std::vector<AuditEntry>> ListAudit(SqlEngine& db, const AuditFilter& filter) {
  const int64_t limit = filter.limit <= 0 ? 1000 : filter.limit;
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("SELECT id, at, actor, action, target, detail, outcome FROM audit_log "
                            "WHERE at >= ? AND (? = '' OR actor = ?) ORDER BY id DESC LIMIT ?",
                            {filter.since, filter.actor, filter.actor, limit}));
  std::vector<AuditEntry> entries;
  for (size_t i = 0; i < rows.size(); ++i) {
    AuditEntry e{.id = rows.Int(i, 0),
                 .at = rows.Int(i, 1),
                 .actor = rows.Text(i, 2),
                 .action = rows.Text(i, 3),
                 .target = rows.Text(i, 4),
                 .detail = Json::parse(rows.Text(i, 5), nullptr, /*allow_exceptions=*/false),
                 .outcome = rows.Text(i, 6)};
    if (e.detail.is_discarded()) e.detail = Json::object();
    entries.push_back(std::move(e));
  }
  return entries;
}

std::string LocalActor() {
  const uid_t uid = ::geteuid();
  struct passwd entry;
  struct passwd* found = nullptr;
  std::array<char, 1024> buf;
  if (::getpwuid_r(uid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return "local:" + std::string(found->pw_name);
  }
  return "local:" + std::to_string(uid);
}

Json AuditEntryToJson(const AuditEntry& entry) {
  return Json{{"id", entry.id},          {"at", UtcText(entry.at)}, {"actor", entry.actor},
              {"action", entry.action},  {"target", entry.target},  {"detail", entry.detail},
              {"outcome", entry.outcome}};
}

std::string OperatorToken::StateAt(int64_t now) const {
  if (revoked_at != 0) return "revoked";
  if (expires_at != 0 && expires_at <= now) return "expired";
  return "active";
}

std::string CsrfTokenOf(std::string_view cookie) {
  return HashSecret("csrf:" + std::string(cookie));
}

OperatorStore::OperatorStore(std::unique_ptr<SqlEngine> db, const Clock& clock)
    : db_(std::move(db)), clock_(clock), actor_(LocalActor()) {}

Result<std::unique_ptr<OperatorStore>> OperatorStore::Open(const std::string& url,
                                                           const Clock& clock) {
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  return std::unique_ptr<OperatorStore>(new OperatorStore(std::move(engine), clock));
}

int64_t OperatorStore::NowSeconds() const { return UnixSeconds(clock_); }

Result<bool> OperatorStore::HasOperators() {
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT 1 FROM operators LIMIT 1"));
  return !rows.empty();
}

Status OperatorStore::Add(std::string_view name, std::string_view role, std::string_view password) {
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(CheckRole(role));
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) {
    return InvalidArgument("a password is " + std::to_string(kMinPasswordBytes) + " to " +
                           std::to_string(kMaxPasswordBytes) + " bytes");
  }
  ASSIGN_OR_RETURN(const std::string hash, HashPassword(password));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(const bool any, HasOperators());
  if (!any && role != kRoleAdmin) {
    return FailedPrecondition(
        "the first operator must be an admin (with an account, the dashboard, "
        "/api/v1/fleet and /metrics need a login, and someone must manage them)");
  }
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("INSERT INTO operators(name, role, password_hash, disabled, "
                              "created_at) VALUES(?, ?, ?, 0, ?) ON CONFLICT DO NOTHING "
                              "RETURNING name",
                              {name, role, hash, now}));
  if (rows.empty()) return AlreadyExists("an operator named '" + std::string(name) + "' exists");
  RETURN_IF_ERROR(AppendAudit(*db_, now,
                              {.actor = actor_,
                               .action = "operator.add",
                               .target = std::string(name),
                               .detail = Json{{"role", role}}}));
  return transaction.Commit();
}

Result<std::vector<OperatorAccount>> OperatorStore::List() {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db_->Query("SELECT o.name, o.role, o.disabled, o.created_at, (SELECT COUNT(*) FROM "
                 "operator_tokens t WHERE t.operator = o.name AND t.revoked_at = 0 AND "
                 "(t.expires_at = 0 OR t.expires_at > ?)) FROM operators o ORDER BY o.name",
                 {NowSeconds()}));
  std::vector<OperatorAccount> accounts;
  for (size_t i = 0; i < rows.size(); ++i) {
    accounts.push_back(
        {rows.Text(i, 0), rows.Text(i, 1), rows.Int(i, 2) != 0, rows.Int(i, 3), rows.Int(i, 4)});
  }
  return accounts;
}

Status OperatorStore::RequireAnAdmin(std::string_view change) {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db_->Query("SELECT COUNT(*) FROM operators WHERE role = ? AND disabled = 0", {kRoleAdmin}));
  if (rows.Int(0, 0) == 0) {
    return FailedPrecondition(std::string(change) +
                              " would leave no enabled admin: add or enable another admin first");
  }
  return Status::Ok();
}

Status OperatorStore::SetRole(std::string_view name, std::string_view role) {
  RETURN_IF_ERROR(CheckRole(role));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(
      SqlRows rows,
      db_->Query("UPDATE operators SET role = ? WHERE name = ? RETURNING name", {role, name}));
  if (rows.empty()) return NotFound(NotFoundName(name));
  RETURN_IF_ERROR(RequireAnAdmin("making '" + std::string(name) + "' " + std::string(role)));
  RETURN_IF_ERROR(AppendAudit(*db_, NowSeconds(),
                              {.actor = actor_,
                               .action = "operator.set-role",
                               .target = std::string(name),
                               .detail = Json{{"role", role}}}));
  return transaction.Commit();
}

Status OperatorStore::SetDisabled(std::string_view name, bool disabled) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("UPDATE operators SET disabled = ? WHERE name = ? RETURNING name",
                              {int64_t{disabled ? 1 : 0}, name}));
  if (rows.empty()) return NotFound(NotFoundName(name));
  if (disabled) {
    RETURN_IF_ERROR(RequireAnAdmin("disabling '" + std::string(name) + "'"));
    RETURN_IF_ERROR(
        db_->Query("DELETE FROM operator_sessions WHERE operator = ?", {name}).status());
  }
  RETURN_IF_ERROR(AppendAudit(*db_, NowSeconds(),
                              {.actor = actor_,
                               .action = disabled ? "operator.disable" : "operator.enable",
                               .target = std::string(name)}));
  return transaction.Commit();
}

Status OperatorStore::Remove(std::string_view name) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(db_->Query("DELETE FROM operator_sessions WHERE operator = ?", {name}).status());
  RETURN_IF_ERROR(db_->Query("DELETE FROM operator_tokens WHERE operator = ?", {name}).status());
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("DELETE FROM operators WHERE name = ? RETURNING role", {name}));
  if (rows.empty()) return NotFound(NotFoundName(name));
  RETURN_IF_ERROR(RequireAnAdmin("removing '" + std::string(name) + "'"));
  RETURN_IF_ERROR(AppendAudit(*db_, NowSeconds(),
                              {.actor = actor_,
                               .action = "operator.remove",
                               .target = std::string(name),
                               .detail = Json{{"role", rows.Text(0, 0)}}}));
  return transaction.Commit();
}

Result<std::string> OperatorStore::CreateToken(std::string_view name, std::string_view label,
                                               int64_t valid_for_s) {
  if (!label.empty() && !IsValidLabel(label)) {
    return InvalidArgument("a token label is 1-64 of [A-Za-z0-9._-]");
  }
  if (valid_for_s < 0) return InvalidArgument("a token's lifetime is 0 (never expires) or more");
  ASSIGN_OR_RETURN(std::string secret, RandomHex(32));
  const std::string token = std::string(kOperatorTokenPrefix) + secret;
  const int64_t now = NowSeconds();
  const int64_t expires_at = valid_for_s == 0 ? 0 : now + valid_for_s;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows known, db_->Query("SELECT 1 FROM operators WHERE name = ?", {name}));
  if (known.empty()) return NotFound(NotFoundName(name));
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("INSERT INTO operator_tokens(operator, label, token_sha256, "
                              "created_at, expires_at, revoked_at, last_used_at) VALUES(?, ?, ?, "
                              "?, ?, 0, 0) RETURNING id",
                              {name, label, HashSecret(token), now, expires_at}));
  RETURN_IF_ERROR(AppendAudit(
      *db_, now,
      {.actor = actor_,
       .action = "token.create",
       .target = std::string(name),
       .detail =
           Json{{"id", rows.Int(0, 0)},
                {"label", label},
                {"expires_at", expires_at == 0 ? Json("never") : Json(UtcText(expires_at))}}}));
  RETURN_IF_ERROR(transaction.Commit());
  return token;
}

Result<std::vector<OperatorToken>> OperatorStore::Tokens(std::string_view name) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT id, operator, label, created_at, expires_at, revoked_at, "
                              "last_used_at FROM operator_tokens WHERE ? = '' OR operator = ? "
                              "ORDER BY id",
                              {name, name}));
  std::vector<OperatorToken> tokens;
  for (size_t i = 0; i < rows.size(); ++i) {
    tokens.push_back({rows.Int(i, 0), rows.Text(i, 1), rows.Text(i, 2), rows.Int(i, 3),
                      rows.Int(i, 4), rows.Int(i, 5), rows.Int(i, 6)});
  }
  return tokens;
}

Status OperatorStore::RevokeToken(int64_t id) {
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("UPDATE operator_tokens SET revoked_at = CASE WHEN revoked_at = 0 "
                              "THEN ? ELSE revoked_at END WHERE id = ? RETURNING operator, label",
                              {now, id}));
  if (rows.empty()) {
    return NotFound("no operator token " + std::to_string(id) + " (operator token list)");
  }
  RETURN_IF_ERROR(AppendAudit(*db_, now,
                              {.actor = actor_,
                               .action = "token.revoke",
                               .target = rows.Text(0, 0),
                               .detail = Json{{"id", id}, {"label", rows.Text(0, 1)}}}));
  return transaction.Commit();
}

Result<OperatorIdentity> OperatorStore::AuthenticateToken(std::string_view token) {
  if (!token.starts_with(kOperatorTokenPrefix)) {
    return PermissionDenied("not an operator token");
  }
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT t.id, t.expires_at, t.revoked_at, t.last_used_at, o.name, "
                              "o.role, o.disabled FROM operator_tokens t JOIN operators o ON "
                              "o.name = t.operator WHERE t.token_sha256 = ?",
                              {HashSecret(token)}));
  if (rows.empty()) return PermissionDenied("unknown operator token");
  if (rows.Int(0, 2) != 0) return PermissionDenied("operator token revoked");
  if (rows.Int(0, 1) != 0 && rows.Int(0, 1) <= now) {
    return PermissionDenied("operator token expired");
  }
  if (rows.Int(0, 6) != 0) return PermissionDenied("operator account disabled");
  if (now - rows.Int(0, 3) >= 60) {
    RETURN_IF_ERROR(db_->Query("UPDATE operator_tokens SET last_used_at = ? WHERE id = ?",
                               {now, rows.Int(0, 0)})
                        .status());
  }
  return OperatorIdentity{rows.Text(0, 4), rows.Text(0, 5)};
}

bool PasswordMatches(const PendingLogin& login, std::string_view password) {
  if (password.size() > OperatorStore::kMaxPasswordBytes) {
    // Still a check's worth of time: the answer says nothing of the name.
    (void)VerifyPassword(login.password_hash, password.substr(0, OperatorStore::kMaxPasswordBytes));
    return false;
  }
  return VerifyPassword(login.password_hash, password);
}

Result<PendingLogin> OperatorStore::BeginLogin(std::string_view name) {
  // A fixed hash for names that have none: the check costs the same.
  static const std::string kUnknownHash = HashPassword("no account has this password").value();
  PendingLogin login{.name = std::string(name), .password_hash = kUnknownHash};
  if (IsValidLabel(name)) {
    ASSIGN_OR_RETURN(
        SqlRows rows,
        db_->Query("SELECT role, password_hash, disabled FROM operators WHERE name = ?", {name}));
    if (!rows.empty()) {
      login.identity = OperatorIdentity{std::string(name), rows.Text(0, 0)};
      login.password_hash = rows.Text(0, 1);
      login.disabled = rows.Int(0, 2) != 0;
    }
  }
  return login;
}

Result<OperatorSession> OperatorStore::FinishLogin(const PendingLogin& login, bool password_matches,
                                                   std::string_view from) {
  const std::string_view name = login.name;
  const int64_t now = NowSeconds();
  AuditRecord record{.actor = IsValidLabel(name) ? std::string(name) : "?",
                     .action = "login",
                     .target = IsValidLabel(name) ? std::string(name) : "?",
                     .detail = Json{{"from", from}}};
  if (!login.identity || !password_matches || login.disabled) {
    record.outcome = "failed";
    RETURN_IF_ERROR(AppendAudit(*db_, now, record));
    return PermissionDenied("wrong name or password");
  }
  ASSIGN_OR_RETURN(std::string cookie, RandomHex(32));
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  RETURN_IF_ERROR(db_->Query("INSERT INTO operator_sessions(session_sha256, operator, created_at, "
                             "last_seen_at) VALUES(?, ?, ?, ?)",
                             {HashSecret(cookie), name, now, now})
                      .status());
  // Sessions past their absolute expiry are swept at each login.
  RETURN_IF_ERROR(db_->Query("DELETE FROM operator_sessions WHERE created_at <= ? OR "
                             "last_seen_at <= ?",
                             {now - kSessionAbsoluteS, now - kSessionIdleS})
                      .status());
  RETURN_IF_ERROR(AppendAudit(*db_, now, record));
  RETURN_IF_ERROR(transaction.Commit());
  std::string csrf = CsrfTokenOf(cookie);
  return OperatorSession{std::move(cookie), std::move(csrf), *login.identity};
}

Result<OperatorSession> OperatorStore::Login(std::string_view name, std::string_view password,
                                             std::string_view from) {
  ASSIGN_OR_RETURN(PendingLogin login, BeginLogin(name));
  return FinishLogin(login, PasswordMatches(login, password), from);
}

Result<OperatorIdentity> OperatorStore::AuthenticateSession(std::string_view cookie) {
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT s.created_at, s.last_seen_at, o.name, o.role, o.disabled "
                              "FROM operator_sessions s JOIN operators o ON o.name = s.operator "
                              "WHERE s.session_sha256 = ?",
                              {HashSecret(cookie)}));
  if (rows.empty()) return PermissionDenied("no such session");
  if (rows.Int(0, 0) + kSessionAbsoluteS <= now || rows.Int(0, 1) + kSessionIdleS <= now) {
    return PermissionDenied("session expired");
  }
  if (rows.Int(0, 4) != 0) return PermissionDenied("operator account disabled");
  if (now - rows.Int(0, 1) >= 60) {
    RETURN_IF_ERROR(
        db_->Query("UPDATE operator_sessions SET last_seen_at = ? WHERE session_sha256 = ?",
                   {now, HashSecret(cookie)})
            .status());
  }
  return OperatorIdentity{rows.Text(0, 2), rows.Text(0, 3)};
}

Status OperatorStore::Logout(std::string_view cookie) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("DELETE FROM operator_sessions WHERE session_sha256 = "
                                            "? RETURNING operator",
                                            {HashSecret(cookie)}));
  if (rows.empty()) return Status::Ok();
  RETURN_IF_ERROR(
      AppendAudit(*db_, NowSeconds(),
                  {.actor = rows.Text(0, 0), .action = "logout", .target = rows.Text(0, 0)}));
  return transaction.Commit();
}

Status OperatorStore::Audit(const AuditRecord& record) {
  return AppendAudit(*db_, NowSeconds(), record);
}

}  // namespace flotilla::tracker
