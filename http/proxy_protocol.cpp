#include "http/proxy_protocol.h"

#include <array>
#include <cstring>

namespace flotilla::http {
namespace {

constexpr std::array<uint8_t, 12> kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

}  // namespace

Result<size_t> ProxyHeaderRestLength(ByteSpan fixed) {
  if (fixed.size() != kProxyHeaderFixedBytes ||
      std::memcmp(fixed.data(), kSignature.data(), kSignature.size()) != 0) {
    return InvalidArgument("not a PROXY protocol v2 header");
  }
  if ((fixed[12] >> 4) != 2) return InvalidArgument("PROXY protocol version is not 2");
  const size_t length = (size_t{fixed[14]} << 8) | fixed[15];
  if (length > kProxyHeaderMaxRestBytes) {
    return InvalidArgument("PROXY header of " + std::to_string(length) + " bytes is too long");
  }
  return length;
}

Result<std::optional<boost::asio::ip::address>> ProxyHeaderSource(ByteSpan fixed, ByteSpan rest) {
  ASSIGN_OR_RETURN(size_t length, ProxyHeaderRestLength(fixed));
  if (rest.size() != length) return InvalidArgument("PROXY header length mismatch");
  const int command = fixed[12] & 0x0F;
  if (command == 0) return std::optional<boost::asio::ip::address>();  // LOCAL
  if (command != 1) return InvalidArgument("unknown PROXY command");
  const int family = fixed[13] >> 4;
  if (family == 1) {
    if (rest.size() < 12) return InvalidArgument("PROXY header too short for IPv4");
    boost::asio::ip::address_v4::bytes_type source;
    std::memcpy(source.data(), rest.data(), source.size());
    return std::optional<boost::asio::ip::address>(boost::asio::ip::address_v4(source));
  }
  if (family == 2) {
    if (rest.size() < 36) return InvalidArgument("PROXY header too short for IPv6");
    boost::asio::ip::address_v6::bytes_type source;
    std::memcpy(source.data(), rest.data(), source.size());
    const boost::asio::ip::address_v6 v6(source);
    if (v6.is_v4_mapped()) {
      return std::optional<boost::asio::ip::address>(
          boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
    }
    return std::optional<boost::asio::ip::address>(v6);
  }
  if (family == 0 || family == 3) return std::optional<boost::asio::ip::address>();
  return InvalidArgument("unknown PROXY address family");
}

}  // namespace flotilla::http
