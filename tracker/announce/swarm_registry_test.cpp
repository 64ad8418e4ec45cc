#include "tracker/announce/swarm_registry.h"

#include <gtest/gtest.h>

#include <set>

#include "tracker/announce/reputation.h"

namespace flotilla::tracker {
namespace {

AnnounceRequest Request(char peer, uint16_t port, std::optional<uint64_t> left = 100) {
  AnnounceRequest r;
  r.info_hash.fill(0x11);
  r.peer_id = std::string(20, peer);
  r.port = port;
  r.left = left;
  return r;
}

AnnouncerIdentity Who(const std::string& device, const std::string& ip, const std::string& site) {
  return {device, IpAddress::Parse(ip).value(), site};
}

TEST(SwarmRegistry, ListsOtherPeersSameSiteFirstWithTheirLanAddress) {
  FakeClock clock;
  SwarmRegistry registry(clock, SwarmLimits{});
  // Two devices behind the same NAT (203.0.113.5), one elsewhere, one labelled.
  auto lan_peer = Request('a', 7001);
  lan_peer.lan_ip = IpAddress::Parse("192.168.1.20").value();
  ASSERT_TRUE(registry.Announce(Who("d1", "203.0.113.5", ""), lan_peer).ok());
  ASSERT_TRUE(registry.Announce(Who("d2", "198.51.100.9", ""), Request('b', 7002)).ok());
  ASSERT_TRUE(registry.Announce(Who("d3", "198.51.100.77", "shop"), Request('c', 7003, 0)).ok());

  auto self = registry.Announce(Who("d4", "203.0.113.5", "shop"), Request('d', 7004));
  ASSERT_TRUE(self.ok());
  ASSERT_EQ(self->peers.size(), 3u);
  // The first two are d1 (same public address) and d3 (same label), in either order.
  std::set<uint16_t> near = {self->peers[0].port, self->peers[1].port};
  EXPECT_EQ(near, (std::set<uint16_t>{7001, 7003}));
  EXPECT_EQ(self->peers[2].port, 7002);
  for (const auto& p : self->peers) {
    if (p.port == 7001) {
      EXPECT_EQ(p.address.ToString(), "192.168.1.20");
    } else if (p.port == 7002) {
      EXPECT_EQ(p.address.ToString(), "198.51.100.9");
    }
  }
  EXPECT_EQ(self->complete, 1);
  EXPECT_EQ(self->incomplete, 3);

  // A peer of another site never sees d1's LAN address.
  auto far = registry.Announce(Who("d2", "198.51.100.9", ""), Request('b', 7002));
  for (const auto& p : far->peers) {
    if (p.port == 7001) {
      EXPECT_EQ(p.address.ToString(), "203.0.113.5");
    }
  }
}

TEST(SwarmRegistry, PeersBehindAProxyGetPeersButAreNeverHandedOut) {
  FakeClock clock;
  SwarmRegistry registry(clock, SwarmLimits{});
  // Two devices of one site announce through the same proxy (192.0.2.8).
  auto proxied = [](char peer, uint16_t port) {
    auto r = Request(peer, port);
    r.proxied = true;
    r.lan_ip = IpAddress::Parse("10.0.0." + std::to_string(port - 7000)).value();
    return r;
  };
  ASSERT_TRUE(registry.Announce(Who("p1", "192.0.2.8", "shop"), proxied('a', 7001)).ok());
  ASSERT_TRUE(registry.Announce(Who("d2", "198.51.100.9", ""), Request('b', 7002, 0)).ok());
  auto second = registry.Announce(Who("p3", "192.0.2.8", "shop"), proxied('c', 7003));
  ASSERT_TRUE(second.ok());
  // The proxied peer gets the direct one, never its proxied neighbour.
  ASSERT_EQ(second->peers.size(), 1u);
  EXPECT_EQ(second->peers[0].port, 7002);
  EXPECT_EQ(second->complete, 1);
  EXPECT_EQ(second->incomplete, 2);  // counted all the same
  // Nobody is handed the proxy's address, nor a proxied peer's LAN address.
  for (const char* site : {"", "shop"}) {
    auto other = registry.Announce(Who("d2", "192.0.2.8", site), Request('b', 7002, 0));
    ASSERT_TRUE(other.ok());
    EXPECT_TRUE(other->peers.empty()) << site;
  }
}

TEST(SwarmRegistry, PeersExpireStopAndStayPerDevice) {
  FakeClock clock;
  SwarmRegistry registry(clock, SwarmLimits{.peer_ttl = std::chrono::seconds(60), .max_peers = 3});
  ASSERT_TRUE(registry.Announce(Who("d1", "10.0.0.1", ""), Request('a', 1)).ok());
  // The same peer_id from another device is a different entry.
  ASSERT_TRUE(registry.Announce(Who("d2", "10.0.0.2", ""), Request('a', 2)).ok());
  EXPECT_EQ(registry.peer_count(), 2u);

  clock.Advance(std::chrono::seconds(61));
  auto r = registry.Announce(Who("d3", "10.0.0.3", ""), Request('c', 3));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->peers.empty()) << "expired peers are not listed";
  EXPECT_EQ(registry.peer_count(), 1u) << "expired peers are swept";

