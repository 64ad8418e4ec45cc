// Peer reputation: which peers of a swarm devices reported for sending data
// that failed its hash check, and which of them the tracker stops handing out.
//
// One device, or several at one site, cannot delist a peer: a peer is
// delisted for a swarm only while devices at two or more different sites have
// reported it, each report counting for `ttl` (the tracker's peer TTL) after
// it arrived. Memory is bounded by `max_marks` (one mark per peer and
// reporting site); reports beyond it are dropped. Not thread-safe: the
// tracker's network thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <tuple>

#include "core/clock.h"
#include "tracker/announce/announce_request.h"
#include "tracker/announce/ip_address.h"

namespace flotilla::tracker {

// The site a report counts for: the device's enrolled site label, else the
// network its report came from (the /24 of an IPv4 source, the /48 of IPv6).
std::string ReporterSite(const std::string& site_label, const IpAddress& source);

class PeerReputation {
 public:
  PeerReputation(const Clock& clock, Duration ttl, size_t max_marks = 100'000);

  // Records that a device at `site` received bad data from address:port in
  // `swarm`. False when the table is full and the report was dropped.
  bool Report(const InfoHash20& swarm, const IpAddress& address, uint16_t port,
              const std::string& site);
  // True while reports from two or more sites stand against address:port.
  bool Delisted(const InfoHash20& swarm, const IpAddress& address, uint16_t port) const;

  size_t mark_count() const { return mark_count_; }

 private:
  using PeerKey = std::tuple<InfoHash20, IpAddress, uint16_t>;
  struct Expiry {
    MonoTime at;
    PeerKey peer;
    std::string site;
  };
  void Expire(MonoTime now);

  const Clock& clock_;
  const Duration ttl_;
  const size_t max_marks_;
  std::map<PeerKey, std::map<std::string, MonoTime>> marks_;  // site -> latest report
  std::deque<Expiry> expiries_;                               // in report order
  size_t mark_count_ = 0;
};

}  // namespace flotilla::tracker
