#include "tracker/announce/swarm_registry.h"

#include <algorithm>
#include <unordered_set>

#include "tracker/announce/reputation.h"

namespace flotilla::tracker {

struct SwarmPeer {
  std::string key;  // device id + '\0' + peer_id
  std::string device_id;
  IpAddress observed;
  std::optional<IpAddress> lan;
  uint16_t port = 0;
  std::string peer_id;
  std::string site;
  bool proxied = false;  // its observed address is a proxy's: never handed out
  bool seeding = false;
  MonoTime last_seen;
  std::list<std::pair<InfoHash20, std::string>>::iterator age;
  // Positions in the swarm's indexes (swap-and-pop vectors).
  size_t in_all = 0, in_site = 0, in_address = 0;
};

namespace {

using PeerList = std::vector<SwarmPeer*>;

template <size_t SwarmPeer::*Pos>
void Insert(PeerList& list, SwarmPeer* peer) {
  peer->*Pos = list.size();
  list.push_back(peer);
}

template <size_t SwarmPeer::*Pos>
void Erase(PeerList& list, SwarmPeer* peer) {
  const size_t pos = peer->*Pos;
  list[pos] = list.back();
  list[pos]->*Pos = pos;
  list.pop_back();
}

}  // namespace

struct Swarm {
  std::unordered_map<std::string, std::unique_ptr<SwarmPeer>> peers;
  PeerList all;
  std::unordered_map<std::string, PeerList> by_site;  // non-empty site labels only
  std::map<IpAddress, PeerList> by_address;           // observed addresses
  std::unordered_map<std::string, PeerList> by_device;
  int64_t seeders = 0;

