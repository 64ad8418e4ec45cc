// Device identity in the tracker's database (docs/identity.md): batch
// enrolment tokens, operators' approvals of a replacement, and the rule that
// decides an enrolment (AdmitEnrolment, run inside DeviceDb::Enroll's
// transaction). Tokens are 256-bit random secrets shown once; only their
// SHA-256 is stored.
// Not thread-safe: one IdentityStore per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

// What an enrolment request proved, as the service checked it.
struct EnrolAdmission {
  bool fleet_token = false;  // it carried serve's fleet token (compared by the caller)
  std::string token_sha256;  // else: the SHA-256 (hex) of the token it carried
  std::string public_key;    // hex; its statement's signature verified by the caller; "" none
  int64_t signed_at_ms = 0;  // the statement's time (unix milliseconds)
};

// What the database holds of an enrolled name.
struct BoundIdentity {
  std::string public_key;  // "" when none is bound
  int64_t signed_at_ms = 0;
  int64_t replace_approved_until = 0;
};

struct EnrolDecision {
  bool bind_key = false;    // bind the request's key (or none) to the name
  std::string token_name;   // the token that admitted it ("" the fleet token)
  bool token_used = false;  // a token admitted it (not the bound key)
};

// The rules of docs/identity.md for an enrolment of `name` (`existing`: its
// row, if enrolled). Counts a use of the batch token it takes. Inside the
// caller's transaction. PermissionDenied for a token refused (unknown,
// expired, revoked, used up) or a replayed statement; AlreadyExists for a
// name bound to another key, or enrolled without one, with no approval.
Result<EnrolDecision> AdmitEnrolment(SqlEngine& db, std::string_view name,
                                     const EnrolAdmission& admission, int64_t now,
                                     const std::optional<BoundIdentity>& existing);

struct EnrolToken {
  std::string name;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int64_t max_uses = 0;  // 0: no limit
  int64_t uses = 0;
  int64_t revoked_at = 0;  // 0: not revoked
  // "active", "expired", "used up" or "revoked" at `now`.
  std::string StateAt(int64_t now) const;
};

class IdentityStore {
 public:
  // Opens (and migrates) the tracker database `url` names.
  static Result<std::unique_ptr<IdentityStore>> Open(const std::string& url, const Clock& clock);

  // A new token named `name` (a label), valid for `valid_for_s` seconds and
  // `max_uses` enrolments (0: no limit). Returns the token, the only time it
  // is known. AlreadyExists for a name in use.
  Result<std::string> CreateToken(std::string_view name, int64_t valid_for_s, int64_t max_uses);
  // Every token, by name.
  Result<std::vector<EnrolToken>> Tokens();
  // NotFound for an unknown name; revoking twice is fine.
  Status RevokeToken(std::string_view name);
  // Lets the next enrolment of device `name` within `valid_for_s` bind a new
  // key once. Returns the unix time it lapses. A decommissioned name is
  // released instead: the next enrolment with a token takes it as a new
  // device (returns 0). NotFound for a name that is neither.
  Result<int64_t> ApproveReplacement(std::string_view name, int64_t valid_for_s);
  // Takes device `name` out of the fleet, in one transaction: its
  // credential and passkey stop working (on every replica within
  // DeviceDb::kSecretRecheck), its key never enrols again, its name waits
  // for ApproveReplacement, and its tags, pins, reports, failures and
  // rollout places are deleted. Returns its device id (whose fleet
  // repository the caller removes). NotFound for an unknown device.
  Result<std::string> Decommission(std::string_view name);
  // The key bound to device `name` ("" none). NotFound for an unknown device.
  Result<std::string> BoundKey(std::string_view name);

  // Who the audit log names for token create/revoke and approvals (written
  // in their transactions, docs/operators.md); LocalActor() until set.
  void set_actor(std::string actor) { actor_ = std::move(actor); }

 private:
  IdentityStore(std::unique_ptr<SqlEngine> db, const Clock& clock);
  int64_t NowSeconds() const;
  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  std::string actor_;
};

}  // namespace flotilla::tracker
