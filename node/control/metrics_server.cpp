// MetricsServer: GET /metrics on http/'s Beast server, whose io_context the
// daemon's loop polls (handlers run on the loop, which owns the view).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "http/http_server.h"
#include "node/control/control_server.h"
#include "node/control/host_port.h"
#include "node/control/metrics_text.h"

namespace flotilla::node {
namespace {

http::Reply Answer(NodeControl& control, const http::Request& request) {
  const std::string_view target = request.target();
  if (target.substr(0, target.find('?')) != "/metrics") {
    return http::Reply::Text(http::status::not_found, "not found: try /metrics");
  }
  if (request.method() != http::verb::get) {
    http::Reply reply = http::Reply::Text(http::status::method_not_allowed, "only GET");
    reply.headers = {{"Allow", "GET"}};
    return reply;
  }
  return http::Reply::Typed(http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                            RenderMetrics(control.View()));
}

// One request per connection, as scrapers use it.
http::Reply AnswerMetrics(NodeControl& control, const http::Request& request) {
  http::Reply reply = Answer(control, request);
  reply.close_connection = true;
  return reply;
}

// The first address `host` names ("" : every IPv4 address).
Result<std::string> ResolveHost(boost::asio::io_context& io, const std::string& host) {
  if (host.empty()) return std::string("0.0.0.0");
  boost::system::error_code ec;
  auto found = boost::asio::ip::tcp::resolver(io).resolve(host, "", ec);
  if (ec || found.empty()) return InvalidArgument("metrics address " + host + ": " + ec.message());
  return found.begin()->endpoint().address().to_string();
}

class HttpMetricsServer final : public MetricsServer {
 public:
  Status Start(const std::string& host_port, NodeControl& control) {
    http::ServerOptions options{.server_name = "flotilla-node"};
    std::string host;
    RETURN_IF_ERROR(SplitHostPort(host_port, host, options.port).WithContext("metrics address"));
    ASSIGN_OR_RETURN(options.address, ResolveHost(io_, host));
    ASSIGN_OR_RETURN(server_, http::Server::Start(io_, options,
                                                  [&control](const http::Request& request,
                                                             const http::RequestContext&) {
                                                    return AnswerMetrics(control, request);
                                                  }));
    return Status::Ok();
  }
  uint16_t port() const override { return server_->port(); }
  void Poll() override { io_.poll(); }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::Listen(const std::string& host_port,
                                                             NodeControl& control) {
  auto server = std::make_unique<HttpMetricsServer>();
  RETURN_IF_ERROR(server->Start(host_port, control).WithContext("metrics"));
  return std::unique_ptr<MetricsServer>(std::move(server));
}

}  // namespace flotilla::node
