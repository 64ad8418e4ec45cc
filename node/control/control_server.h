// The node's local control API and Prometheus metrics endpoint, both served
// from the daemon's event loop (docs/node.md, "Control API" and "Metrics").
//
// Control API: a Unix stream socket, mode 0600 and owned by root (only root
// may operate the node), one JSON request and one JSON response per
// connection; `flotilla-node status|apps|logs|update|rollback` are its
// clients. Metrics: plain HTTP GET /metrics in the Prometheus text format on
// a configured address.
//
// Both servers are polled: Poll() accepts and serves whatever is ready and
// returns without waiting, so a slow or stuck client never stalls the
// daemon; reads are bounded and a connection idle too long is dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "node/control/node_control.h"

namespace flotilla::node {

class ControlServer {
 public:
  // Binds `socket_path` with mode 0600. A stale socket file (nobody listens)
  // is replaced; a live one (another daemon on the same data directory) is
  // an error.
  static Result<std::unique_ptr<ControlServer>> Listen(const std::string& socket_path,
                                                       NodeControl& control);
  virtual ~ControlServer() = default;  // closes and unlinks the socket
  virtual void Poll() = 0;
};

class MetricsServer {
 public:
  // Listens on "host:port" (port 0: the kernel picks; see port()).
  static Result<std::unique_ptr<MetricsServer>> Listen(const std::string& host_port,
                                                       NodeControl& control);
  virtual ~MetricsServer() = default;
  virtual uint16_t port() const = 0;
  virtual void Poll() = 0;
};

// Client side: sends `request` to the daemon at `socket_path` and returns its
// JSON response; an error response ({"error": "..."}) becomes a Status.
Result<Json> ControlRequest(const std::string& socket_path, const Json& request, Duration timeout);

}  // namespace flotilla::node
