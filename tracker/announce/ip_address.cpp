#include "tracker/announce/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace flotilla::tracker {

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
    return InvalidArgument("not an IP address");
  }
  const std::string s(text);
  IpAddress ip;
  if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  std::array<uint8_t, 16> v6{};
  if (::inet_pton(AF_INET6, s.c_str(), v6.data()) != 1) {
    return InvalidArgument("not an IP address");
  }
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.data(), kMappedPrefix, 12) == 0) {
    std::memcpy(ip.bytes.data(), v6.data() + 12, 4);
    return ip;
  }
  ip.v6 = true;
  ip.bytes = v6;
  return ip;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

}  // namespace flotilla::tracker
