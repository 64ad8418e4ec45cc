// ControlServer (the daemon's Unix socket) and ControlRequest (its client).
#include "node/control/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <memory>
#include <optional>

#include "core/fd.h"
#include "node/control/control_protocol.h"

namespace flotilla::node {
namespace {

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return InvalidArgument("control socket path '" + path + "' must be 1.." +
                           std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

Result<UniqueFd> UnixSocket(int flags = 0) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0));
  if (!fd.valid()) return IOErrorFromErrno("socket", errno);
  return fd;
}

// Whether a daemon answers on `path`: a connect that succeeds.
bool SomeoneListens(const sockaddr_un& address) {
  auto fd = UnixSocket();
  return fd.ok() &&
         ::connect(fd->get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
}

// Removes a stale socket file at `path`; refuses a live one and anything
// that is not a socket (never delete a file someone pointed us at by mistake).
Status ClearStaleSocket(const std::string& path, const sockaddr_un& address) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IOErrorFromErrno("stat " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPrecondition(path +
                              " exists and is not a socket; remove it or choose "
                              "another control_socket");
  }
  if (SomeoneListens(address)) return AlreadyExists("another daemon is using " + path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return IOErrorFromErrno("remove stale socket " + path, errno);
  }
  return Status::Ok();
}

// Only root, or the daemon's own user, may operate the daemon (mode 0600
// already says so; this also holds if someone loosens the file's mode).
std::string RefuseStranger(int fd) {
  ucred peer{};
  socklen_t length = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    return ErrorResponse(PermissionDenied("cannot identify the client"));
  }
  if (peer.uid == 0 || peer.uid == ::geteuid()) return "";
  return ErrorResponse(PermissionDenied("permission denied: only root may operate the daemon"));
}

bool RequestComplete(std::string_view received, bool peer_closed) {
  return received.find('\n') != std::string_view::npos || (peer_closed && !received.empty());
}

// One request and one response per connection, served without ever
// waiting: Poll() accepts what is pending, reads what has arrived, answers
// complete requests and writes what the socket takes, then returns. Every
// socket is non-blocking; a request is bounded, so is the number of open
// connections (more pending clients wait in the backlog), and a client has
// kClientDeadline from its accept to send its request and again from the
// answer to read it (a silent client, or one that stops reading, is closed),
// so no client can stall the daemon's loop. The time the daemon takes to
// answer (a rollback waits for a health check) does not count against the
// client. Thread-safety: none; everything runs on the daemon's loop.
class UnixControlServer final : public ControlServer {
 public:
  // REQUIRES: `listener` is a non-blocking listening socket.
  UnixControlServer(std::string path, UniqueFd listener, NodeControl& control)
      : path_(std::move(path)), listener_(std::move(listener)), control_(control) {}
  ~UnixControlServer() override { ::unlink(path_.c_str()); }

  void Poll() override {
    const MonoTime now = SystemClock::Instance().MonotonicNow();
    AcceptPending(now);
    for (auto it = connections_.begin(); it != connections_.end();) {
      it = Serve(*it, now) ? std::next(it) : connections_.erase(it);
    }
  }

 private:
  static constexpr size_t kMaxConnections = 16;
  static constexpr Duration kClientDeadline = std::chrono::seconds(5);

  struct Connection {
    UniqueFd fd;
    MonoTime deadline;
    std::string received;
    std::shared_ptr<std::optional<std::string>> answer;  // set while the daemon answers
    std::string response;
    size_t sent = 0;
    bool responding = false;
  };

  void AcceptPending(MonoTime now);
  // Moves `c` on as far as it goes now; false when it is finished with.
  bool Serve(Connection& c, MonoTime now);
  // Reads what has arrived and asks for the answer once the request is
  // whole; false when the connection is finished with.
  bool ReadRequest(Connection& c);
  // Writes what the socket takes; false once done or when the peer is gone.
  bool WriteResponse(Connection& c);

  std::string path_;
  UniqueFd listener_;
  NodeControl& control_;
  std::list<Connection> connections_;
};

bool UnixControlServer::Serve(Connection& c, MonoTime now) {
  if (!c.answer && !c.responding && (now >= c.deadline || !ReadRequest(c))) return false;
  if (c.answer) {
    if (!c.answer->has_value()) return true;  // still being answered
    c.response = std::move(**c.answer);
    c.answer.reset();
    c.responding = true;
    c.deadline = now + kClientDeadline;
  }
  return !c.responding || (now < c.deadline && WriteResponse(c));
}

