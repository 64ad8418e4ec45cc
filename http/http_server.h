// An asynchronous HTTP/1.1 server on Boost.Beast, plain or TLS.
//
// Every read has a deadline (a slow client is dropped when it passes), header
// and body sizes are bounded (431 / 413), malformed requests get 400 and the
// connection is closed, and the number of open connections is capped (extra
// ones are closed at once), also per source address and per identity a
// request authenticated as (Reply::authenticated_as). Keep-alive is
// supported. All handlers run on the thread that runs the io_context; the
// server itself starts no threads. A handler may answer later
// (Reply::later): the connection then waits, reading nothing, until it does.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/http_reply.h"

namespace flotilla::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

struct TlsFiles {
  std::string certificate_chain;  // PEM
  std::string private_key;        // PEM
};

struct ServerOptions {
  std::string server_name = "flotilla";  // the Server header of every reply
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks; see Server::port()
  std::optional<TlsFiles> tls;
  // Time allowed for the TLS handshake, and for each request from the moment
  // the server starts waiting for it (on a kept-alive connection: from the end
  // of the previous response) until its last body byte.
  Duration read_timeout = std::chrono::seconds(10);
  Duration write_timeout = std::chrono::seconds(60);
  uint32_t max_header_bytes = 8 << 10;
  uint64_t max_body_bytes = 64 << 10;
  int max_connections = 1024;
  // Connections from one source address (hundreds of devices may share one
  // behind carrier-grade NAT). A new connection over it closes the address's
  // connection that has waited longest for a request (idle, or slow to send
  // one); with none waiting, the new one is closed.
  int max_connections_per_address = 256;
  // Kept-alive connections counted for one identity: a connection counts for
  // the identity its latest request authenticated as (Reply::authenticated_as),
  // from the answer of a request that keeps it open until it closes. One
  // more than this closes the identity's connection that has waited longest
  // for its next request; with none waiting, the one just counted is closed
  // after its answer. A request that asks for Connection: close (as
  // libtorrent's announces do) holds nothing and is not counted.
  int max_connections_per_identity = 16;
  // Load balancers whose connections start with a PROXY protocol v2 header
  // (http/proxy_protocol.h): the client it names is the connection's
  // address for everything, caps included. A connection from one of these
  // without a valid header is closed; from any other address a header is
  // never read (it would be a malformed request).
  std::vector<boost::asio::ip::address> trusted_proxies;
};

struct RequestContext {
  boost::asio::ip::address remote;
  bool tls = false;
};

using Handler = std::function<Reply(const Request&, const RequestContext&)>;
// Told of each connection closed by a cap: a fixed kind and who.
using RefusalHandler = std::function<void(const char* kind, const std::string& detail)>;

class Server {
 public:
  // Binds and starts accepting on `io`. The handler runs on io's thread.
  static Result<std::unique_ptr<Server>> Start(boost::asio::io_context& io,
                                               const ServerOptions& options, Handler handler,
                                               RefusalHandler on_refusal = nullptr);
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting; open connections finish their current exchange.
  virtual void StopAccepting() = 0;
};

}  // namespace flotilla::http
