// One request and one response per connection, served from a listening
// socket without ever waiting: the machinery under ControlServer and
// MetricsServer (control_server.h).
//
// Poll() accepts what is pending, reads what has arrived, hands complete
// requests to the protocol and writes what the socket takes, then returns.
// Every socket is non-blocking; a request is bounded (`max_request_bytes`),
// so is the number of open connections, and a client has `deadline` from its
// accept to send its request and again from the answer to read it (a silent
// client, or one that stops reading, is closed), so no client can stall the
// caller's event loop. The time the protocol takes to answer (a rollback
// waits for a health check) does not count against the client.
//
// Thread-safety: none; call everything from one thread (the daemon's loop).
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/fd.h"

namespace flotilla::node {

struct ConnectionLimits {
  size_t max_request_bytes = 64 << 10;
  size_t max_connections = 16;  // more pending clients wait in the backlog
  Duration deadline = std::chrono::seconds(5);
};

// What a protocol on top of the pool decides.
struct ConnectionProtocol {
  // Whether `received` holds a whole request. `peer_closed`: the client shut
  // down its sending side, so no more bytes will come.
  std::function<bool(std::string_view received, bool peer_closed)> complete;
  // Takes a whole request and calls `respond` with the response, at once or
  // later (on the thread that polls); the connection closes once it is sent.
  // A response for a connection that is gone by then is dropped.
  using Respond = std::function<void(std::string response)>;
  std::function<void(std::string_view request, Respond respond)> answer;
  // Sent instead when a request exceeds max_request_bytes.
  std::string too_large_response;
  // Optional: checked right after accept; a non-empty string is sent as the
  // response (and the request never read), e.g. for a refused peer.
  std::function<std::string(int fd)> refuse;
};

class ConnectionPool {
 public:
  // REQUIRES: `listener` is a listening socket. It is made non-blocking.
  ConnectionPool(UniqueFd listener, ConnectionProtocol protocol, ConnectionLimits limits,
                 const Clock& clock);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void Poll();

 private:
  struct Connection {
    UniqueFd fd;
    MonoTime deadline;
    std::string received;
    std::shared_ptr<std::optional<std::string>> answer;  // set while the protocol answers
    std::string response;
    size_t sent = 0;
    bool responding = false;
  };
  void AcceptPending(MonoTime now);
  // Moves `c` on as far as it goes now; false when it is finished with.
  bool Serve(Connection& c, MonoTime now);
  // Reads what has arrived and prepares the response once the request is
  // whole; false when the connection is finished with.
  bool ReadRequest(Connection& c);
  // Writes what the socket takes; false once done or when the peer is gone.
  bool WriteResponse(Connection& c);

  UniqueFd listener_;
  ConnectionProtocol protocol_;
  ConnectionLimits limits_;
  const Clock& clock_;
  std::list<Connection> connections_;
};

// Puts `fd` in non-blocking mode; false on failure.
bool SetNonBlocking(int fd);

}  // namespace flotilla::node
