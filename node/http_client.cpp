#include "node/http_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>

namespace flotilla::node {
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

Status FromError(const beast::error_code& ec, const std::string& what) {
  if (ec == beast::error::timeout) return DeadlineExceeded(what + ": timed out");
  if (ec == http::error::body_limit) return ResourceExhausted(what + ": body over the size limit");
  return Unavailable(what + ": " + ec.message());
}

Status CheckStatusCode(unsigned code, const std::string& url) {
  if (code >= 200 && code < 300) return Status::Ok();
  if (code == 404 || code == 410) return NotFound(url + ": HTTP " + std::to_string(code));
  return Unavailable(url + ": HTTP " + std::to_string(code));
}

Status Connect(beast::tcp_stream& stream, const HttpUrl& url, const HttpOptions& options,
               const std::string& what) {
  tcp::resolver resolver(stream.get_executor());
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return Unavailable(what + ": resolve " + url.host + ": " + ec.message());
  stream.expires_after(options.connect_timeout);
  stream.connect(endpoints, ec);
  if (ec) return FromError(ec, what + ": connect");
  return Status::Ok();
}

Status ReadBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                http::response_parser<http::buffer_body>& parser, const HttpOptions& options,
                const std::string& url, const std::function<Status(ByteSpan)>& sink) {
  std::vector<uint8_t> chunk(64 << 10);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::error_code ec;
    stream.expires_after(options.read_timeout);
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return FromError(ec, url);
    size_t got = chunk.size() - parser.get().body().size;
    if (got > 0) RETURN_IF_ERROR(sink(ByteSpan(chunk.data(), got)));
  }
  return Status::Ok();
}

Status GetStream(const std::string& url_text, uint64_t max_bytes, const HttpOptions& options,
                 const std::function<Status(ByteSpan)>& sink) {
  ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(url_text));
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  RETURN_IF_ERROR(Connect(stream, url, options, url_text));
  http::request<http::empty_body> request{http::verb::get, url.target, 11};
  request.set(http::field::host, url.host);
  request.set(http::field::user_agent, "flotilla-node");
  beast::error_code ec;
  stream.expires_after(options.read_timeout);
  http::write(stream, request, ec);
  if (ec) return FromError(ec, url_text);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(max_bytes);
  http::read_header(stream, buffer, parser, ec);
  if (ec) return FromError(ec, url_text);
  RETURN_IF_ERROR(CheckStatusCode(parser.get().result_int(), url_text));
  RETURN_IF_ERROR(ReadBody(stream, buffer, parser, options, url_text, sink));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return Status::Ok();
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("only http:// URLs are supported: '" + std::string(url.substr(0, 80)) +
                           "'");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  out.port = "80";
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unterminated IPv6 literal in URL");
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return InvalidArgument("malformed URL authority");
      out.port = std::string(authority.substr(close + 2));
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("malformed URL '" + std::string(url.substr(0, 80)) + "'");
  }
  return out;
}

std::string JoinUrl(std::string_view base, std::string_view relative) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  return std::string(base) + "/" + std::string(relative);
}

Status HttpGetStream(const std::string& url, uint64_t max_bytes, const HttpOptions& options,
                     const std::function<Status(ByteSpan)>& sink) {
  try {
    return GetStream(url, max_bytes, options, sink);
  } catch (const std::exception& e) {
    return Unavailable(url + ": " + e.what());
  }
}

Result<std::string> HttpGet(const std::string& url, uint64_t max_bytes,
                            const HttpOptions& options) {
  std::string body;
  RETURN_IF_ERROR(HttpGetStream(url, max_bytes, options, [&](ByteSpan chunk) {
    body.append(AsStringView(chunk));
    return Status::Ok();
  }));
  return body;
}

Status HttpGetToFile(const std::string& url, uint64_t max_bytes, const std::string& path,
                     const HttpOptions& options) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IOErrorFromErrno("create " + path, errno);
  Status st = HttpGetStream(url, max_bytes, options, [&](ByteSpan chunk) {
    size_t done = 0;
    while (done < chunk.size()) {
      ssize_t n = ::write(fd, chunk.data() + done, chunk.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return IOErrorFromErrno("write " + path, errno);
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  });
  if (::close(fd) != 0 && st.ok()) st = IOErrorFromErrno("close " + path, errno);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

}  // namespace flotilla::node
