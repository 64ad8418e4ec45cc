#include "node/daemon/origin_relay.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "http/http_server.h"

namespace flotilla::node {

class OriginRelay::Impl {
 public:
  Impl(std::string origin_url, http::ClientOptions options)
      : origin_url_(std::move(origin_url)), client_(std::move(options)) {}
  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen(OriginRelay& relay) {
    http::ServerOptions options;
    options.server_name = "flotilla-origin-relay";
    options.address = "127.0.0.1";
    options.max_body_bytes = 0;
    options.max_connections = 16;
    options.read_timeout = std::chrono::seconds(60);
    auto answer = [this, &relay](const http::Request& request, const http::RequestContext&) {
      return Answer(relay, request);
    };
    ASSIGN_OR_RETURN(server_,
                     http::Server::Start(io_, options, answer).WithContext("origin relay"));
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  uint16_t port() const { return server_->port(); }

 private:
  http::Reply Answer(OriginRelay& relay, const http::Request& request) {
    std::string target(request.target());
    // libtorrent 2.0.8 with an HTTP proxy set writes the absolute form
    // ("GET http://127.0.0.1:PORT/artifacts/... HTTP/1.1") to a web seed even
    // when it connects to it directly: only the path is kept.
    if (target.rfind("http://", 0) == 0) {
      const size_t path = target.find('/', 7);
      target = path == std::string::npos ? "/" : target.substr(path);
    }
    if (request.method() != http::verb::get || target.rfind("/artifacts/", 0) != 0 ||
        target.find("..") != std::string::npos || target.find('?') != std::string::npos) {
      return http::Reply::Text(http::status::not_found, "the relay serves artifacts only");
    }
    http::Call call{.url = http::JoinUrl(origin_url_, target),
                    .max_body_bytes = OriginRelay::kMaxRequestBytes + 1024};
    if (auto range = request.find(http::field::range); range != request.end()) {
      call.headers.emplace_back("Range", std::string(range->value()));
    }
    auto response = client_.Fetch(call);
    if (!response.ok()) {
      spdlog::warn("origin relay: {}", response.status().ToString());
      return http::Reply::Text(response.status().code() == StatusCode::kNotFound
                                   ? http::status::not_found
                                   : http::status::bad_gateway,
                               "origin unreachable through the proxy");
    }
    relay.bytes_relayed_ += response->body.size();
    http::Reply reply = http::Reply::Typed(static_cast<http::status>(response->status),
                                           "application/octet-stream", std::move(response->body));
    if (!response->content_range.empty()) {
      reply.headers.emplace_back("Content-Range", response->content_range);
    }
    return reply;
  }

  std::string origin_url_;
  http::Client client_;  // used on the relay's thread only
  boost::asio::io_context io_{1};
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

Result<std::unique_ptr<OriginRelay>> OriginRelay::Start(std::string origin_url,
                                                        http::ClientOptions options) {
  std::unique_ptr<OriginRelay> relay(
      new OriginRelay(std::make_unique<Impl>(std::move(origin_url), std::move(options))));
  RETURN_IF_ERROR(relay->impl_->Listen(*relay));
  return relay;
}

OriginRelay::OriginRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OriginRelay::~OriginRelay() { impl_.reset(); }

std::string OriginRelay::url() const { return "http://127.0.0.1:" + std::to_string(impl_->port()); }

}  // namespace flotilla::node
