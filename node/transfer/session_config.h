// libtorrent session settings for a 512 MB device on a weak link, and the
// peer-class setup that makes rate limits bind for LAN and loopback peers.
#pragma once

#include <libtorrent/session.hpp>
#include <libtorrent/settings_pack.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "node/transfer/torrent_fetcher.h"

namespace flotilla::node::transfer {

// TCP only, DHT/PEX off (DHT by option), LSD by option, posix disk I/O sized
// for a Pi, fast reconnects, no auto-managed caps. See docs/transfer.md.
lt::settings_pack MakeSessionSettings(const TorrentFetcherOptions& options);

// The IP part of the first listen interface when it names one address
// ("127.0.0.3:0" -> "127.0.0.3"), else empty.
std::string SpecificListenAddress(const std::string& listen_interfaces);

// Puts every address in the global peer class, so the session's rate limits
// apply to LAN and 127.x peers as well (libtorrent exempts them by default).
// Addresses in `origin_ips` are also put in a class of their own, whose
// download limit is `origin_rate_limit` (0: none). Returns the origin class.
Result<lt::peer_class_t> ConfigurePeerClasses(lt::session& session,
                                              const std::vector<lt::address>& origin_ips,
                                              int origin_rate_limit);

}  // namespace flotilla::node::transfer
