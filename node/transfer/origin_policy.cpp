#include "node/transfer/origin_policy.h"

#include <algorithm>
#include <chrono>

namespace flotilla::node::transfer {
namespace {

Duration Seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

}  // namespace

OriginPolicy::OriginPolicy(const OriginPolicyOptions& options, MonoTime started)
    : options_(options), last_peer_progress_(started), no_peer_ahead_since_(started) {}

OriginAction OriginPolicy::Update(const OriginObservation& o) {
  if (o.peer_bytes > last_peer_bytes_) {
    last_peer_bytes_ = o.peer_bytes;
    last_peer_progress_ = o.now;
  }
  if (o.swarm_progress > last_swarm_progress_) {
    last_swarm_progress_ = o.swarm_progress;
    if (o.peers_ahead > 0) last_peer_progress_ = o.now;  // the token holder's site moves
  }
  if (o.peers_ahead == 0 && last_peers_ahead_ > 0) no_peer_ahead_since_ = o.now;
  last_peers_ahead_ = o.peers_ahead;
  samples_.emplace_back(o.now, o.peer_bytes);
  while (samples_.size() > 1 &&
         o.now - samples_[1].first >= Seconds(options_.min_attached_seconds)) {
    samples_.pop_front();
  }
  const bool useless_now =
      o.connected_peers > 0 && o.useful_peers == 0 && o.now != last_peer_progress_;
  if (!useless_now) {
    useless_ = false;
  } else if (!useless_) {
    useless_ = true;
    useless_since_ = o.now;
  }
  const bool alone_now =
      o.tracker_answered && o.connected_peers == 0 && o.lan_peers_connecting == 0;
  if (!alone_now) {
    alone_ = false;
  } else if (!alone_) {
    alone_ = true;
    alone_since_ = o.now;
  }
  if (o.complete || options_.disabled) {
    if (!attached_) return OriginAction::kNone;
    attached_ = false;
    last_reason_ = o.complete ? "complete" : "origin disabled";
    return OriginAction::kDetach;
  }
  if (!attached_) {
    if (!ShouldAttach(o)) return OriginAction::kNone;
    attached_ = true;
    attached_at_ = o.now;
    return OriginAction::kAttach;
  }
  if (!ShouldDetach(o)) return OriginAction::kNone;
  attached_ = false;
  last_peer_progress_ = o.now;  // give peers a full stall period again
  last_reason_ = "peers progress";
  return OriginAction::kDetach;
}

bool OriginPolicy::ShouldAttach(const OriginObservation& o) {
  const double stall =
      o.lan_peers_ahead > 0 ? options_.lan_follower_stall_seconds : options_.stall_seconds;
  if (o.now - last_peer_progress_ >= Seconds(stall)) {
    last_reason_ = "no peer progress";
    return true;
  }
  const MonoTime token_since = std::max(useless_since_, no_peer_ahead_since_);
  if (o.peers_ahead == 0 && useless_ &&
      o.now - token_since >= Seconds(options_.no_useful_peer_seconds)) {
    last_reason_ = "origin token: no connected peer has the missing pieces or is ahead";
    return true;
  }
  if (alone_ && o.now - alone_since_ >= Seconds(options_.no_useful_peer_seconds)) {
    last_reason_ = "origin token: alone in the swarm (no peer connected or connecting on the LAN)";
    return true;
  }
  return false;
}

uint64_t OriginPolicy::PeerBytesInWindow(const OriginObservation& o) const {
  return samples_.empty() ? 0 : o.peer_bytes - samples_.front().second;
}

bool OriginPolicy::ShouldDetach(const OriginObservation& o) const {
  if (o.now - attached_at_ < Seconds(options_.min_attached_seconds)) return false;
  return o.useful_peers > 0 && PeerBytesInWindow(o) >= options_.detach_peer_bytes;
}

}  // namespace flotilla::node::transfer
