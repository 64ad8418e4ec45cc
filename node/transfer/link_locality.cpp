#include "node/transfer/link_locality.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace flotilla::node::transfer {
namespace {

using V6Bytes = lt::address_v6::bytes_type;

uint32_t V4Mask(int prefix) {
  return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

// First and last address of the subnet, as 16 bytes (IPv6) with the prefix applied.
std::pair<V6Bytes, V6Bytes> V6Range(const lt::address_v6& network, int prefix) {
  V6Bytes first = network.to_bytes();
  V6Bytes last = first;
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix - 8 * i, 0, 8);
    const uint8_t mask = bits == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    first[i] &= mask;
    last[i] = static_cast<uint8_t>(first[i] | static_cast<uint8_t>(~mask));
  }
  return {first, last};
}

int PrefixOf(const uint8_t* mask, size_t bytes) {
  int prefix = 0;
  for (size_t i = 0; i < bytes; ++i) {
    for (int bit = 7; bit >= 0 && (mask[i] >> bit & 1); --bit) ++prefix;
    if (mask[i] != 0xff) break;
  }
  return prefix;
}

}  // namespace

bool InSubnet(const lt::address& address, const Subnet& subnet) {
  if (address.is_v4() != subnet.network.is_v4()) return false;
  if (address.is_v4()) {
    const uint32_t mask = V4Mask(subnet.prefix);
    return (address.to_v4().to_uint() & mask) == (subnet.network.to_v4().to_uint() & mask);
  }
  const auto [first, last] = V6Range(subnet.network.to_v6(), subnet.prefix);
  const V6Bytes a = address.to_v6().to_bytes();
  return a >= first && a <= last;
}

bool OnLink(const lt::address& address, const std::vector<Subnet>& on_link) {
  return std::any_of(on_link.begin(), on_link.end(),
                     [&](const Subnet& s) { return InSubnet(address, s); });
}

Result<std::vector<Subnet>> LocalSubnets() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return Unavailable(std::string("getifaddrs: ") + std::strerror(errno));
  }
  std::vector<Subnet> subnets;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      const auto* m = reinterpret_cast<const sockaddr_in*>(i->ifa_netmask);
      subnets.push_back({lt::address_v4(ntohl(a->sin_addr.s_addr)),
                         PrefixOf(reinterpret_cast<const uint8_t*>(&m->sin_addr), 4)});
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      const auto* m = reinterpret_cast<const sockaddr_in6*>(i->ifa_netmask);
      V6Bytes bytes;
      std::memcpy(bytes.data(), &a->sin6_addr, 16);
      subnets.push_back(
          {lt::address_v6(bytes), PrefixOf(reinterpret_cast<const uint8_t*>(&m->sin6_addr), 16)});
    }
  }
  ::freeifaddrs(list);
  return subnets;
}

lt::ip_filter OnLinkOnlyFilter(const std::vector<Subnet>& on_link,
                               const std::vector<lt::address>& always_allowed) {
  lt::ip_filter filter;
  filter.add_rule(lt::make_address("0.0.0.0"), lt::make_address("255.255.255.255"),
                  lt::ip_filter::blocked);
  filter.add_rule(lt::make_address("::"),
                  lt::make_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                  lt::ip_filter::blocked);
  for (const Subnet& s : on_link) {
    if (s.network.is_v4()) {
      const uint32_t mask = V4Mask(s.prefix);
      const uint32_t first = s.network.to_v4().to_uint() & mask;
      filter.add_rule(lt::address_v4(first), lt::address_v4(first | ~mask), 0);
    } else {
      const auto [first, last] = V6Range(s.network.to_v6(), s.prefix);
      filter.add_rule(lt::address_v6(first), lt::address_v6(last), 0);
    }
  }
  for (const lt::address& a : always_allowed) filter.add_rule(a, a, 0);
  return filter;
}

bool IsLanFollower(const std::vector<uint32_t>& on_link_ahead_per_incomplete_torrent) {
  const auto& ahead = on_link_ahead_per_incomplete_torrent;
  return !ahead.empty() &&
         std::all_of(ahead.begin(), ahead.end(), [](uint32_t n) { return n > 0; });
}

}  // namespace flotilla::node::transfer
