// Where a node gets an artifact's .torrent file (docs/transfer.md, "Torrent
// files"): from a LAN neighbour that has it, else from the content URL over
// one connection kept from fetch to fetch. The bytes are not trusted here:
// the fetcher checks the torrent's info-hash against the signed target.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "http/http_client.h"
#include "node/daemon/lan_exchange.h"

namespace flotilla::node {

struct TorrentSourceOptions {
  std::string content_url;    // "http(s)://host:port", no trailing slash
  http::ClientOptions wan;    // to the content URL: proxies, CA, timeouts
  http::ClientOptions lan;    // to neighbours: never through a proxy
  size_t max_neighbours = 3;  // neighbours asked before the content URL
  uint64_t max_torrent_bytes = 4 << 20;
  // The neighbours heard lately, most likely holders first (LanExchange::
  // Neighbours); empty: none asked.
  std::function<std::vector<Neighbour>()> neighbours;
};

class TorrentSource {
 public:
  explicit TorrentSource(TorrentSourceOptions options);

  // The bytes of /torrents/<artifact_hex>.torrent. Thread-safe: callers
  // (the release lanes) take turns.
  Result<std::string> Fetch(const std::string& artifact_hex);

  // Short timeouts for neighbours: a neighbour that went away since its last
  // beacon costs a second, not the WAN client's timeouts.
  static http::ClientOptions NeighbourOptions(http::ClientOptions lan);

 private:
  const TorrentSourceOptions options_;
  std::mutex mutex_;
  http::Client wan_;  // guarded by mutex_; keeps its connection to the content URL
  http::Client lan_;  // guarded by mutex_
};

}  // namespace flotilla::node