  void Index(SwarmPeer* p) {
    if (!p->site.empty()) Insert<&SwarmPeer::in_site>(by_site[p->site], p);
    Insert<&SwarmPeer::in_address>(by_address[p->observed], p);
  }
  void Unindex(SwarmPeer* p) {
    if (!p->site.empty()) {
      auto it = by_site.find(p->site);
      Erase<&SwarmPeer::in_site>(it->second, p);
      if (it->second.empty()) by_site.erase(it);
    }
    auto it = by_address.find(p->observed);
    Erase<&SwarmPeer::in_address>(it->second, p);
    if (it->second.empty()) by_address.erase(it);
  }
};

SwarmRegistry::SwarmRegistry(const Clock& clock, SwarmLimits limits,
                             const PeerReputation* reputation)
    : clock_(clock), limits_(limits), reputation_(reputation), rng_(7) {}

SwarmRegistry::~SwarmRegistry() = default;

Result<AnnounceResult> SwarmRegistry::Announce(const AnnouncerIdentity& who,
                                               const AnnounceRequest& request) {
  const MonoTime now = clock_.MonotonicNow();
  std::lock_guard lock(mu_);
  SweepExpiredLocked(now);

  const std::string key = who.device_id + '\0' + request.peer_id;
  auto swarm_it = swarms_.find(request.info_hash);
  SwarmPeer* self = nullptr;
  if (swarm_it != swarms_.end()) {
    auto it = swarm_it->second->peers.find(key);
    if (it != swarm_it->second->peers.end()) self = it->second.get();
  }
  if (request.event == AnnounceEvent::kStopped) {
    if (self != nullptr) {
      RemoveLocked(*swarm_it->second, key);
      if (swarm_it->second->peers.empty()) swarms_.erase(swarm_it);
    }
    return AnnounceResult{};
  }
  if (self == nullptr) {
    if (swarm_it == swarms_.end()) {
      swarm_it = swarms_.emplace(request.info_hash, std::make_unique<Swarm>()).first;
    }
    Swarm& swarm = *swarm_it->second;
    if (Status st = AdmitLocked(swarm, who.device_id); !st.ok()) {
      if (swarm.peers.empty()) swarms_.erase(swarm_it);
      return st;
    }
    auto peer = std::make_unique<SwarmPeer>();
    self = peer.get();
    self->key = key;
    self->device_id = who.device_id;
    self->age = by_age_.insert(by_age_.end(), {request.info_hash, key});
    Insert<&SwarmPeer::in_all>(swarm.all, self);
    swarm.by_device[who.device_id].push_back(self);
    swarm.peers.emplace(key, std::move(peer));
    ++peers_;
    ++peers_per_device_[who.device_id];
  } else {
    swarm_it->second->Unindex(self);
    if (self->seeding) --swarm_it->second->seeders;
    by_age_.splice(by_age_.end(), by_age_, self->age);
  }
  Swarm& swarm = *swarm_it->second;
  self->observed = who.observed_address;
  self->lan = request.lan_ip;
  self->port = request.port;
  self->peer_id = request.peer_id;
  self->site = who.site;
  self->proxied = request.proxied;
  self->seeding = request.left.has_value() && *request.left == 0;
  self->last_seen = now;
  swarm.Index(self);
  if (self->seeding) ++swarm.seeders;
  return SelectPeersLocked(request.info_hash, swarm, *self, request.numwant);
}

// Makes room for one more peer of `device_id` in `swarm`, or says why not.
Status SwarmRegistry::AdmitLocked(Swarm& swarm, const std::string& device_id) {
  auto mine = swarm.by_device.find(device_id);
  if (mine != swarm.by_device.end() && mine->second.size() >= limits_.max_peers_per_device_swarm) {
    // The device's oldest peer id here gives way: a restarted client's new id.
    SwarmPeer* oldest =
        *std::min_element(mine->second.begin(), mine->second.end(),
                          [](SwarmPeer* a, SwarmPeer* b) { return a->last_seen < b->last_seen; });
    RemoveLocked(swarm, oldest->key);
  }
  if (peers_per_device_[device_id] >= limits_.max_peers_per_device) {
    return ResourceExhausted("device has " + std::to_string(limits_.max_peers_per_device) +
                             " peers, its cap");
  }
  if (peers_ >= limits_.max_peers) {
    return Unavailable("tracker is full: " + std::to_string(peers_) + " peers");
  }
  return Status::Ok();
}

void SwarmRegistry::RemoveLocked(Swarm& swarm, const std::string& key) {
  auto it = swarm.peers.find(key);
  SwarmPeer* p = it->second.get();
  swarm.Unindex(p);
  Erase<&SwarmPeer::in_all>(swarm.all, p);
  if (p->seeding) --swarm.seeders;
  auto& mine = swarm.by_device[p->device_id];
  mine.erase(std::find(mine.begin(), mine.end(), p));
  if (mine.empty()) swarm.by_device.erase(p->device_id);
  if (auto count = peers_per_device_.find(p->device_id); --count->second == 0) {
    peers_per_device_.erase(count);
  }
  by_age_.erase(p->age);
  swarm.peers.erase(it);
  --peers_;
}

AnnounceResult SwarmRegistry::SelectPeersLocked(const InfoHash20& hash, const Swarm& swarm,
                                                const SwarmPeer& self, int numwant) {
  AnnounceResult result;
  result.complete = swarm.seeders;
  result.incomplete = static_cast<int64_t>(swarm.all.size()) - swarm.seeders;
  const size_t want = static_cast<size_t>(std::max(numwant, 0));
  std::unordered_set<const SwarmPeer*> chosen;
  auto take = [&](const SwarmPeer* p) {
    if (result.peers.size() >= want || p == &self || p->proxied || chosen.contains(p)) return;
    if (reputation_ != nullptr && (reputation_->Delisted(hash, p->observed, p->port) ||
                                   (p->lan && reputation_->Delisted(hash, *p->lan, p->port)))) {
      return;
    }
    chosen.insert(p);
    const bool near = (!self.site.empty() && p->site == self.site) || p->observed == self.observed;
    result.peers.push_back(
        {near ? p->lan.value_or(p->observed) : p->observed, p->port, p->peer_id});
  };
  // A small group is taken whole, in random order; from a large one, random
  // members are drawn a bounded number of times, so the cost is O(numwant).
  auto sample = [&](const PeerList* group) {
    if (group == nullptr || result.peers.size() >= want) return;
    if (group->size() <= 2 * want + 16) {
      PeerList order = *group;
      std::shuffle(order.begin(), order.end(), rng_);
      for (const SwarmPeer* p : order) take(p);
      return;
    }
    std::uniform_int_distribution<size_t> pick(0, group->size() - 1);
    for (size_t tries = 4 * want + 16; tries > 0 && result.peers.size() < want; --tries) {
      take((*group)[pick(rng_)]);
    }
  };
  if (!self.site.empty()) {
    auto it = swarm.by_site.find(self.site);
    sample(it == swarm.by_site.end() ? nullptr : &it->second);
  }
  auto by_address = swarm.by_address.find(self.observed);
  sample(by_address == swarm.by_address.end() ? nullptr : &by_address->second);
  // Near peers lead the answer; the rest comes from the whole swarm.
  std::shuffle(result.peers.begin(), result.peers.end(), rng_);
  sample(&swarm.all);
  return result;
}

void SwarmRegistry::SweepExpiredLocked(MonoTime now) {
  while (!by_age_.empty()) {
    auto [hash, key] = by_age_.front();
    auto swarm = swarms_.find(hash);
    if (now - swarm->second->peers.at(key)->last_seen <= limits_.peer_ttl) return;
    RemoveLocked(*swarm->second, key);
    if (swarm->second->peers.empty()) swarms_.erase(swarm);
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
