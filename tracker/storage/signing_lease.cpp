#include "tracker/storage/signing_lease.h"

#include <unistd.h>

#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

Result<std::string> RecordedDocument(SqlEngine& db, const std::string& role, uint64_t version) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("SELECT sha256 FROM metadata_versions WHERE role = ? AND version = ?",
                            {role, static_cast<int64_t>(version)}));
  return rows.empty() ? std::string() : rows.Text(0, 0);
}

Result<SigningLease::PublishedVersions> ReadLatestVersions(SqlEngine& db) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db.Query("SELECT role, MAX(version) FROM metadata_versions GROUP BY role"));
  SigningLease::PublishedVersions latest;
  for (size_t i = 0; i < rows.size(); ++i) {
    latest[rows.Text(i, 0)] = static_cast<uint64_t>(rows.Int(i, 1));
  }
  return latest;
}

// Records `p` under `epoch`; AlreadyExists when its (role, version) holds
// another document.
Status RecordPublication(SqlEngine& db, const Publication& p, int64_t epoch, int64_t now_s) {
  RETURN_IF_ERROR(db.Query("INSERT INTO metadata_versions(role, version, sha256, epoch, "
                           "published_at) VALUES(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           {p.role, static_cast<int64_t>(p.version), p.sha256, epoch, now_s})
                      .status());
  ASSIGN_OR_RETURN(std::string recorded, RecordedDocument(db, p.role, p.version));
  if (recorded != p.sha256) {
    return AlreadyExists(p.role + " version " + std::to_string(p.version) +
                         " is already published with another document");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SigningLease>> SigningLease::Open(const std::string& url, const Clock& clock,
                                                         std::string holder, Duration ttl) {
  if (ttl <= Duration::zero() || ttl > kMaxTtl) {
    return InvalidArgument("signing lease TTL must be above 0 and at most 30 s");
  }
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  return std::unique_ptr<SigningLease>(
      new SigningLease(std::move(engine), clock, std::move(holder), ttl));
}

int64_t SigningLease::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

Result<bool> SigningLease::Renew() {
  const int64_t now = NowMs();
  const int64_t expires = now + std::chrono::duration_cast<std::chrono::milliseconds>(ttl_).count();
  // One statement: insert the first lease, or take over an expired one (a
  // new epoch), or extend our own (same epoch); otherwise no row comes back.
  auto rows = db_->Query(
      "INSERT INTO signing_lease(name, holder, epoch, expires_at_ms) VALUES('signing', ?, 1, ?) "
      "ON CONFLICT(name) DO UPDATE SET "
      "epoch = CASE WHEN signing_lease.holder = excluded.holder THEN signing_lease.epoch "
      "ELSE signing_lease.epoch + 1 END, "
      "holder = excluded.holder, expires_at_ms = excluded.expires_at_ms "
      "WHERE signing_lease.holder = excluded.holder OR signing_lease.expires_at_ms <= ? "
      "RETURNING epoch",
      {holder_, expires, now});
  if (!rows.ok()) {
    held_ = false;  // unconfirmed: do not sign on a lease that may be gone
    return rows.status().WithContext("renew the signing lease");
  }
  held_ = !rows->empty();
  if (held_) epoch_ = rows->Int(0, 0);
  return held_;
}

Status SigningLease::Release() {
  if (!held_) return Status::Ok();
  held_ = false;
  return db_
      ->Query(
          "UPDATE signing_lease SET expires_at_ms = 0 WHERE name = 'signing' AND holder = ? "
          "AND epoch = ?",
          {holder_, epoch_})
      .status()
      .WithContext("release the signing lease");
}

Status SigningLease::RunSigningTurn(const SignFunction& sign) {
  if (!held_) return FailedPrecondition("the signing lease is not held");
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(*db_));
  if (db_->kind() == SqlEngineKind::kPostgresql) {
    // A holder stopped mid-turn (SIGSTOP, a stalled VM) must not keep the
    // row locked past the TTL: the server ends its session, the lock goes,
    // and its commit fails.
    const auto ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ttl_).count();
    RETURN_IF_ERROR(db_->ExecScript("SET LOCAL idle_in_transaction_session_timeout = " +
                                    std::to_string(ttl_ms)));
  }
  // Writing the row locks it until the commit (PostgreSQL): a takeover waits
  // for this turn, and a turn after a takeover finds no row at our epoch.
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("UPDATE signing_lease SET expires_at_ms = expires_at_ms "
                              "WHERE name = 'signing' AND holder = ? AND epoch = ? "
                              "AND expires_at_ms > ? RETURNING epoch",
                              {holder_, epoch_, NowMs()}));
  if (rows.empty()) {
    held_ = false;
    return FailedPrecondition("the signing lease (epoch " + std::to_string(epoch_) +
                              ") expired or was taken over");
  }
  // Read under the lock: no other turn records a version until the commit.
  ASSIGN_OR_RETURN(PublishedVersions latest, LatestVersions());
  ASSIGN_OR_RETURN(std::vector<Publication> published, sign(latest));
  for (const Publication& publication : published) RETURN_IF_ERROR(Record(publication));
  return transaction.Commit();
}

