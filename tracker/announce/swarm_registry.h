// In-memory swarms: who is in which torrent, with expiry.
//
// A peer is keyed by (device id, peer_id), so one enrolled device can neither
// evict nor impersonate another's entry. Entries expire `peer_ttl` after their
// last announce. Memory is bounded by `max_peers` in total and by
// `max_peers_per_device` for each device (so also the swarms it is in); a
// device holds at most `max_peers_per_device_swarm` peer ids in one swarm,
// its oldest making room for a new one (a restarted client's new peer id).
// A peer that announced through a proxy (AnnounceRequest::proxied) is counted
// and answered but never handed out: its observed address is the proxy's.
// An announce costs O(numwant + log n), whatever the swarm's size: peers are
// sampled at random from indexes, never copied or shuffled as a whole.
// Thread-safe (one mutex: the tracker's announce path is short and the server
// has one network thread).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/announce/announce_request.h"
#include "tracker/announce/ip_address.h"

namespace flotilla::tracker {

class PeerReputation;
struct SwarmPeer;  // the registry's own records (swarm_registry.cpp)
struct Swarm;

struct SwarmLimits {
  Duration peer_ttl = std::chrono::minutes(31);
  size_t max_peers = 1'000'000;
  size_t max_peers_per_device = 1024;
  size_t max_peers_per_device_swarm = 4;
};

// Who is announcing, as the server saw it.
struct AnnouncerIdentity {
  std::string device_id;
  IpAddress observed_address;  // the TCP peer address (the site's public address behind NAT)
  std::string site;            // announce `site`, else the device's enrolled site; may be empty
};

struct PeerContact {
  IpAddress address;
  uint16_t port = 0;
  std::string peer_id;
};

struct AnnounceResult {
  std::vector<PeerContact> peers;  // same-site peers first
  int64_t complete = 0;            // seeders in the swarm (left == 0)
  int64_t incomplete = 0;          // everyone else
};

class SwarmRegistry {
 public:
  // `reputation` (may be null) names peers not to hand out; it must outlive
  // the registry and is used under the registry's lock.
  SwarmRegistry(const Clock& clock, SwarmLimits limits, const PeerReputation* reputation = nullptr);
  ~SwarmRegistry();

  // Records the announce and returns up to `numwant` other peers of the swarm.
  // Fails with Unavailable when the registry is full and ResourceExhausted
  // when the device is at its own cap.
  Result<AnnounceResult> Announce(const AnnouncerIdentity& who, const AnnounceRequest& request);

  size_t swarm_count() const;
  size_t peer_count() const;

 private:
  Status AdmitLocked(Swarm& swarm, const std::string& device_id);
  // Leaves an empty swarm in place: the caller erases it.
  void RemoveLocked(Swarm& swarm, const std::string& key);
  void SweepExpiredLocked(MonoTime now);
  AnnounceResult SelectPeersLocked(const InfoHash20& hash, const Swarm& swarm,
                                   const SwarmPeer& self, int numwant);

  const Clock& clock_;
  const SwarmLimits limits_;
  const PeerReputation* reputation_;
  mutable std::mutex mu_;
  std::map<InfoHash20, std::unique_ptr<Swarm>> swarms_;
  std::unordered_map<std::string, size_t> peers_per_device_;
  // Every peer, least recently announced first: expiry pops from the front.
  std::list<std::pair<InfoHash20, std::string>> by_age_;
  size_t peers_ = 0;
  std::minstd_rand rng_;
};

}  // namespace flotilla::tracker
