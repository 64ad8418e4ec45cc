// Link locality: a device takes the release from its own LAN when a LAN
// neighbour is ahead of it, never over its site's WAN from another site.
//
// Every device of a site behind one 3G link shares that link. When sites can
// reach each other (no NAT), a device connected to peers in other sites pulls
// pieces from them over its site's WAN downlink and their WAN uplinks, once
// per device instead of once per site. So a node is a *LAN follower* while it
// has incomplete torrents and, in every one of them, a connected on-link peer
// is ahead of it (origin_policy.h's order: more pieces, or a lower address):
// it then blocks off-link peers (session IP filter) and gets everything from
// the neighbour ahead, which fetches for the site. The site's first device
// (no on-link peer ahead) keeps its off-link peers and the origin token rules.
// A follower whose neighbours go is no longer behind anyone and opens up
// again; one with nothing left to fetch serves other sites.
//
// "On-link": an address inside the subnet of one of this host's interfaces
// (loopback included: peers on the same host are local).
#pragma once

#include <cstdint>
#include <libtorrent/address.hpp>
#include <libtorrent/ip_filter.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::node::transfer {

struct Subnet {
  lt::address network;  // any address inside; the prefix masks it
  int prefix = 0;       // 0-32 (IPv4) or 0-128 (IPv6)
};

bool InSubnet(const lt::address& address, const Subnet& subnet);
bool OnLink(const lt::address& address, const std::vector<Subnet>& on_link);

// Subnets of this host's configured interface addresses (getifaddrs).
Result<std::vector<Subnet>> LocalSubnets();

// The session IP filter of a LAN follower: every address blocked except the
// on-link subnets and `always_allowed` (the origin's addresses, so the stall
// rule can still reach it).
lt::ip_filter OnLinkOnlyFilter(const std::vector<Subnet>& on_link,
                               const std::vector<lt::address>& always_allowed);

// Whether a node follows its LAN, from the on-link peers ahead of it in each
// of its incomplete torrents: it has at least one and is behind a neighbour in
// all of them.
bool IsLanFollower(const std::vector<uint32_t>& on_link_ahead_per_incomplete_torrent);

}  // namespace flotilla::node::transfer
