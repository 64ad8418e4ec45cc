#include "tracker/storage/identity_store.h"

#include "tracker/storage/device_db.h"
#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {
namespace {

// The batch token `admission` carried, checked and one use counted; its name.
Result<std::string> UseToken(SqlEngine& db, const EnrolAdmission& admission, int64_t now) {
  if (admission.fleet_token) return std::string();
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("SELECT name, expires_at, max_uses, uses, revoked_at FROM "
                            "enrol_tokens WHERE token_sha256 = ?",
                            {admission.token_sha256}));
  if (rows.empty()) return PermissionDenied("wrong enrolment token");
  const std::string name = rows.Text(0, 0);
  const std::string quoted = "enrolment token '" + name + "'";
  if (rows.Int(0, 4) != 0) {
    return PermissionDenied(quoted + " was revoked at " + UtcText(rows.Int(0, 4)) +
                            ": ask for a new one (flotilla-tracker token create)");
  }
  if (rows.Int(0, 1) <= now) {
    return PermissionDenied(quoted + " expired at " + UtcText(rows.Int(0, 1)) +
                            ": create a new one (flotilla-tracker token create)");
  }
  // Counted only while below the limit, re-checked by the update itself:
  // two replicas taking the last use at once admit one.
  ASSIGN_OR_RETURN(SqlRows used,
                   db.Query("UPDATE enrol_tokens SET uses = uses + 1 WHERE name = ? AND "
                            "(max_uses = 0 OR uses < max_uses) RETURNING uses",
                            {name}));
  if (used.empty()) {
    return PermissionDenied(quoted + " is used up (" + std::to_string(rows.Int(0, 2)) + " of " +
                            std::to_string(rows.Int(0, 2)) +
                            " enrolments): create a new one (flotilla-tracker token create)");
  }
  return name;
}

}  // namespace

Result<EnrolDecision> AdmitEnrolment(SqlEngine& db, std::string_view name,
                                     const EnrolAdmission& admission, int64_t now,
                                     const std::optional<BoundIdentity>& existing) {
  const std::string quoted = "device name '" + std::string(name) + "'";
  if (!admission.public_key.empty()) {
    ASSIGN_OR_RETURN(SqlRows retired,
                     db.Query("SELECT name, decommissioned_at FROM decommissioned_devices "
                              "WHERE public_key = ? LIMIT 1",
                              {admission.public_key}));
    if (!retired.empty()) {
      return PermissionDenied("this device's key was decommissioned (as '" + retired.Text(0, 0) +
                              "', at " + UtcText(retired.Int(0, 1)) +
                              "): it never enrols again; a device put back into service needs "
                              "its data directory cleared (a new key) and a token");
    }
  }
  if (!existing) {
    ASSIGN_OR_RETURN(SqlRows retired,
                     db.Query("SELECT decommissioned_at FROM decommissioned_devices WHERE name = ? "
                              "AND name_released_at = 0 LIMIT 1",
                              {name}));
    if (!retired.empty()) {
      return AlreadyExists(quoted + " was decommissioned at " + UtcText(retired.Int(0, 0)) +
                           ": `flotilla-tracker device approve " + std::string(name) +
                           "` lets a new device take the name");
    }
  }
  if (existing) {
    if (!existing->public_key.empty() && admission.public_key == existing->public_key) {
      // The bound key's own statement: no token needed (it may have expired
      // since), a replay refused.
      if (admission.signed_at_ms <= existing->signed_at_ms) {
        return PermissionDenied("replayed enrolment statement for " + quoted + " (signed at " +
                                UtcText(admission.signed_at_ms / 1000) + ", one of " +
                                UtcText(existing->signed_at_ms / 1000) +
                                " was accepted already): sign a new one");
      }
      return EnrolDecision{.bind_key = false};
    }
    if (existing->replace_approved_until <= now) {
      const std::string held =
          existing->public_key.empty() ? "enrolled without a device key" : "bound to another key";
      return AlreadyExists(quoted + " is taken (" + held + "): `flotilla-tracker device approve " +
                           std::string(name) + "` lets this device replace it");
    }
  }
  ASSIGN_OR_RETURN(std::string token, UseToken(db, admission, now));
  return EnrolDecision{.bind_key = true, .token_name = std::move(token), .token_used = true};
}

std::string EnrolToken::StateAt(int64_t now) const {
  if (revoked_at != 0) return "revoked";
  if (expires_at <= now) return "expired";
  if (max_uses != 0 && uses >= max_uses) return "used up";
  return "active";
}

Result<std::unique_ptr<IdentityStore>> IdentityStore::Open(const std::string& url,
                                                           const Clock& clock) {
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  return std::unique_ptr<IdentityStore>(new IdentityStore(std::move(engine), clock));
}

IdentityStore::IdentityStore(std::unique_ptr<SqlEngine> db, const Clock& clock)
    : db_(std::move(db)), clock_(clock), actor_(LocalActor()) {}

int64_t IdentityStore::NowSeconds() const { return UnixSeconds(clock_); }

