#include "http/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "http/proxy_protocol.h"

namespace flotilla::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A connection as its address's and its identity's bookkeeping see it.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void Evict() = 0;
  // Since when it waits for a request (idle or slow), if it does.
  virtual std::optional<std::chrono::steady_clock::time_point> waiting_since() const = 0;
};

struct AddressConnections {
  int open = 0;
  int evicted = 0;                 // closed by a cap, not yet gone
  std::list<Connection*> waiting;  // waiting for a request, longest first
};

struct ServerShared {
  ServerOptions options;
  Handler handler;
  RefusalHandler on_refusal;
  int open_connections = 0;
  std::map<asio::ip::address, AddressConnections> by_address;
  // Kept-alive connections per identity they authenticated as, not closed by a cap.
  std::map<std::string, std::vector<Connection*>, std::less<>> by_identity;
  std::unique_ptr<asio::ssl::context> tls;

  void Refuse(const char* kind, const asio::ip::address& from) {
    if (!on_refusal) return;
    auto it = by_address.find(from);
    const int open = it == by_address.end() ? 0 : it->second.open - it->second.evicted;
    on_refusal(kind, "connection from " + from.to_string() + " (" + std::to_string(open) +
                         " open from there, " + std::to_string(open_connections) + " in all)");
  }
  void RefuseIdentity(const char* kind, const std::string& identity, size_t open) {
    if (!on_refusal) return;
    on_refusal(kind, "connection of " + identity + " (" + std::to_string(open) + " open)");
  }
};

bool IsHttpProtocolError(const beast::error_code& ec) {
  return ec.category() == beast::error_code(beast::http::error::bad_target).category();
}

// What to answer when reading a request failed; nullopt: just close.
std::optional<Reply> ReplyForReadError(const beast::error_code& ec) {
  if (ec == beast::http::error::header_limit) {
    return Reply::Text(status::request_header_fields_too_large, "headers too large");
  }
  if (ec == beast::http::error::body_limit) {
    return Reply::Text(status::payload_too_large, "body too large");
  }
  if (ec == beast::http::error::end_of_stream || ec == beast::http::error::partial_message ||
      ec == beast::error::timeout || !IsHttpProtocolError(ec)) {
    return std::nullopt;  // the client left, stalled, or the transport failed
  }
  return Reply::Text(status::bad_request, "malformed request");
}

void ApplyHeaders(const Reply& reply, const std::string& server_name, beast::http::fields& fields) {
  fields.set(field::server, server_name);
  fields.set(field::content_type, reply.content_type);
  for (const auto& [name, value] : reply.headers) fields.set(name, value);
}

