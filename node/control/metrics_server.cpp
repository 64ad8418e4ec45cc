// MetricsServer: GET /metrics over plain HTTP/1.1, one request per
// connection (Prometheus opens a new one per scrape or reuses none it needs).
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "node/control/connection_pool.h"
#include "node/control/control_server.h"
#include "node/control/host_port.h"
#include "node/control/metrics_text.h"

namespace flotilla::node {
namespace {

constexpr size_t kMaxHttpRequestBytes = 8 << 10;

std::string HttpResponse(std::string_view status, std::string_view content_type,
                         std::string_view body, std::string_view extra_headers = "") {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nServer: flotilla-node\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  out += body;
  return out;
}

std::string TextResponse(std::string_view status, std::string_view body,
                         std::string_view extra_headers = "") {
  return HttpResponse(status, "text/plain; charset=utf-8", body, extra_headers);
}

bool HeadComplete(std::string_view received, bool /*peer_closed*/) {
  return received.find("\r\n\r\n") != std::string_view::npos ||
         received.find("\n\n") != std::string_view::npos;
}

// Answers "METHOD TARGET HTTP/1.x" (headers are not needed).
std::string AnswerHttp(NodeControl& control, std::string_view request) {
  std::string_view line = request.substr(0, request.find_first_of("\r\n"));
  size_t first_space = line.find(' ');
  size_t second_space = line.find(' ', first_space + 1);
  if (first_space == std::string_view::npos || second_space == std::string_view::npos ||
      line.substr(second_space + 1).substr(0, 5) != "HTTP/") {
    return TextResponse("400 Bad Request", "bad request\n");
  }
  std::string_view method = line.substr(0, first_space);
  std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") return TextResponse("404 Not Found", "not found: try /metrics\n");
  if (method != "GET")
    return TextResponse("405 Method Not Allowed", "only GET\n", "Allow: GET\r\n");
  return HttpResponse("200 OK", "text/plain; version=0.0.4; charset=utf-8",
                      RenderMetrics(control.View()));
}

Result<UniqueFd> ListenTcp(const std::string& host_port) {
  std::string host;
  uint16_t port = 0;
  RETURN_IF_ERROR(SplitHostPort(host_port, host, port).WithContext("metrics address"));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return InvalidArgument("metrics address " + host_port + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  Status last = InvalidArgument("metrics address " + host_port + ": no address");
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) {
      last = IOErrorFromErrno("socket", errno);
      continue;
    }
    int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 16) != 0) {
      last = IOErrorFromErrno("listen on " + host_port + " (metrics)", errno);
      continue;
    }
    return fd;
  }
  return last;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
}

class HttpMetricsServer final : public MetricsServer {
 public:
  HttpMetricsServer(UniqueFd listener, NodeControl& control)
      : port_(LocalPort(listener.get())),
        pool_(std::move(listener),
              ConnectionProtocol{
                  .complete = HeadComplete,
                  .answer =
                      [&control](std::string_view request, ConnectionProtocol::Respond respond) {
                        respond(AnswerHttp(control, request));
                      },
                  .too_large_response =
                      TextResponse("431 Request Header Fields Too Large", "request too large\n")},
              ConnectionLimits{.max_request_bytes = kMaxHttpRequestBytes},
              SystemClock::Instance()) {}
  uint16_t port() const override { return port_; }
  void Poll() override { pool_.Poll(); }

 private:
  uint16_t port_;
  ConnectionPool pool_;
};

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::Listen(const std::string& host_port,
                                                             NodeControl& control) {
  ASSIGN_OR_RETURN(UniqueFd fd, ListenTcp(host_port));
  return std::unique_ptr<MetricsServer>(new HttpMetricsServer(std::move(fd), control));
}

}  // namespace flotilla::node
