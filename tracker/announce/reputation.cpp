#include "tracker/announce/reputation.h"

#include <cstdio>

namespace flotilla::tracker {

std::string ReporterSite(const std::string& site_label, const IpAddress& source) {
  if (!site_label.empty()) return "site:" + site_label;
  const auto& b = source.bytes;
  char net[64];
  if (!source.v6) {
    std::snprintf(net, sizeof net, "net:%u.%u.%u.0/24", b[0], b[1], b[2]);
  } else {
    std::snprintf(net, sizeof net, "net:%02x%02x:%02x%02x:%02x%02x::/48", b[0], b[1], b[2], b[3],
                  b[4], b[5]);
  }
  return net;
}

PeerReputation::PeerReputation(const Clock& clock, Duration ttl, size_t max_marks)
    : clock_(clock), ttl_(ttl), max_marks_(max_marks) {}

bool PeerReputation::Report(const InfoHash20& swarm, const IpAddress& address, uint16_t port,
                            const std::string& site) {
  const MonoTime now = clock_.MonotonicNow();
  Expire(now);
  PeerKey key{swarm, address, port};
  auto it = marks_.find(key);
  const bool known = it != marks_.end() && it->second.contains(site);
  if (!known && mark_count_ >= max_marks_) return false;
  marks_[key][site] = now;
  if (!known) {
    ++mark_count_;
    expiries_.push_back({now + ttl_, std::move(key), site});
  }
  return true;
}

bool PeerReputation::Delisted(const InfoHash20& swarm, const IpAddress& address,
                              uint16_t port) const {
  if (marks_.empty()) return false;
  auto it = marks_.find(PeerKey{swarm, address, port});
  if (it == marks_.end()) return false;
  const MonoTime now = clock_.MonotonicNow();
  int sites = 0;
  for (const auto& [site, reported] : it->second) {
    if (now - reported < ttl_ && ++sites >= 2) return true;
  }
  return false;
}

void PeerReputation::Expire(MonoTime now) {
  while (!expiries_.empty() && expiries_.front().at <= now) {
    Expiry e = std::move(expiries_.front());
    expiries_.pop_front();
    // Each mark has one entry here; a mark reported again since waits anew.
    auto it = marks_.find(e.peer);
    auto site = it->second.find(e.site);
    if (site->second + ttl_ > now) {
      e.at = site->second + ttl_;
      expiries_.push_back(std::move(e));
      continue;
    }
    it->second.erase(site);
    --mark_count_;
    if (it->second.empty()) marks_.erase(it);
  }
}

}  // namespace flotilla::tracker