Result<std::string> IdentityStore::CreateToken(std::string_view name, int64_t valid_for_s,
                                               int64_t max_uses) {
  ASSIGN_OR_RETURN(std::string token, RandomHex(32));
  const int64_t now = NowSeconds();
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("INSERT INTO enrol_tokens(name, token_sha256, created_at, "
                              "expires_at, max_uses, uses, revoked_at) VALUES(?, ?, ?, ?, ?, 0, "
                              "0) ON CONFLICT DO NOTHING RETURNING name",
                              {name, HashSecret(token), now, now + valid_for_s, max_uses}));
  if (rows.empty()) {
    return AlreadyExists("a token named '" + std::string(name) +
                         "' exists (token list shows them; names are never reused)");
  }
  RETURN_IF_ERROR(AppendAudit(
      *db_, now,
      {.actor = actor_,
       .action = "enrol-token.create",
       .target = std::string(name),
       .detail = Json{{"expires_at", UtcText(now + valid_for_s)}, {"max_uses", max_uses}}}));
  RETURN_IF_ERROR(transaction.Commit());
  return token;
}

Result<std::vector<EnrolToken>> IdentityStore::Tokens() {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT name, created_at, expires_at, max_uses, uses, revoked_at "
                              "FROM enrol_tokens ORDER BY name"));
  std::vector<EnrolToken> tokens;
  for (size_t i = 0; i < rows.size(); ++i) {
    tokens.push_back({rows.Text(i, 0), rows.Int(i, 1), rows.Int(i, 2), rows.Int(i, 3),
                      rows.Int(i, 4), rows.Int(i, 5)});
  }
  return tokens;
}

Status IdentityStore::RevokeToken(std::string_view name) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("UPDATE enrol_tokens SET revoked_at = CASE WHEN revoked_at = 0 "
                              "THEN ? ELSE revoked_at END WHERE name = ? RETURNING name",
                              {NowSeconds(), name}));
  if (rows.empty()) return NotFound("no token named '" + std::string(name) + "'");
  RETURN_IF_ERROR(
      AppendAudit(*db_, NowSeconds(),
                  {.actor = actor_, .action = "enrol-token.revoke", .target = std::string(name)}));
  return transaction.Commit();
}

Result<int64_t> IdentityStore::ApproveReplacement(std::string_view name, int64_t valid_for_s) {
  const int64_t now = NowSeconds();
  const int64_t until = now + valid_for_s;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("UPDATE devices SET replace_approved_until = ? WHERE name = ? "
                              "RETURNING device_id",
                              {until, name}));
  if (rows.empty()) {
    ASSIGN_OR_RETURN(SqlRows released,
                     db_->Query("UPDATE decommissioned_devices SET name_released_at = ? WHERE "
                                "name = ? AND name_released_at = 0 RETURNING device_id",
                                {now, name}));
    if (!released.empty()) {
      RETURN_IF_ERROR(AppendAudit(
          *db_, now,
          {.actor = actor_, .action = "device.release-name", .target = std::string(name)}));
      RETURN_IF_ERROR(transaction.Commit());
      return 0;
    }
  }
  if (rows.empty()) {
    return NotFound("no device named '" + std::string(name) +
                    "' (a new name needs no approval: it enrols with a token)");
  }
  RETURN_IF_ERROR(AppendAudit(*db_, NowSeconds(),
                              {.actor = actor_,
                               .action = "device.approve",
                               .target = std::string(name),
                               .detail = Json{{"until", UtcText(until)}}}));
  RETURN_IF_ERROR(transaction.Commit());
  return until;
}

Result<std::string> IdentityStore::Decommission(std::string_view name) {
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  ASSIGN_OR_RETURN(SqlRows rows, db_->Query("SELECT device_id, public_key FROM devices WHERE "
                                            "name = ?",
                                            {name}));
  if (rows.empty()) return NotFound("no device named '" + std::string(name) + "'");
  const std::string device_id = rows.Text(0, 0);
  RETURN_IF_ERROR(db_->Query("INSERT INTO decommissioned_devices(device_id, name, public_key, "
                             "decommissioned_at, name_released_at) VALUES(?, ?, ?, ?, 0)",
                             {device_id, name, rows.Text(0, 1), NowSeconds()})
                      .status());
  // Its own configuration (docs/config.md: the device level's scope is its id).
  RETURN_IF_ERROR(
      db_->Query("DELETE FROM config_values WHERE level = 'device' AND scope = ?", {device_id})
          .status()
          .WithContext("decommission: config_values"));
  // Every table that names the device (docs/tracker.md, the schema), then the device.
  for (const char* table :
       {"rollout_devices", "device_status", "failures", "device_tags", "device_pins",
        "report_sequence", "log_requests", "secret_boxes", "devices"}) {
    RETURN_IF_ERROR(
        db_->Query(std::string("DELETE FROM ") + table + " WHERE device_id = ?", {device_id})
            .status()
            .WithContext(std::string("decommission: ") + table));
  }
  RETURN_IF_ERROR(AppendAudit(*db_, NowSeconds(),
                              {.actor = actor_,
                               .action = "device.decommission",
                               .target = std::string(name),
                               .detail = Json{{"device_id", device_id}}}));
  RETURN_IF_ERROR(transaction.Commit());
  return device_id;
}

Result<std::string> IdentityStore::BoundKey(std::string_view name) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT public_key FROM devices WHERE name = ?", {name}));
  if (rows.empty()) return NotFound("no device named '" + std::string(name) + "'");
  return rows.Text(0, 0);
}

}  // namespace flotilla::tracker
