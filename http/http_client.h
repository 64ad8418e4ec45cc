// The one HTTP client (libcurl): any method, headers, a request body, http://
// and https:// (certificate and host name verified against the system store
// or a given CA file), proxies the way libcurl takes them, bounded redirects,
// Range, and a bounded 2xx body streamed to a sink or returned.
//
// Errors are values, mapped in one place (StatusOfHttp): 401/403
// PermissionDenied, 404/410 NotFound, other 4xx InvalidArgument, 5xx and
// connection failures Unavailable, timeouts DeadlineExceeded, a body over its
// bound ResourceExhausted (reading stops there). Nothing throws.
//
// Messages name a URL by scheme://host:port only (RedactUrl): paths, queries
// and user info may carry passkeys, credentials or proxy passwords. A proxy
// that refuses the client (407, or a refused CONNECT) is PermissionDenied and
// says so.
//
// Thread-safety: a Client is used by one thread at a time. It keeps its
// connections open between calls (keep-alive to the same host is reused).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "http/byte_range.h"

namespace flotilla::http {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // TCP, proxy CONNECT and TLS handshake
  // A transfer that receives nothing for this long fails (DeadlineExceeded).
  std::chrono::milliseconds read_timeout{30'000};
  // Bound on a whole exchange; zero: none (a slow but moving download goes on).
  std::chrono::milliseconds total_timeout{0};
  std::string ca_file;  // https: trust these CAs instead of the system store
  // nullopt: libcurl's environment (http_proxy, https_proxy, no_proxy);
  // "": no proxy at all; otherwise the proxy URL ("http://user:pass@host:3128").
  std::optional<std::string> proxy;
  // With `proxy`: hosts reached directly (libcurl's NOPROXY list, "a,b.c").
  std::string no_proxy;
  int max_redirects = 5;  // 0: a redirect is an error
  std::string user_agent = "flotilla";
};

// One request.
struct Call {
  std::string method = "GET";
  std::string url;  // http://host[:port]/target or https://...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type = "application/json";  // sent with a non-empty body
  std::optional<ByteRange> range;                 // sent as a Range header; length 0: to the end
  uint64_t max_body_bytes = 1 << 20;              // of the body as decoded
  // Content codings to ask for and decode ("zstd"; empty: none asked for).
  std::string accept_encoding;
  // Headers of the final answer to return in Response::headers (any case).
  std::vector<std::string> response_headers;
  // Non-2xx statuses returned as a Response (its body: the answer's first
  // 512 bytes, never sent to a sink) instead of an error, e.g. 401 for a
  // client that answers an authentication challenge.
  std::vector<int> answered_statuses;
};

// The final (2xx) answer.
struct Response {
  int status = 0;
  std::string body;           // Fetch, or an answered non-2xx status
  std::string content_range;  // the Content-Range header, if any
  // The Call's response_headers the answer has, by name in lower case.
  std::map<std::string, std::string> headers;
};

// Receives a 2xx body chunk by chunk; an error stops the transfer and is returned.
using BodySink = std::function<Status(ByteSpan)>;

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs `call`; a 2xx body goes to `sink`. Any other answer is an error.
  Result<Response> Stream(const Call& call, const BodySink& sink);
  // Performs `call` and returns the 2xx body in `body`.
  Result<Response> Fetch(const Call& call);
  // Writes the 2xx body into the new file `path` (mode 0644); removes the
  // partial file on any error.
  Status FetchToFile(const Call& call, const std::string& path);

 private:
  struct Handle;
  ClientOptions options_;
  std::unique_ptr<Handle> handle_;
};

// The Status a non-2xx answer stands for; `what` names the call, `detail` is
// the start of the answer's body (may be empty).
Status StatusOfHttp(int status, std::string_view what, std::string_view detail = {});

// scheme://host:port of `url` (no user info, path or query); "<bad URL>" if
// it does not parse.
std::string RedactUrl(std::string_view url);

// An HTTP proxy, parsed from its URL ("http://user:pass@host:3128").
struct ProxyEndpoint {
  std::string host;
  uint16_t port = 1080;  // libcurl's default proxy port
  std::string user;      // percent-decoded; empty: no authentication
  std::string password;
};

// The proxy `options` send a request for `url` through, as libcurl picks it:
// `options.proxy` when set ("" for none), else the environment (https_proxy or
// HTTPS_PROXY for https://, http_proxy for http://, then all_proxy or
// ALL_PROXY); none when the URL's host is in `options.no_proxy` (or, from the
// environment, no_proxy / NO_PROXY): "*", or host names matching an entry or
// ending in "." + entry. Returns the proxy URL, or "" for a direct request.
std::string ProxyFor(const ClientOptions& options, std::string_view url);

// Parses an http:// proxy URL (a bare "host:port" is http). InvalidArgument
// for other schemes or a URL that does not parse; messages never hold the
// password.
Result<ProxyEndpoint> ParseProxyUrl(std::string_view proxy_url);

// Joins a base URL and a relative path with exactly one '/' between them.
std::string JoinUrl(std::string_view base, std::string_view relative);

}  // namespace flotilla::http
