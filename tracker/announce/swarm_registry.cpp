#include "tracker/announce/swarm_registry.h"

#include <algorithm>

namespace flotilla::tracker {
namespace {

bool SameSite(const std::string& site_a, const IpAddress& addr_a, const std::string& site_b,
              const IpAddress& addr_b) {
  if (!site_a.empty() && site_a == site_b) return true;
  return addr_a == addr_b;
}

}  // namespace

SwarmRegistry::SwarmRegistry(const Clock& clock, SwarmLimits limits)
    : clock_(clock), limits_(limits), last_sweep_(clock.MonotonicNow()), shuffle_rng_(7) {}

Result<AnnounceResult> SwarmRegistry::Announce(const AnnouncerIdentity& who,
                                               const AnnounceRequest& request) {
  const MonoTime now = clock_.MonotonicNow();
  std::lock_guard lock(mu_);
  if (now - last_sweep_ > limits_.peer_ttl / 4) SweepExpiredLocked(now);

  const std::string key = who.device_id + '\0' + request.peer_id;
  auto swarm_it = swarms_.find(request.info_hash);
  if (request.event == AnnounceEvent::kStopped) {
    if (swarm_it != swarms_.end() && swarm_it->second.erase(key) > 0) {
      --peers_;
      if (swarm_it->second.empty()) swarms_.erase(swarm_it);
    }
    return AnnounceResult{};
  }
  if (swarm_it == swarms_.end() || !swarm_it->second.contains(key)) {
    if (peers_ >= limits_.max_peers) {
      return ResourceExhausted("tracker is full: " + std::to_string(peers_) + " peers");
    }
    swarm_it = swarms_.try_emplace(request.info_hash).first;
    swarm_it->second.emplace(key, Peer{});
    ++peers_;
  }
  Peer& self = swarm_it->second[key];
  self.observed = who.observed_address;
  self.lan = request.lan_ip;
  self.port = request.port;
  self.peer_id = request.peer_id;
  self.site = who.site;
  self.seeding = request.left.has_value() && *request.left == 0;
  self.last_seen = now;
  return SelectPeersLocked(swarm_it->second, key, self, request.numwant, now);
}

AnnounceResult SwarmRegistry::SelectPeersLocked(const Swarm& swarm, const std::string& self_key,
                                                const Peer& self, int numwant, MonoTime now) {
  AnnounceResult result;
  std::vector<PeerContact> near, far;
  for (const auto& [key, peer] : swarm) {
    if (now - peer.last_seen > limits_.peer_ttl) continue;  // expired, not yet swept
    peer.seeding ? ++result.complete : ++result.incomplete;
    if (key == self_key) continue;
    if (SameSite(self.site, self.observed, peer.site, peer.observed)) {
      near.push_back({peer.lan.value_or(peer.observed), peer.port, peer.peer_id});
    } else {
      far.push_back({peer.observed, peer.port, peer.peer_id});
    }
  }
  // Shuffle within each group so that a large swarm spreads load over its members.
  std::shuffle(near.begin(), near.end(), shuffle_rng_);
  std::shuffle(far.begin(), far.end(), shuffle_rng_);
  for (auto* group : {&near, &far}) {
    for (auto& contact : *group) {
      if (static_cast<int>(result.peers.size()) >= numwant) return result;
      result.peers.push_back(std::move(contact));
    }
  }
  return result;
}

void SwarmRegistry::SweepExpiredLocked(MonoTime now) {
  last_sweep_ = now;
  for (auto swarm_it = swarms_.begin(); swarm_it != swarms_.end();) {
    auto& swarm = swarm_it->second;
    for (auto it = swarm.begin(); it != swarm.end();) {
      if (now - it->second.last_seen > limits_.peer_ttl) {
        it = swarm.erase(it);
        --peers_;
      } else {
        ++it;
      }
    }
    swarm_it = swarm.empty() ? swarms_.erase(swarm_it) : std::next(swarm_it);
  }
}

size_t SwarmRegistry::swarm_count() const {
  std::lock_guard lock(mu_);
  return swarms_.size();
}

size_t SwarmRegistry::peer_count() const {
  std::lock_guard lock(mu_);
  return peers_;
}

}  // namespace flotilla::tracker
