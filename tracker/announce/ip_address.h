// IPv4/IPv6 addresses as plain bytes, so the swarm logic needs no socket library.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla::tracker {

struct IpAddress {
  bool v6 = false;
  // IPv4 uses the first 4 bytes; the rest stay zero.
  std::array<uint8_t, 16> bytes{};

  // Parses a dotted IPv4 or an IPv6 literal; an IPv4-mapped IPv6 address
  // (::ffff:a.b.c.d) becomes the IPv4 address.
  static Result<IpAddress> Parse(std::string_view text);
  std::string ToString() const;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

}  // namespace flotilla::tracker
