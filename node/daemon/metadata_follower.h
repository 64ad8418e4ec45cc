// The metadata follower: keeps the node's signed metadata fresh and hands on
// the newest verified release of each followed app (docs/node.md, "Parts").
//
// Schedule: a refresh every refresh_interval_s; a failed one is retried after
// 5 s, doubling with each failure in a row up to max_backoff_s; every wait
// is jittered by +-10% so a fleet does not refresh in step. RefreshNow()
// refreshes at once and forgets the backoff.
// Each refresh first enrols when the device has no credentials yet (a
// failure goes to the next report and the refresh goes on: metadata needs no
// credentials; but a tracker that could not be reached to enrol is not asked
// for metadata in the same refresh). When the tracker is unreachable (Unavailable or
// DeadlineExceeded), a LAN neighbour whose beacon announces a newer timestamp
// than ours is asked instead; its bytes are verified exactly like the
// tracker's.
//
// Thread-safety: none; everything runs on the loop. A refresh holds the loop
// for its HTTP exchanges (bounded by the client's timeouts).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/release.h"
#include "node/daemon/enrolment.h"
#include "node/daemon/lan_exchange.h"

namespace flotilla::node {

// Where verified metadata comes from: the TUF client over HTTP in the daemon
// (tuf_metadata_source.h), a script in tests.
class MetadataSource {
 public:
  virtual ~MetadataSource() = default;
  // The stored credentials, or an enrolment with the fleet token.
  virtual Result<DeviceCredentials> Enrol() = 0;
  // Refreshes the trusted metadata from `base_url` (the tracker's or a
  // neighbour's /metadata) and returns the newest release of each app the
  // verified targets name.
  virtual Result<std::map<std::string, metadata::Release>> Refresh(const std::string& base_url) = 0;
  // signed.version of the trusted timestamp (0: none).
  virtual uint64_t TrustedTimestampVersion() = 0;
  // Neighbours heard lately, newest timestamp first.
  virtual std::vector<Neighbour> Neighbours() = 0;
};

struct FollowerOptions {
  std::string tracker_metadata_url;  // "<tracker_url>/metadata"
  uint32_t refresh_interval_s = 300;
  uint32_t max_backoff_s = 1800;
  uint64_t jitter_seed = 0;  // 0: a random seed
};

struct FollowerEvents {
  std::function<void(const DeviceCredentials&)> enrolled;
  std::function<void(const std::map<std::string, metadata::Release>&)> releases;
  std::function<void(const std::string& error)> error;  // for the next report
};

// What the follower did, for the node's view. Counters since it started.
struct FollowerStatus {
  int64_t last_refresh_unix = 0;  // last success (0: never)
  std::string last_refresh_error;
  uint64_t refreshes_ok = 0;
  uint64_t refreshes_failed = 0;
  // The last refresh could not reach the tracker (Unavailable or
  // DeadlineExceeded): offline validity windows count (docs/metadata.md).
  bool tracker_unreachable = false;
};

class MetadataFollower {
 public:
  MetadataFollower(FollowerOptions options, MetadataSource& source, const Clock& clock,
                   Executor& loop, FollowerEvents events);

  // Credentials the device already has (stored, or from an enrolment at start).
  void SetCredentials(DeviceCredentials credentials) { credentials_ = std::move(credentials); }
  const std::optional<DeviceCredentials>& credentials() const { return credentials_; }

  // The first refresh now, then on the schedule.
  void Start() {
    timer_.Schedule(Duration::zero(), [this] { Refresh(); });
  }
  void Stop() { timer_.Cancel(); }
  // Refreshes now; the backoff starts afresh.
  void RefreshNow();
  const FollowerStatus& status() const { return status_; }

 private:
  void Refresh();
  Status RefreshMetadata();
  Status RefreshFrom(const std::string& base_url);
  Status EnrolIfNeeded();
  // The wait before the next refresh, jittered.
  Duration NextDelay(bool succeeded);

  FollowerOptions options_;
  MetadataSource& source_;
  const Clock& clock_;
  FollowerEvents events_;
  TimerSlot timer_;
  std::optional<DeviceCredentials> credentials_;
  FollowerStatus status_;
  uint32_t failures_ = 0;  // refreshes failed in a row
  std::mt19937_64 random_;
};

}  // namespace flotilla::node