Status SigningLease::Record(const Publication& p) {
  return RecordPublication(*db_, p, epoch_, NowMs() / 1000);
}

Result<uint64_t> SigningLease::LatestVersion(const std::string& role) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   db_->Query("SELECT COALESCE(MAX(version), 0) FROM metadata_versions "
                              "WHERE role = ?",
                              {role}));
  return static_cast<uint64_t>(rows.Int(0, 0));
}

Result<std::string> SigningLease::RecordedSha256(const std::string& role, uint64_t version) {
  return RecordedDocument(*db_, role, version);
}

Result<SigningLease::PublishedVersions> SigningLease::LatestVersions() {
  return ReadLatestVersions(*db_);
}

Result<std::unique_ptr<OperatorPublication>> OperatorPublication::Begin(const std::string& url,
                                                                        const Clock& clock) {
  ASSIGN_OR_RETURN(auto engine, SqlEngine::Open(url));
  RETURN_IF_ERROR_CTX(MigrateTrackerSchema(*engine), "open " + RedactDatabaseUrl(url));
  std::unique_ptr<OperatorPublication> publication(
      new OperatorPublication(std::move(engine), clock));
  SqlEngine& db = *publication->db_;
  ASSIGN_OR_RETURN(SqlTransaction transaction, SqlTransaction::Begin(db));
  publication->transaction_.emplace(std::move(transaction));
  if (db.kind() == SqlEngineKind::kPostgresql) {
    // A command stopped while it holds the lock (SIGSTOP, a stalled VM) must
    // not stop the signing turns for longer than a lease TTL.
    const auto ttl_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(SigningLease::kMaxTtl);
    RETURN_IF_ERROR(db.ExecScript("SET LOCAL idle_in_transaction_session_timeout = " +
                                  std::to_string(ttl_ms.count())));
  }
  // Writing the lease row (when there is one) locks it until the commit, as
  // a signing turn does: the turns and this publication take turns. SQLite's
  // BEGIN IMMEDIATE already holds the database's one write lock.
  RETURN_IF_ERROR(
      db.Query("UPDATE signing_lease SET expires_at_ms = expires_at_ms WHERE name = 'signing'")
          .status()
          .WithContext("lock the signing lease"));
  ASSIGN_OR_RETURN(publication->latest_, ReadLatestVersions(db));
  return publication;
}

OperatorPublication::~OperatorPublication() { transaction_.reset(); }

Status OperatorPublication::Record(const Publication& publication) {
  if (!transaction_) return FailedPrecondition("the publication is already committed");
  const int64_t now_s = UnixSeconds(clock_);
  return RecordPublication(*db_, publication, kOperatorEpoch, now_s);
}

Status OperatorPublication::Commit() {
  if (!transaction_) return FailedPrecondition("the publication is already committed");
  Status st = transaction_->Commit();
  transaction_.reset();
  return st.WithContext("record the published versions");
}

std::string DefaultLeaseHolder() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  auto random = RandomHex(4);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" +
         (random.ok() ? *random : std::string("0"));
}

}  // namespace flotilla::tracker