template <class Stream>
class Session : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, std::shared_ptr<ServerShared> shared, RequestContext context)
      : stream_(std::move(stream)),
        shared_(std::move(shared)),
        context_(context),
        // Room for a full head at the limit, so that a large head fails with
        // header_limit (431), not with a buffer overflow.
        buffer_(shared_->options.max_header_bytes + (16 << 10)) {
    ++shared_->by_address[context_.remote].open;
  }
  ~Session() override {
    --shared_->open_connections;
    StopWaiting();
    Uncount();
    auto it = shared_->by_address.find(context_.remote);
    if (evicted_) --it->second.evicted;
    if (--it->second.open == 0) shared_->by_address.erase(it);
  }

  // Closes the socket: pending reads end with an error and the session goes.
  void Evict() override {
    if (evicted_) return;
    evicted_ = true;
    ++shared_->by_address[context_.remote].evicted;
    StopWaiting();
    Uncount();
    beast::error_code ignored;
    Tcp().socket().close(ignored);
  }

  std::optional<std::chrono::steady_clock::time_point> waiting_since() const override {
    if (!waiting_) return std::nullopt;
    return waiting_since_;
  }

  void Start() {
    StartWaiting();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      Tcp().expires_after(shared_->options.read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->ReadRequest();
                              });
    } else {
      ReadRequest();
    }
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void StartWaiting() {
    if (waiting_) return;
    auto& list = shared_->by_address[context_.remote].waiting;
    waiting_ = list.insert(list.end(), this);
    waiting_since_ = std::chrono::steady_clock::now();
  }
  void StopWaiting() {
    if (!waiting_) return;
    shared_->by_address[context_.remote].waiting.erase(*waiting_);
    waiting_.reset();
  }

  void ReadRequest() {
    StartWaiting();
    parser_.emplace();
    parser_->header_limit(shared_->options.max_header_bytes);
    parser_->body_limit(shared_->options.max_body_bytes);
    Tcp().expires_after(shared_->options.read_timeout);
    beast::http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A client that sent "Expect: 100-continue" (curl does for bodies over
  // 1 KiB) waits for a 100 before sending its body; the deadline set in
  // ReadRequest keeps running across both halves.
  void OnHeader(beast::error_code ec) {
    if (ec || parser_->is_done()) return OnRead(ec);
    auto expect = parser_->get().find(field::expect);
    if (expect == parser_->get().end() || !beast::iequals(expect->value(), "100-continue")) {
      return ReadBody();
    }
    auto go_on = std::make_shared<beast::http::response<beast::http::empty_body>>(
        status::continue_, parser_->get().version());
    auto& ref = *go_on;
    beast::http::async_write(
        stream_, ref, [self = this->shared_from_this(), go_on](beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->ReadBody();
        });
  }

  void ReadBody() {
    beast::http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    StopWaiting();
    if (ec) {
      if (ec == beast::error::timeout) shared_->Refuse("connection_timeout", context_.remote);
      if (auto reply = ReplyForReadError(ec)) {
        shared_->Refuse(
            reply->status == status::bad_request ? "request_malformed" : "request_too_large",
            context_.remote);
        return Send(std::move(*reply), 11, false);
      }
      return Close();
    }
    Request request = parser_->release();
    const bool keep_alive = request.keep_alive();
    const unsigned version = request.version();
    Reply reply = shared_->handler(request, context_);
    if (reply.later) {
      // Held: the handler answers through `answer`, which keeps this session alive.
      auto later = std::move(reply.later);
      later([self = this->shared_from_this(), version, keep_alive](Reply answer) {
        self->Answer(std::move(answer), version, keep_alive);
      });
      return;
    }
    Answer(std::move(reply), version, keep_alive);
  }

  void Answer(Reply reply, unsigned version, bool keep_alive) {
    if (evicted_) return;
    if (keep_alive && !reply.close_connection && !reply.authenticated_as.empty()) {
      CountFor(reply.authenticated_as, reply);
    }
    Send(std::move(reply), version, keep_alive);
  }

  // Counts this kept-alive connection for `identity`; over its cap, closes the
  // identity's connection that has waited longest for a request, or this one
  // after `reply` when none waits.
  void CountFor(const std::string& identity, Reply& reply) {
    if (identity == identity_) return;
    Uncount();
    identity_ = identity;
    std::vector<Connection*>& mine = shared_->by_identity[identity_];
    mine.push_back(this);
    const size_t cap =
        static_cast<size_t>(std::max(shared_->options.max_connections_per_identity, 1));
    while (mine.size() > cap) {
      Connection* idlest = nullptr;
      std::chrono::steady_clock::time_point idlest_since{};
      for (Connection* c : mine) {
        auto since = c->waiting_since();
        if (c == this || !since) continue;
        if (idlest == nullptr || *since < idlest_since) {
          idlest = c;
          idlest_since = *since;
        }
      }
      if (idlest == nullptr) {
        shared_->RefuseIdentity("connection_per_identity", identity, mine.size());
        reply.close_connection = true;
        Uncount();
        return;
      }
      idlest->Evict();  // leaves `mine`
      shared_->RefuseIdentity("connection_per_identity_evicted", identity, mine.size());
    }
  }

  void Uncount() {
    if (identity_.empty()) return;
    auto it = shared_->by_identity.find(identity_);
    if (it != shared_->by_identity.end()) {
      std::erase(it->second, static_cast<Connection*>(this));
      if (it->second.empty()) shared_->by_identity.erase(it);
    }
    identity_.clear();
  }

  void Send(Reply reply, unsigned version, bool keep_alive) {
    keep_alive = keep_alive && !reply.close_connection;
    if (reply.file) return Respond<FileRangeBody>(reply, version, keep_alive, *reply.file);
    Respond<beast::http::string_body>(reply, version, keep_alive, reply.body);
  }

  // Answers with `body` (moved from) under the reply's status and headers.
  template <class Body, class Value>
  void Respond(const Reply& reply, unsigned version, bool keep_alive, Value& body) {
    auto res = std::make_shared<beast::http::response<Body>>(reply.status, version);
    ApplyHeaders(reply, shared_->options.server_name, res->base());
    res->body() = std::move(body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    Write(std::move(res), !keep_alive);
  }

  template <class Message>
  void Write(std::shared_ptr<Message> message, bool close_after) {
    Tcp().expires_after(shared_->options.write_timeout);
    auto& ref = *message;
    beast::http::async_write(stream_, ref,
                             [self = this->shared_from_this(), message = std::move(message),
                              close_after](beast::error_code ec, size_t) {
                               if (ec || close_after) return self->Close();
                               self->ReadRequest();
                             });
  }

  void Close() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      Tcp().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  Stream stream_;
  std::shared_ptr<ServerShared> shared_;
  RequestContext context_;
  beast::flat_buffer buffer_;
  std::optional<beast::http::request_parser<beast::http::string_body>> parser_;
  std::optional<std::list<Connection*>::iterator> waiting_;
  std::chrono::steady_clock::time_point waiting_since_{};
  std::string identity_;  // counted for it in by_identity (empty: none)
  bool evicted_ = false;
};

// Accepts connections until stopped; each becomes a Session.
class AcceptLoop : public std::enable_shared_from_this<AcceptLoop> {
 public:
  AcceptLoop(asio::io_context& io, std::shared_ptr<ServerShared> shared)
      : io_(io), acceptor_(io), retry_timer_(io), shared_(std::move(shared)) {}

  Status Bind() {
    try {
      auto address = asio::ip::make_address(shared_->options.address);
      tcp::endpoint endpoint(address, shared_->options.port);
      acceptor_.open(endpoint.protocol());
      acceptor_.set_option(asio::socket_base::reuse_address(true));
      acceptor_.bind(endpoint);
      acceptor_.listen(asio::socket_base::max_listen_connections);
      port_ = acceptor_.local_endpoint().port();
    } catch (const std::exception& e) {
      return Unavailable("listen on " + shared_->options.address + ":" +
                         std::to_string(shared_->options.port) + ": " + e.what());
    }
    return Status::Ok();
  }

  void Accept() {
    acceptor_.async_accept(
        io_, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
          if (ec) {  // e.g. out of file descriptors: back off instead of spinning
            spdlog::warn("accept failed: {}", ec.message());
            self->retry_timer_.expires_after(std::chrono::milliseconds(100));
            self->retry_timer_.async_wait([self](beast::error_code) { self->Accept(); });
            return;
          }
          self->Admit(std::move(socket));
          self->Accept();
        });
  }

  void Stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  }

  uint16_t port() const { return port_; }

 private:
  void Admit(tcp::socket socket) {
    beast::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (ec) return;
    if (shared_->open_connections >= shared_->options.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // over the cap: refuse rather than queue
      shared_->Refuse("connection_total", endpoint.address());
      return;
    }
    const auto& proxies = shared_->options.trusted_proxies;
    if (std::find(proxies.begin(), proxies.end(), endpoint.address()) != proxies.end()) {
      return ReadProxyHeader(std::move(socket), endpoint.address());
    }
    Open(std::move(socket), endpoint.address());
  }

  // A trusted balancer's connection starts with a PROXY v2 header naming the
  // client: read it under the request deadline, then admit the connection as
  // the client's (its caps, its address in RequestContext).
  void ReadProxyHeader(tcp::socket socket, const asio::ip::address& proxy) {
    struct Pending {
      explicit Pending(tcp::socket s) : stream(std::move(s)) {}
      beast::tcp_stream stream;
      std::array<uint8_t, kProxyHeaderFixedBytes> fixed{};
      std::vector<uint8_t> rest;
    };
    auto pending = std::make_shared<Pending>(std::move(socket));
    auto refuse = [self = shared_from_this(), pending, proxy](const std::string& why) {
      spdlog::warn("connection from balancer {} closed: {}", proxy.to_string(), why);
      self->shared_->Refuse("proxy_header_malformed", proxy);
      beast::error_code ignored;
      pending->stream.socket().close(ignored);
    };
    pending->stream.expires_after(shared_->options.read_timeout);
    asio::async_read(
        pending->stream, asio::buffer(pending->fixed),
        [self = shared_from_this(), pending, proxy, refuse](beast::error_code ec, size_t) {
          if (ec) return refuse(ec.message());
          auto length =
              ProxyHeaderRestLength(ByteSpan(pending->fixed.data(), kProxyHeaderFixedBytes));
          if (!length.ok()) return refuse(length.status().message());
          pending->rest.resize(*length);
          asio::async_read(
              pending->stream, asio::buffer(pending->rest),
              [self, pending, proxy, refuse](beast::error_code ec, size_t) {
                if (ec) return refuse(ec.message());
                auto source =
                    ProxyHeaderSource(ByteSpan(pending->fixed.data(), pending->fixed.size()),
                                      ByteSpan(pending->rest.data(), pending->rest.size()));
                if (!source.ok()) return refuse(source.status().message());
                pending->stream.expires_never();
                if (self->shared_->open_connections >= self->shared_->options.max_connections) {
                  return refuse("over the connection cap");
                }
                self->Open(pending->stream.release_socket(), source->value_or(proxy));
              });
        });
  }

  void Open(tcp::socket socket, const asio::ip::address& client) {
    if (!MakeRoomFor(client)) {
      beast::error_code ignored;
      socket.close(ignored);
      shared_->Refuse("connection_per_address", client);
      return;
    }
    RequestContext context;
    context.remote = client;
    context.tls = shared_->tls != nullptr;
    ++shared_->open_connections;
    if (shared_->tls) {
      std::make_shared<Session<TlsStream>>(TlsStream(std::move(socket), *shared_->tls), shared_,
                                           context)
          ->Start();
    } else {
      std::make_shared<Session<PlainStream>>(PlainStream(std::move(socket)), shared_, context)
          ->Start();
    }
  }

  // Below the address's cap, or at it with a waiting connection to close.
  bool MakeRoomFor(const asio::ip::address& address) {
    auto it = shared_->by_address.find(address);
    if (it == shared_->by_address.end()) return true;
    int open = it->second.open - it->second.evicted;
    auto& waiting = it->second.waiting;
    for (; open >= shared_->options.max_connections_per_address; --open) {
      if (waiting.empty()) return false;
      waiting.front()->Evict();  // removes itself from `waiting`
      shared_->Refuse("connection_per_address_evicted", address);
    }
    return true;
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::shared_ptr<ServerShared> shared_;
  uint16_t port_ = 0;
};

Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const TlsFiles& files) {
  try {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(files.certificate_chain);
    ctx->use_private_key_file(files.private_key, asio::ssl::context::pem);
    return ctx;
  } catch (const std::exception& e) {
    // The message names the files and OpenSSL's reason, never key material.
    return InvalidArgument("TLS certificate " + files.certificate_chain + " / key " +
                           files.private_key + ": " + e.what());
  }
}

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(std::shared_ptr<AcceptLoop> loop) : loop_(std::move(loop)) {}
  ~ServerImpl() override { loop_->Stop(); }
  uint16_t port() const override { return loop_->port(); }
  void StopAccepting() override { loop_->Stop(); }

 private:
  std::shared_ptr<AcceptLoop> loop_;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(asio::io_context& io, const ServerOptions& options,
                                              Handler handler, RefusalHandler on_refusal) {
  auto shared = std::make_shared<ServerShared>();
  shared->options = options;
  shared->handler = std::move(handler);
  shared->on_refusal = std::move(on_refusal);
  if (options.tls) {
    ASSIGN_OR_RETURN(shared->tls, MakeTlsContext(*options.tls));
  }
  auto loop = std::make_shared<AcceptLoop>(io, shared);
  RETURN_IF_ERROR(loop->Bind());
  loop->Accept();
  return std::unique_ptr<Server>(new ServerImpl(std::move(loop)));
}

}  // namespace flotilla::http
