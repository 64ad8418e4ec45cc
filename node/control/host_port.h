// "host:port" addresses of the node's listening sockets (metrics, LAN
// exchange, peers), as the configuration writes them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla::node {

// Splits "host:port" / "[v6]:port"; the port must be 0..65535.
Status SplitHostPort(std::string_view text, std::string& host, uint16_t& port);

}  // namespace flotilla::node
