// The PROXY protocol, version 2 (haproxy's `send-proxy-v2`): a load
// balancer puts a binary header before the connection's first byte that
// names the client it accepted the connection from. The server reads it
// only on connections from addresses it was told to trust
// (ServerOptions::trusted_proxies); anyone else could name any client.
//
//   12 bytes  signature \r\n\r\n\0\r\nQUIT\n
//    1 byte   version (high nibble, 2) and command (low: 0 LOCAL, 1 PROXY)
//    1 byte   family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and transport
//    2 bytes  length of what follows (network order)
//   INET:  source address (4), destination address (4), source port, destination port
//   INET6: source address (16), destination address (16), source port, destination port
//   then TLVs, which are skipped.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla::http {

inline constexpr size_t kProxyHeaderFixedBytes = 16;
// Addresses plus the TLVs a balancer adds; a longer header is refused.
inline constexpr size_t kProxyHeaderMaxRestBytes = 1024;

// The length of what follows the fixed 16 bytes, or InvalidArgument when
// they are not a version 2 header.
Result<size_t> ProxyHeaderRestLength(ByteSpan fixed);

// The client the header names; nullopt for LOCAL (the balancer's own health
// check) and for families without an address (UNSPEC, UNIX): the
// connection's own source stands. `rest` is the `ProxyHeaderRestLength`
// bytes after the fixed part.
Result<std::optional<boost::asio::ip::address>> ProxyHeaderSource(ByteSpan fixed, ByteSpan rest);

}  // namespace flotilla::http
