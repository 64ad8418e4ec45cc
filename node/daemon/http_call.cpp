#include "node/daemon/http_call.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace flotilla::node {
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

struct ParsedUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;
};

Result<ParsedUrl> ParseUrl(std::string_view url) {
  ParsedUrl out;
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    out.port = "80";
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    out.tls = true;
    out.port = "443";
  } else {
    return InvalidArgument("not an http(s) URL: '" + std::string(url.substr(0, 80)) + "'");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t close = authority.rfind(']');
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (close == std::string_view::npos || colon > close)) {
    out.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
  }
  if (authority.size() >= 2 && authority.front() == '[' && authority.back() == ']') {
    authority = authority.substr(1, authority.size() - 2);
  }
  out.host = std::string(authority);
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("malformed URL '" + std::string(url.substr(0, 80)) + "'");
  }
  return out;
}

Status FromError(const beast::error_code& ec, const std::string& what) {
  if (ec == beast::error::timeout) return DeadlineExceeded(what + ": timed out");
  if (ec == http::error::body_limit) return ResourceExhausted(what + ": body over the size limit");
  return Unavailable(what + ": " + ec.message());
}

std::string Where(const HttpCall& call, const ParsedUrl& url) {
  // Never the target: it may carry a passkey.
  return call.method + " " + (url.tls ? "https://" : "http://") + url.host + ":" + url.port;
}

template <typename Stream>
Status ReadBody(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
                http::response_parser<http::buffer_body>& parser, const HttpCall& call,
                const std::string& where, HttpReply& reply,
                const std::function<Status(ByteSpan)>& sink) {
  const bool ok_status = reply.status >= 200 && reply.status < 300;
  std::vector<uint8_t> chunk(64 << 10);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::error_code ec;
    lowest.expires_after(call.read_timeout);
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return FromError(ec, where);
    size_t got = chunk.size() - parser.get().body().size;
    if (got == 0) continue;
    if (ok_status) {
      RETURN_IF_ERROR(sink(ByteSpan(chunk.data(), got)));
    } else if (reply.error_body.size() < 4096) {
      reply.error_body.append(reinterpret_cast<const char*>(chunk.data()),
                              std::min<size_t>(got, 4096 - reply.error_body.size()));
    }
  }
  return Status::Ok();
}

template <typename Stream>
Result<HttpReply> Exchange(Stream& stream, beast::tcp_stream& lowest, const HttpCall& call,
                           const ParsedUrl& url, const std::function<Status(ByteSpan)>& sink) {
  const std::string where = Where(call, url);
  http::request<http::string_body> request{http::string_to_verb(call.method), url.target, 11};
  request.set(http::field::host, url.host);
  request.set(http::field::user_agent, "flotilla-node");
  for (const auto& [name, value] : call.headers) request.set(name, value);
  if (!call.body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = call.body;
  }
  request.prepare_payload();
  beast::error_code ec;
  lowest.expires_after(call.read_timeout);
  http::write(stream, request, ec);
  if (ec) return FromError(ec, where);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(call.max_body_bytes);
  http::read_header(stream, buffer, parser, ec);
  if (ec) return FromError(ec, where);
  HttpReply reply;
  reply.status = parser.get().result_int();
  auto range = parser.get().find(http::field::content_range);
  if (range != parser.get().end()) reply.content_range = std::string(range->value());
  RETURN_IF_ERROR(ReadBody(stream, lowest, buffer, parser, call, where, reply, sink));
  return reply;
}

Status Connect(beast::tcp_stream& stream, const HttpCall& call, const ParsedUrl& url) {
  tcp::resolver resolver(stream.get_executor());
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return Unavailable(Where(call, url) + ": resolve: " + ec.message());
  stream.expires_after(call.connect_timeout);
  stream.connect(endpoints, ec);
  if (ec) return FromError(ec, Where(call, url) + ": connect");
  return Status::Ok();
}

Result<HttpReply> PerformTls(boost::asio::io_context& io, const HttpCall& call,
                             const ParsedUrl& url, const std::function<Status(ByteSpan)>& sink) {
  ssl::context context(ssl::context::tls_client);
  context.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                      ssl::context::no_tlsv1_1);
  beast::error_code ec;
  if (call.ca_file.empty()) {
    context.set_default_verify_paths(ec);
  } else {
    context.load_verify_file(call.ca_file, ec);
  }
  if (ec) return InvalidArgument("TLS trust store: " + ec.message());
  context.set_verify_mode(ssl::verify_peer);
  context.set_verify_callback(ssl::host_name_verification(url.host));
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    return Internal("TLS: cannot set the server name");
  }
  RETURN_IF_ERROR(Connect(beast::get_lowest_layer(stream), call, url));
  beast::get_lowest_layer(stream).expires_after(call.connect_timeout);
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) return FromError(ec, Where(call, url) + ": TLS handshake");
  return Exchange(stream, beast::get_lowest_layer(stream), call, url, sink);
}

}  // namespace

Result<HttpReply> PerformHttpCall(const HttpCall& call,
                                  const std::function<Status(ByteSpan)>& sink) {
  ASSIGN_OR_RETURN(ParsedUrl url, ParseUrl(call.url));
  try {
    boost::asio::io_context io;
    if (url.tls) return PerformTls(io, call, url, sink);
    beast::tcp_stream stream(io);
    RETURN_IF_ERROR(Connect(stream, call, url));
    auto reply = Exchange(stream, stream, call, url, sink);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return reply;
  } catch (const std::exception& e) {
    return Unavailable(Where(call, url) + ": " + e.what());
  }
}

Status StatusOfReply(const HttpCall& call, const HttpReply& reply) {
  if (reply.status >= 200 && reply.status < 300) return Status::Ok();
  std::string text = call.method + " " + call.url.substr(0, call.url.find('/', 8)) + ": HTTP " +
                     std::to_string(reply.status);
  if (!reply.error_body.empty()) text += " " + reply.error_body.substr(0, 200);
  if (reply.status == 401 || reply.status == 403) return PermissionDenied(text);
  if (reply.status == 404 || reply.status == 410) return NotFound(text);
  if (reply.status >= 400 && reply.status < 500) return InvalidArgument(text);
  return Unavailable(text);
}

Result<std::string> HttpCallText(const HttpCall& call) {
  std::string body;
  ASSIGN_OR_RETURN(HttpReply reply, PerformHttpCall(call, [&](ByteSpan chunk) {
                     body.append(AsStringView(chunk));
                     return Status::Ok();
                   }));
  RETURN_IF_ERROR(StatusOfReply(call, reply));
  return body;
}

}  // namespace flotilla::node
