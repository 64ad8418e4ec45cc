// The online signing duties of a replica under the signing lease
// (tracker/storage/signing_lease.h, docs/scale.md).
//
// SigningDuty is the MetadataRefresher `serve` schedules: every call renews
// the lease (so it runs at least every TTL/3), and only while this replica
// holds it does it run the repository's re-signing (`inner`), inside a
// signing turn that gives it the highest versions the database recorded (it
// signs above them) and records the timestamp, snapshot and targets versions
// it leaves current, after checking that the repository's snapshot and
// targets are the ones the database recorded last. A replica that loses
// the lease (a failed renewal, a refused turn) logs it and stops signing at
// once; it keeps serving devices.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "tracker/publish/metadata_refresher.h"
#include "tracker/service/metrics.h"
#include "tracker/storage/signing_lease.h"

namespace flotilla::tracker {

class SigningDuty final : public MetadataRefresher {
 public:
  // `metadata_dir` is the repository's metadata/ directory, which `inner`
  // writes; `metrics` (may be null) shows the lease. All must outlive the duty.
  SigningDuty(SigningLease& lease, MetadataRefresher& inner, std::string metadata_dir,
              TrackerMetrics* metrics = nullptr)
      : lease_(lease), inner_(inner), metadata_dir_(std::move(metadata_dir)), metrics_(metrics) {}

  // Errors of the re-signing itself are logged and retried a minute later,
  // without giving up the lease; the returned wait is at most TTL/3.
  Result<Duration> Refresh(WallTime now) override;

  // A duty of the lease holder outside the signing turn (no database
  // transaction held; e.g. the rollouts' evaluation), called while the lease
  // is held, when the wait it last returned has passed. Must outlive this.
  void SetHolderDuty(MetadataRefresher* duty) { holder_duty_ = duty; }

  // Whether this replica held the lease at its last renewal; any thread
  // (the webhook sender sends only while it does).
  bool holding() const { return holding_.load(); }

 private:
  // Renews the lease and logs a change of holder; true when held.
  bool RenewLease();
  Status SignTurn(WallTime now);
  // FailedPrecondition when the current snapshot or targets is below the
  // version recorded for its role, or is not the document recorded under its
  // version: a repository that is not the one the replicas share would sign
  // content devices already went past. (A timestamp behind is re-signed
  // above the recorded version.)
  Status CheckAgreesWithDatabase(const SigningLease::PublishedVersions& latest);

  SigningLease& lease_;
  MetadataRefresher& inner_;
  const std::string metadata_dir_;
  TrackerMetrics* const metrics_;
  std::atomic<bool> holding_{false};
  WallTime next_signing_{};
  MetadataRefresher* holder_duty_ = nullptr;
  WallTime next_holder_duty_{};
};

// Several duties of the lease holder as one (SigningDuty::SetHolderDuty),
// each called when the wait it last returned has passed. An error is
// logged and that duty is called again a minute later; the others run on.
class HolderDuties final : public MetadataRefresher {
 public:
  // Each must outlive this.
  explicit HolderDuties(std::vector<MetadataRefresher*> duties);
  Result<Duration> Refresh(WallTime now) override;

 private:
  struct Scheduled {
    MetadataRefresher* duty;
    WallTime next{};
  };
  std::vector<Scheduled> duties_;
};

// The current timestamp, snapshot and targets documents in `metadata_dir`:
// their versions and the SHA-256 of their bytes.
Result<std::vector<Publication>> CurrentPublications(const std::string& metadata_dir);

}  // namespace flotilla::tracker