void UnixControlServer::AcceptPending(MonoTime now) {
  while (connections_.size() < kMaxConnections) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: nothing pending; anything else: try again next Poll
    Connection c;
    c.fd = UniqueFd(fd);
    c.deadline = now + kClientDeadline;
    c.response = RefuseStranger(fd);
    c.responding = !c.response.empty();
    connections_.push_back(std::move(c));
  }
}

bool UnixControlServer::ReadRequest(Connection& c) {
  char buffer[16 << 10];
  bool peer_closed = false;
  while (c.received.size() <= kMaxControlRequestBytes) {
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
  if (c.received.size() > kMaxControlRequestBytes) {
    c.response = ErrorResponse(ResourceExhausted(
        "request larger than " + std::to_string(kMaxControlRequestBytes) + " bytes"));
    c.responding = true;
  } else if (RequestComplete(c.received, peer_closed)) {
    c.answer = std::make_shared<std::optional<std::string>>();
    AnswerControlRequest(control_, c.received,
                         [slot = std::weak_ptr(c.answer)](std::string response) {
                           if (auto answer = slot.lock()) *answer = std::move(response);
                         });
  } else {
    return !peer_closed;  // a request cut short is dropped unanswered
  }
  c.received.clear();
  return true;
}

bool UnixControlServer::WriteResponse(Connection& c) {
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

Status SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IOErrorFromErrno("send request", errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Reads until the daemon closes the connection, at most
// kMaxControlResponseBytes, giving up at `deadline`.
Result<std::string> ReceiveAll(int fd, MonoTime deadline) {
  std::string response;
  char buffer[16 << 10];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - SystemClock::Instance().MonotonicNow());
    if (left.count() <= 0) return DeadlineExceeded("the daemon did not answer in time");
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return IOErrorFromErrno("poll", errno);
    if (ready == 0) continue;
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IOErrorFromErrno("receive response", errno);
    if (n == 0) return response;
    response.append(buffer, static_cast<size_t>(n));
    if (response.size() > kMaxControlResponseBytes) {
      return ResourceExhausted("the daemon's answer exceeds " +
                               std::to_string(kMaxControlResponseBytes) + " bytes");
    }
  }
}

Status ConnectStatus(const std::string& path, int err) {
  if (err == ENOENT || err == ECONNREFUSED) {
    return Unavailable("no daemon listens on " + path + ": is flotilla-node running?");
  }
  if (err == EACCES || err == EPERM) {
    return PermissionDenied("permission denied on " + path +
                            ": the control socket is root-only (try sudo)");
  }
  return IOErrorFromErrno("connect to " + path, err);
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Listen(const std::string& socket_path,
                                                             NodeControl& control) {
  ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(socket_path));
  RETURN_IF_ERROR(ClearStaleSocket(socket_path, address));
  ASSIGN_OR_RETURN(UniqueFd fd, UnixSocket(SOCK_NONBLOCK));
  // The socket file takes the inode's mode (minus umask) at bind: 0600 from
  // its first instant, not after a window where others could connect.
  if (::fchmod(fd.get(), 0600) != 0) return IOErrorFromErrno("chmod control socket", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return IOErrorFromErrno("bind " + socket_path, errno);
  }
  if (::chmod(socket_path.c_str(), 0600) != 0 || ::listen(fd.get(), 16) != 0) {
    Status failed = IOErrorFromErrno("listen on " + socket_path, errno);
    ::unlink(socket_path.c_str());
    return failed;
  }
  return std::unique_ptr<ControlServer>(new UnixControlServer(socket_path, std::move(fd), control));
}

Result<Json> ControlRequest(const std::string& socket_path, const Json& request, Duration timeout) {
  const MonoTime deadline = SystemClock::Instance().MonotonicNow() + timeout;
  ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(socket_path));
  ASSIGN_OR_RETURN(UniqueFd fd, UnixSocket());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return ConnectStatus(socket_path, errno);
  }
  RETURN_IF_ERROR(SendAll(fd.get(), DumpJson(request) + "\n"));
  ASSIGN_OR_RETURN(std::string text, ReceiveAll(fd.get(), deadline));
  if (text.empty()) return Unavailable("the daemon on " + socket_path + " closed without answer");
  ASSIGN_OR_RETURN(Json response, ParseJsonStrict(text, {.max_bytes = kMaxControlResponseBytes})
                                      .WithContext("the daemon's answer"));
  if (!response.is_object()) return Internal("the daemon's answer is not a JSON object");
  RETURN_IF_ERROR(StatusFromErrorResponse(response));
  return response;
}

}  // namespace flotilla::node
