// In-memory swarms: who is in which torrent, with expiry.
//
// A peer is keyed by (device id, peer_id), so one enrolled device can neither
// evict nor impersonate another's entry. Entries expire `peer_ttl` after their
// last announce; expired entries are dropped lazily. Memory is bounded by
// `max_peers` in total. Thread-safe (one mutex: the tracker's announce path
// is short and the server has one network thread).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "tracker/announce/announce_request.h"
#include "tracker/announce/ip_address.h"

namespace flotilla::tracker {

struct SwarmLimits {
  Duration peer_ttl = std::chrono::minutes(31);
  size_t max_peers = 200'000;
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
  SwarmRegistry(const Clock& clock, SwarmLimits limits);

  // Records the announce and returns up to `numwant` other peers of the swarm.
  // Fails with ResourceExhausted when the registry is full.
  Result<AnnounceResult> Announce(const AnnouncerIdentity& who, const AnnounceRequest& request);

  size_t swarm_count() const;
  size_t peer_count() const;

 private:
  struct Peer {
    IpAddress observed;
    std::optional<IpAddress> lan;
    uint16_t port = 0;
    std::string peer_id;
    std::string site;
    bool seeding = false;
    MonoTime last_seen;
  };
  using Swarm = std::map<std::string, Peer>;  // key: device id + '\0' + peer_id

  void SweepExpiredLocked(MonoTime now);
  AnnounceResult SelectPeersLocked(const Swarm& swarm, const std::string& self_key,
                                   const Peer& self, int numwant, MonoTime now);

  const Clock& clock_;
  const SwarmLimits limits_;
  mutable std::mutex mu_;
  std::map<InfoHash20, Swarm> swarms_;
  size_t peers_ = 0;
  MonoTime last_sweep_;
  std::minstd_rand shuffle_rng_;
};

}  // namespace flotilla::tracker