  auto stop = Request('c', 3);
  stop.event = AnnounceEvent::kStopped;
  ASSERT_TRUE(registry.Announce(Who("d3", "10.0.0.3", ""), stop).ok());
  EXPECT_EQ(registry.peer_count(), 0u);
  EXPECT_EQ(registry.swarm_count(), 0u);
}

TEST(SwarmRegistry, RefusesNewPeersWhenFull) {
  FakeClock clock;
  SwarmRegistry registry(clock, SwarmLimits{.max_peers = 2});
  ASSERT_TRUE(registry.Announce(Who("d1", "10.0.0.1", ""), Request('a', 1)).ok());
  ASSERT_TRUE(registry.Announce(Who("d2", "10.0.0.2", ""), Request('b', 2)).ok());
  auto full = registry.Announce(Who("d3", "10.0.0.3", ""), Request('c', 3));
  EXPECT_EQ(full.status().code(), StatusCode::kUnavailable);
  // Known peers keep announcing.
  EXPECT_TRUE(registry.Announce(Who("d1", "10.0.0.1", ""), Request('a', 1)).ok());
}

TEST(SwarmRegistry, NumwantBoundsTheAnswer) {
  FakeClock clock;
  SwarmRegistry registry(clock, SwarmLimits{});
  for (int i = 0; i < 30; ++i) {
    auto req = Request(static_cast<char>('A' + i), static_cast<uint16_t>(1000 + i));
    ASSERT_TRUE(registry.Announce(Who("d" + std::to_string(i), "10.0.0.1", ""), req).ok());
  }
  auto req = Request('z', 9);
  req.numwant = 5;
  EXPECT_EQ(registry.Announce(Who("dz", "10.0.0.9", ""), req)->peers.size(), 5u);
}

TEST(SwarmRegistry, CapsEachDeviceWhileOthersAnnounce) {
  FakeClock clock;
  SwarmRegistry registry(clock,
                         SwarmLimits{.max_peers_per_device = 8, .max_peers_per_device_swarm = 2});
  // Distinct swarms: the device's ninth peer is refused.
  for (uint8_t s = 0; s < 8; ++s) {
    auto req = Request('a', 1);
    req.info_hash.fill(s);
    ASSERT_TRUE(registry.Announce(Who("flood", "10.0.0.1", ""), req).ok());
  }
  auto ninth = Request('a', 1);
  ninth.info_hash.fill(100);
  EXPECT_EQ(registry.Announce(Who("flood", "10.0.0.1", ""), ninth).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(registry.swarm_count(), 8u);
  // Distinct peer ids in one swarm: the oldest gives way, the count stays.
  for (char c = 'b'; c < 'z'; ++c) {
    clock.Advance(std::chrono::seconds(1));
    ASSERT_TRUE(registry.Announce(Who("flood2", "10.0.0.1", ""), Request(c, 2)).ok());
  }
  auto other = registry.Announce(Who("honest", "10.0.0.2", ""), Request('h', 3));
  ASSERT_TRUE(other.ok());
  std::set<std::string> ids;
  for (const auto& p : other->peers) ids.insert(p.peer_id);
  EXPECT_EQ(ids, (std::set<std::string>{std::string(20, 'x'), std::string(20, 'y')}));
  EXPECT_EQ(registry.peer_count(), 8u + 2u + 1u);
}

TEST(SwarmRegistry, LargeSwarmAnswersNumwantDistinctPeersNearFirst) {
  FakeClock clock;
  SwarmRegistry registry(
      clock, SwarmLimits{.max_peers_per_device = 100'000, .max_peers_per_device_swarm = 100'000});
  for (int i = 0; i < 20'000; ++i) {
    auto req = Request('p', static_cast<uint16_t>(1 + i % 60000));
    req.peer_id = "peer-" + std::to_string(i);
    req.peer_id.resize(20, '.');
    const std::string ip = "10." + std::to_string(i % 200) + ".0.1";
    ASSERT_TRUE(registry.Announce(Who("d" + std::to_string(i % 5), ip, ""), req).ok());
  }
  auto self = Request('s', 9);
  self.numwant = 50;
  auto r = registry.Announce(Who("me", "10.7.0.1", ""), self);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->peers.size(), 50u);
  std::set<std::string> ids;
  for (const auto& p : r->peers) ids.insert(p.peer_id);
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_FALSE(ids.contains(std::string(20, 's')));
  // The 100 peers behind the caller's address come first.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(r->peers[i].address.ToString(), "10.7.0.1");
  EXPECT_EQ(r->incomplete, 20'001);
}

TEST(SwarmRegistry, DelistedPeersAreNotHandedOut) {
  FakeClock clock;
  PeerReputation reputation(clock, std::chrono::seconds(60));
  SwarmRegistry registry(clock, SwarmLimits{}, &reputation);
  auto lan = Request('a', 7001);
  lan.lan_ip = IpAddress::Parse("192.168.1.20").value();
  ASSERT_TRUE(registry.Announce(Who("bad", "203.0.113.5", ""), lan).ok());
  ASSERT_TRUE(registry.Announce(Who("good", "198.51.100.9", ""), Request('b', 7002)).ok());
  const InfoHash20 hash = Request('x', 1).info_hash;
  // Reported at its LAN address by one site, at its public one by another.
  ASSERT_TRUE(reputation.Report(hash, IpAddress::Parse("192.168.1.20").value(), 7001, "site:a"));
  auto still = registry.Announce(Who("me", "198.51.100.50", ""), Request('c', 1));
  EXPECT_EQ(still->peers.size(), 2u) << "one site does not delist";
  ASSERT_TRUE(reputation.Report(hash, IpAddress::Parse("192.168.1.20").value(), 7001, "site:b"));
  auto r = registry.Announce(Who("me", "198.51.100.50", ""), Request('c', 1));
  ASSERT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(r->peers[0].port, 7002);
  clock.Advance(std::chrono::seconds(61));
  ASSERT_TRUE(registry.Announce(Who("bad", "203.0.113.5", ""), lan).ok());
  ASSERT_TRUE(registry.Announce(Who("good", "198.51.100.9", ""), Request('b', 7002)).ok());
  EXPECT_EQ(registry.Announce(Who("me", "198.51.100.50", ""), Request('c', 1))->peers.size(), 2u)
      << "the marks expired with the peer TTL";
}

}  // namespace
}  // namespace flotilla::tracker
