// A web seed on loopback for a content origin reached through an HTTP proxy.
//
// libtorrent 2.0.8 takes web seeds through a proxy only together with every
// peer connection (proxy_peer_connections), and LAN peers must stay direct.
// So when the origin is behind a proxy, the torrent fetcher is given this
// relay's URL as its web seed: each GET under /artifacts/ is forwarded, its
// Range header included, to the same path of the origin with the node's HTTP
// client (which goes through the proxy, CONNECT for https), and the answer is
// passed back. Bytes are checked by libtorrent against the torrent, as from
// any web seed. See docs/transfer.md, "Behind a proxy".
//
// The relay listens on 127.0.0.1 only, answers one request at a time on a
// thread of its own, and holds at most `max_request_bytes` of one answer in
// memory (the fetcher's web seed requests are capped to that size).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "http/http_client.h"

namespace flotilla::node {

class OriginRelay {
 public:
  static constexpr uint64_t kMaxRequestBytes = 2 << 20;

  // Starts listening on 127.0.0.1 (a port the kernel picks).
  static Result<std::unique_ptr<OriginRelay>> Start(std::string origin_url,
                                                    http::ClientOptions options);
  ~OriginRelay();
  OriginRelay(const OriginRelay&) = delete;
  OriginRelay& operator=(const OriginRelay&) = delete;

  // http://127.0.0.1:PORT: the web seed base URL to give the fetcher.
  std::string url() const;
  // Body bytes passed from the origin to libtorrent so far.
  uint64_t bytes_relayed() const { return bytes_relayed_.load(); }

  class Impl;

 private:
  explicit OriginRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> bytes_relayed_{0};
};

}  // namespace flotilla::node
