#include "node/daemon/metadata_follower.h"

#include <spdlog/spdlog.h>

#include "node/daemon/backoff.h"

namespace flotilla::node {
namespace {

bool IsUnreachable(const Status& st) {
  return st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace

MetadataFollower::MetadataFollower(FollowerOptions options, MetadataSource& source,
                                   const Clock& clock, Executor& loop, FollowerEvents events)
    : options_(std::move(options)),
      source_(source),
      clock_(clock),
      events_(std::move(events)),
      timer_(loop),
      random_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()) {}

void MetadataFollower::RefreshNow() {
  failures_ = 0;
  timer_.Schedule(Duration::zero(), [this] { Refresh(); });
}

void MetadataFollower::Refresh() {
  Status st = RefreshMetadata();
  ++(st.ok() ? status_.refreshes_ok : status_.refreshes_failed);
  if (st.ok()) {
    status_.last_refresh_unix = UnixSeconds(clock_);
    status_.last_refresh_error.clear();
  } else {
    if (st.ToString() != status_.last_refresh_error) {
      spdlog::warn("metadata refresh: {}", st.ToString());
      events_.error("cannot update: " + st.ToString());
    }
    status_.last_refresh_error = st.ToString();
  }
  timer_.Schedule(NextDelay(st.ok()), [this] { Refresh(); });
}

Status MetadataFollower::EnrolIfNeeded() {
  if (credentials_) return Status::Ok();
  auto enrolled = source_.Enrol();
  if (!enrolled.ok()) {
    events_.error("enrolment: " + enrolled.status().ToString());
    return enrolled.status();
  }
  credentials_ = *enrolled;
  events_.enrolled(*credentials_);
  return Status::Ok();
}

Status MetadataFollower::RefreshFrom(const std::string& base_url) {
  ASSIGN_OR_RETURN(auto releases, source_.Refresh(base_url));
  events_.releases(releases);
  return Status::Ok();
}

Status MetadataFollower::RefreshMetadata() {
  // A tracker that could not be reached to enrol is not waited for twice.
  Status enrolled = EnrolIfNeeded();
  Status from_tracker =
      IsUnreachable(enrolled) ? enrolled : RefreshFrom(options_.tracker_metadata_url);
  status_.tracker_unreachable = IsUnreachable(from_tracker);
  if (from_tracker.ok() || !IsUnreachable(from_tracker)) {
    return from_tracker.WithContext("from the tracker");
  }
  const uint64_t ours = source_.TrustedTimestampVersion();
  for (const Neighbour& n : source_.Neighbours()) {
    if (n.timestamp_version <= ours) continue;
    Status from_neighbour = RefreshFrom(n.http_base + "/metadata");
    if (from_neighbour.ok()) {
      spdlog::info("tracker unreachable; metadata timestamp v{} taken from neighbour {}",
                   n.timestamp_version, n.device);
      return Status::Ok();
    }
    spdlog::warn("neighbour {}: {}", n.device, from_neighbour.ToString());
  }
  return from_tracker.WithContext("from the tracker (and no LAN neighbour had newer metadata)");
}

Duration MetadataFollower::NextDelay(bool succeeded) {
  using std::chrono::seconds;
  failures_ = succeeded ? 0 : std::min<uint32_t>(failures_ + 1, 30);
  const Duration base = succeeded ? Duration(seconds(options_.refresh_interval_s))
                                  : Backoff(seconds(5), failures_, seconds(options_.max_backoff_s));
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  return std::chrono::duration_cast<Duration>(base * jitter(random_));
}

}  // namespace flotilla::node
