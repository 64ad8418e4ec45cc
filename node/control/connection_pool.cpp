#include "node/control/connection_pool.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace flotilla::node {

bool SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

ConnectionPool::ConnectionPool(UniqueFd listener, ConnectionProtocol protocol,
                               ConnectionLimits limits, const Clock& clock)
    : listener_(std::move(listener)),
      protocol_(std::move(protocol)),
      limits_(limits),
      clock_(clock) {
  SetNonBlocking(listener_.get());
}

ConnectionPool::~ConnectionPool() = default;

void ConnectionPool::Poll() {
  const MonoTime now = clock_.MonotonicNow();
  AcceptPending(now);
  for (auto it = connections_.begin(); it != connections_.end();) {
    it = Serve(*it, now) ? std::next(it) : connections_.erase(it);
  }
}

bool ConnectionPool::Serve(Connection& c, MonoTime now) {
  if (!c.answer && !c.responding && (now >= c.deadline || !ReadRequest(c))) return false;
  if (c.answer) {
    if (!c.answer->has_value()) return true;  // still being answered
    c.response = std::move(**c.answer);
    c.answer.reset();
    c.responding = true;
    c.deadline = now + limits_.deadline;
  }
  return !c.responding || (now < c.deadline && WriteResponse(c));
}

void ConnectionPool::AcceptPending(MonoTime now) {
  while (connections_.size() < limits_.max_connections) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: nothing pending; anything else: try again next Poll
    Connection c;
    c.fd = UniqueFd(fd);
    c.deadline = now + limits_.deadline;
    if (protocol_.refuse) {
      std::string refusal = protocol_.refuse(fd);
      if (!refusal.empty()) {
        c.response = std::move(refusal);
        c.responding = true;
      }
    }
    connections_.push_back(std::move(c));
  }
}

bool ConnectionPool::ReadRequest(Connection& c) {
  char buffer[16 << 10];
  bool peer_closed = false;
  while (c.received.size() <= limits_.max_request_bytes) {
    ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      c.received.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;  // reset by the peer
  }
  if (c.received.size() > limits_.max_request_bytes) {
    c.response = protocol_.too_large_response;
    c.responding = true;
  } else if (protocol_.complete(c.received, peer_closed)) {
    c.answer = std::make_shared<std::optional<std::string>>();
    protocol_.answer(c.received, [slot = std::weak_ptr(c.answer)](std::string response) {
      if (auto answer = slot.lock()) *answer = std::move(response);
    });
  } else {
    return !peer_closed;  // a request cut short is dropped unanswered
  }
  c.received.clear();
  return true;
}

bool ConnectionPool::WriteResponse(Connection& c) {
  while (c.sent < c.response.size()) {
    ssize_t n =
        ::send(c.fd.get(), c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;  // the client went away mid-response
  }
  // Sent: close our side, then wait (until the deadline) for the client to
  // close its own, discarding whatever it still sends. Closing at once with
  // unread input would make TCP reset the connection and could destroy the
  // response before the client read it.
  if (c.sent == c.response.size() && !c.response.empty()) {
    ::shutdown(c.fd.get(), SHUT_WR);
    c.response.clear();
    c.sent = 0;
  }
  char discard[4096];
  for (int reads = 0; reads < 64; ++reads) {  // bounded: a flooding client waits its turn
    ssize_t n = ::recv(c.fd.get(), discard, sizeof discard, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

}  // namespace flotilla::node
