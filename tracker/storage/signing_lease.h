// The signing lease: which tracker replica does the online signing duties
// (re-signing the timestamp and snapshot before they expire), so that
// several `serve` processes over one database never sign at once
// (docs/scale.md).
//
// The lease is one row of table signing_lease: its holder, an epoch that
// grows by one on every takeover, and an expiry. A replica takes the lease
// when it is free or expired and renews it while it holds it (every TTL/3);
// a replica whose renewal fails has lost it and stops signing. Every signing
// turn runs in one transaction that first checks (and, on PostgreSQL, locks)
// the lease row at the holder's epoch and unexpired, takes each role's next
// version from the highest one recorded (so a replica whose files are behind
// never reuses a version), then records what it published as (role,
// version, sha256) under a unique (role, version): a replica that lost the
// lease signs nothing, a takeover waits for a turn in progress, and no
// version is ever recorded with two different documents.
//
// Expiry is judged by each replica's own clock (`clock`): replicas keep
// their clocks in sync (NTP) to well under the TTL.
// Thread-safety: none; one SigningLease per thread (it owns its connection).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {

// A document a signing turn published.
struct Publication {
  std::string role;  // "timestamp", "snapshot", "targets"
  uint64_t version = 0;
  std::string sha256;  // hex SHA-256 of the document's bytes
};

class SigningLease {
 public:
  static constexpr Duration kMaxTtl = std::chrono::seconds(30);

  // Opens the database `url` names (migrating its schema) for the lease of
  // `holder` (unique per process: DefaultLeaseHolder()). REQUIRES: 0 < ttl <= kMaxTtl.
  static Result<std::unique_ptr<SigningLease>> Open(const std::string& url, const Clock& clock,
                                                    std::string holder, Duration ttl);

  // Takes the lease when it is free, expired or ours, for another TTL from
  // now. True when this replica holds it (epoch() is then its epoch); false
  // when another replica holds an unexpired lease.
  Result<bool> Renew();
  // Ends the lease at once when this replica holds it (clean shutdown), so
  // that another replica can take it without waiting for the expiry.
  Status Release();

  // The highest version recorded for each role that has one.
  using PublishedVersions = std::map<std::string, uint64_t>;
  using SignFunction = std::function<Result<std::vector<Publication>>(const PublishedVersions&)>;

  // One signing turn: in one transaction, checks that the lease is still
  // held at epoch() and unexpired, reads the highest version recorded for
  // each role, runs `sign` with them (it signs every new version above
  // them, writes its files atomically and returns what is current), records
  // each returned document and commits. FailedPrecondition (and held()
  // becomes false) when the lease is no longer ours: `sign` did not run.
  // AlreadyExists when a returned (role, version) is recorded with another
  // document: nothing is recorded. Recording the same document again is a
  // no-op.
  Status RunSigningTurn(const SignFunction& sign);

  // The highest version recorded for `role`; 0 when none.
  Result<uint64_t> LatestVersion(const std::string& role);
  // The highest version recorded for each role.
  Result<PublishedVersions> LatestVersions();
  // The SHA-256 (hex) recorded for `role` version `version`; "" when none.
  Result<std::string> RecordedSha256(const std::string& role, uint64_t version);

  bool held() const { return held_; }
  int64_t epoch() const { return epoch_; }
  const std::string& holder() const { return holder_; }
  Duration ttl() const { return ttl_; }

 private:
  SigningLease(std::unique_ptr<SqlEngine> db, const Clock& clock, std::string holder, Duration ttl)
      : db_(std::move(db)), clock_(clock), holder_(std::move(holder)), ttl_(ttl) {}
  int64_t NowMs() const;
  Status Record(const Publication& publication);

  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  const std::string holder_;
  const Duration ttl_;
  bool held_ = false;
  int64_t epoch_ = 0;
};

// An operator command's publication (`publish`, `accept`): the documents it
// writes into the repository outside any signing turn, recorded in the same
// table as the turns' under epoch kOperatorEpoch (no lease epoch is 0), so
// that no version is ever recorded with two documents and the holder's next
// turn signs above them (docs/scale.md). Begin opens one transaction that
// locks the lease row (a turn in progress finishes first, and the next one
// waits for the commit) and reads the highest versions recorded; the command
// signs above them, calls Record for each document before any of its files
// is written, and Commit once the timestamp made them current (so that no
// version is recorded that was never current, which would stop the
// holder's turns: signing_duty.h). Destroyed without Commit: nothing is
// recorded.
class OperatorPublication {
 public:
  static constexpr int64_t kOperatorEpoch = 0;

  // Opens the database `url` names (migrating its schema).
  static Result<std::unique_ptr<OperatorPublication>> Begin(const std::string& url,
                                                            const Clock& clock);
  ~OperatorPublication();

  // The highest version recorded for each role, read under the lock.
  const SigningLease::PublishedVersions& latest() const { return latest_; }
  // AlreadyExists when `publication`'s (role, version) is recorded with
  // another document; recording the same document again is a no-op.
  Status Record(const Publication& publication);
  Status Commit();

 private:
  OperatorPublication(std::unique_ptr<SqlEngine> db, const Clock& clock)
      : db_(std::move(db)), clock_(clock) {}

  std::unique_ptr<SqlEngine> db_;
  const Clock& clock_;
  std::optional<SqlTransaction> transaction_;
  SigningLease::PublishedVersions latest_;
};

// "HOSTNAME:PID:RANDOM": a holder id no other process shares.
std::string DefaultLeaseHolder();

}  // namespace flotilla::tracker
