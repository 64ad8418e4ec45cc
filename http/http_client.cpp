#include "http/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/fd.h"

namespace flotilla::http {
namespace {

// How much of a non-2xx body is kept for the error message.
constexpr size_t kErrorBodyBytes = 512;

void InitLibcurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  void Add(const std::string& line) {
    if (curl_slist* grown = curl_slist_append(list, line.c_str())) list = grown;
  }
};

// What one exchange collects from libcurl's callbacks.
struct Transfer {
  CURL* curl;
  const Call& call;
  const BodySink& sink;
  const std::string& where;
  uint64_t received = 0;
  std::string error_body;
  Status stopped;  // why a callback ended the transfer, if one did
};

long ResponseCode(CURL* curl) {
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

bool IsSuccess(long code) { return code >= 200 && code < 300; }

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (n > t.call.max_body_bytes - std::min(t.received, t.call.max_body_bytes)) {
    t.stopped = ResourceExhausted(t.where + ": body over the limit of " +
                                  std::to_string(t.call.max_body_bytes) + " bytes");
    return 0;
  }
  t.received += n;
  if (!IsSuccess(ResponseCode(t.curl))) {
    t.error_body.append(data, std::min(n, kErrorBodyBytes - t.error_body.size()));
    return n;
  }
  try {
    t.stopped = t.sink(ByteSpan(reinterpret_cast<const uint8_t*>(data), n));
  } catch (const std::exception& e) {
    t.stopped = Internal(t.where + ": " + e.what());
  }
  return t.stopped.ok() ? n : 0;
}

// The Content-Range header of the last answer (after any redirect or a
// proxy's CONNECT), if it has one.
std::string ContentRange(CURL* curl) {
  curl_header* header = nullptr;
  if (curl_easy_header(curl, "Content-Range", 0, CURLH_HEADER, -1, &header) != CURLHE_OK) return "";
  return header->value;
}

// The headers `names` of the last answer that it has, by lower-case name.
std::map<std::string, std::string> ResponseHeaders(CURL* curl,
                                                   const std::vector<std::string>& names) {
  std::map<std::string, std::string> out;
  for (const std::string& name : names) {
    curl_header* header = nullptr;
    if (curl_easy_header(curl, name.c_str(), 0, CURLH_HEADER, -1, &header) != CURLHE_OK) continue;
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    out[lower] = header->value;
  }
  return out;
}

// Replaces, in a libcurl message, every URL by scheme://host:port and every
// user:password@host by host: libcurl may quote a proxy or request URL.
std::string RedactMessage(const std::string& message) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    const size_t end = message.find_first_of(" '\"`()<>,", i);
    std::string token = message.substr(i, end == std::string::npos ? std::string::npos : end - i);
    if (token.find("://") != std::string::npos) {
      token = RedactUrl(token);
    } else if (size_t at = token.rfind('@'); at != std::string::npos) {
      token = token.substr(at + 1);
    }
    out += token;
    if (end == std::string::npos) break;
    out += message[end];
    i = end + 1;
  }
  return out;
}

Status StatusOfCurl(CURLcode code, const std::string& where, const char* error_buffer) {
  std::string text =
      where + ": " +
      RedactMessage(error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return DeadlineExceeded(text);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return InvalidArgument(text);
    case CURLE_FILESIZE_EXCEEDED:
      return ResourceExhausted(text);
    default:
      return Unavailable(text);
  }
}

long WholeSeconds(std::chrono::milliseconds d) {
  return static_cast<long>(std::max<int64_t>(1, (d.count() + 999) / 1000));
}

void SetTransport(CURL* c, const ClientOptions& o) {
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o.max_redirects > 0 ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(o.max_redirects));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, WholeSeconds(o.read_timeout));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(o.total_timeout.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, o.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!o.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
  if (o.proxy) curl_easy_setopt(c, CURLOPT_PROXY, o.proxy->c_str());
  if (!o.no_proxy.empty()) curl_easy_setopt(c, CURLOPT_NOPROXY, o.no_proxy.c_str());
}

// `expect_continue`: the body waits for the server's (or proxy's) go-ahead.
void SetRequest(CURL* c, const Call& call, HeaderList& headers, bool expect_continue) {
  curl_easy_setopt(c, CURLOPT_URL, call.url.c_str());
  if (call.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (call.method != "GET" && call.method != "POST") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
  if (!call.body.empty() || call.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.body.c_str());
  }
  if (!call.body.empty()) headers.Add("Content-Type: " + call.content_type);
  // No 100-continue round trip before a body, except through a proxy for a
  // plain http request: a proxy that refuses the client (407) answers before
  // the body and may close at once, and a body already sent would turn its
  // answer into a connection reset.
  headers.Add(expect_continue ? "Expect: 100-continue" : "Expect:");
  for (const auto& [name, value] : call.headers) headers.Add(name + ": " + value);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  if (call.range) {
    const ByteRange& r = *call.range;
    std::string range = std::to_string(r.offset) + "-";
    if (r.length > 0) range += std::to_string(r.offset + r.length - 1);
    curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());  // libcurl copies strings
  }
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(call.max_body_bytes));
  // libcurl decodes the body; OnBody bounds what it decodes to.
  if (!call.accept_encoding.empty()) {
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, call.accept_encoding.c_str());
  }
}

}  // namespace

struct Client::Handle {
  CURL* curl = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  ~Handle() { curl_easy_cleanup(curl); }
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  InitLibcurlOnce();
  handle_ = std::make_unique<Handle>();
  handle_->curl = curl_easy_init();
}

Client::~Client() = default;

Result<Response> Client::Stream(const Call& call, const BodySink& sink) {
  const std::string where = call.method + " " + RedactUrl(call.url);
  CURL* c = handle_->curl;
  if (c == nullptr) return Internal(where + ": libcurl could not start");
  curl_easy_reset(c);  // options only: open connections stay for reuse
  Transfer t{c, call, sink, where};
  HeaderList headers;
  SetTransport(c, options_);
  const bool expect_continue = !call.body.empty() && call.url.rfind("http://", 0) == 0 &&
                               !ProxyFor(options_, call.url).empty();
  SetRequest(c, call, headers, expect_continue);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  handle_->error[0] = '\0';
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, handle_->error);
  const CURLcode code = curl_easy_perform(c);
  const long status = ResponseCode(c);
  long connect_status = 0;  // the proxy's answer to CONNECT (https:// through a proxy)
  curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &connect_status);
  if (code != CURLE_OK && connect_status >= 300) {
    return StatusOfHttp(static_cast<int>(connect_status), where + " (proxy CONNECT)");
  }
  if (code == CURLE_OK && !IsSuccess(status) &&
      std::find(call.answered_statuses.begin(), call.answered_statuses.end(), status) !=
          call.answered_statuses.end()) {
    return Response{static_cast<int>(status), t.error_body, ContentRange(c),
                    ResponseHeaders(c, call.response_headers)};
  }
  if (status != 0 && !IsSuccess(status) &&
      (code == CURLE_OK || code == CURLE_WRITE_ERROR || code == CURLE_FILESIZE_EXCEEDED)) {
    return StatusOfHttp(static_cast<int>(status), where, t.error_body);
  }
  if (!t.stopped.ok()) return t.stopped;
  if (code == CURLE_FILESIZE_EXCEEDED) {
    return ResourceExhausted(where + ": body over the limit of " +
                             std::to_string(call.max_body_bytes) + " bytes");
  }
  if (code != CURLE_OK) return StatusOfCurl(code, where, handle_->error);
  if (!IsSuccess(status)) return StatusOfHttp(static_cast<int>(status), where, t.error_body);
  return Response{
      static_cast<int>(status), {}, ContentRange(c), ResponseHeaders(c, call.response_headers)};
}

Result<Response> Client::Fetch(const Call& call) {
  std::string body;
  ASSIGN_OR_RETURN(Response response, Stream(call, [&](ByteSpan chunk) {
                     body.append(AsStringView(chunk));
                     return Status::Ok();
                   }));
  if (IsSuccess(response.status)) response.body = std::move(body);
  return response;
}

Status Client::FetchToFile(const Call& call, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return IOErrorFromErrno("create " + path, errno);
  Status st = Stream(call, [&](ByteSpan chunk) {
                return WriteAll(fd.get(), chunk).WithContext(path);
              }).status();
  if (::close(fd.Release()) != 0 && st.ok()) st = IOErrorFromErrno("close " + path, errno);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

Status StatusOfHttp(int status, std::string_view what, std::string_view detail) {
  std::string text = std::string(what) + ": HTTP " + std::to_string(status);
  if (status == 407) {
    // The proxy, not the server, answered: its credentials are missing or wrong.
    return PermissionDenied(text +
                            ": the proxy asks for authentication (give user:password "
                            "in the proxy URL) or refused the ones given");
  }
  if (!detail.empty()) text += " " + RedactMessage(std::string(detail.substr(0, 200)));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (status == 401 || status == 403) return PermissionDenied(text);
  if (status == 404 || status == 410) return NotFound(text);
  if (status >= 400 && status < 500) return InvalidArgument(text);
  return Unavailable(text);
}

std::string RedactUrl(std::string_view url) {
  CURLU* u = curl_url();
  std::string out = "<bad URL>";
  char *scheme = nullptr, *host = nullptr, *port = nullptr;
  if (u != nullptr &&
      curl_url_set(u, CURLUPART_URL, std::string(url).c_str(), CURLU_NON_SUPPORT_SCHEME) ==
          CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    out = std::string(scheme) + "://" + host + ":" + port;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

namespace {

std::string EnvOr(const char* lower, const char* upper) {
  if (const char* v = std::getenv(lower); v != nullptr && *v != '\0') return v;
  if (upper == nullptr) return "";
  if (const char* v = std::getenv(upper); v != nullptr && *v != '\0') return v;
  return "";
}

// The scheme and host of `url`, lower case; false if it does not parse.
bool SchemeAndHost(std::string_view url, std::string& scheme, std::string& host) {
  CURLU* u = curl_url();
  char *s = nullptr, *h = nullptr;
  const bool ok = u != nullptr &&
                  curl_url_set(u, CURLUPART_URL, std::string(url).c_str(), 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK;
  if (ok) {
    scheme = s;
    host = h;
    for (std::string* part : {&scheme, &host}) {
      std::transform(part->begin(), part->end(), part->begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
  }
  curl_free(s);
  curl_free(h);
  curl_url_cleanup(u);
  return ok;
}

// Whether the address literal `host` is inside `entry`, "address/bits"
// (libcurl reads such no_proxy entries since 7.86).
bool InCidr(const std::string& host, const std::string& entry) {
  const size_t slash = entry.find('/');
  if (slash == std::string::npos) return false;
  const int family = host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  const int bytes = family == AF_INET6 ? 16 : 4;
  unsigned char address[16], network[16];
  int bits = -1;
  const char* end = entry.data() + entry.size();
  if (::inet_pton(family, host.c_str(), address) != 1 ||
      ::inet_pton(family, entry.substr(0, slash).c_str(), network) != 1 ||
      std::from_chars(entry.data() + slash + 1, end, bits).ptr != end || bits < 0 ||
      bits > 8 * bytes) {
    return false;
  }
  const int whole = bits / 8;
  if (std::memcmp(address, network, static_cast<size_t>(whole)) != 0) return false;
  if (bits % 8 == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - bits % 8));
  return (address[whole] & mask) == (network[whole] & mask);
}

// libcurl's no_proxy rule: "*", a host equal to an entry or inside its
// domain, or an address inside an "address/bits" entry.
bool HostIsExempt(const std::string& host, std::string_view list) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string entry(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    std::transform(entry.begin(), entry.end(), entry.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (entry == "*") return true;
    while (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
    if (entry.size() > 2 && entry.front() == '[' && entry.back() == ']') {
      entry = entry.substr(1, entry.size() - 2);
    }
    if (entry.empty()) continue;
    if (host == entry || InCidr(host, entry)) return true;
    if (host.size() > entry.size() && host.ends_with(entry) &&
        host[host.size() - entry.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

std::string UrlDecoded(const char* text) {
  int length = 0;
  char* decoded = curl_easy_unescape(nullptr, text, 0, &length);
  std::string out = decoded != nullptr ? std::string(decoded, static_cast<size_t>(length)) : "";
  curl_free(decoded);
  return out;
}

}  // namespace

std::string ProxyFor(const ClientOptions& options, std::string_view url) {
  std::string scheme, host;
  if (!SchemeAndHost(url, scheme, host)) return "";
  if (options.proxy) {
    if (options.proxy->empty() || HostIsExempt(host, options.no_proxy)) return "";
    return *options.proxy;
  }
  std::string proxy = scheme == "https"  ? EnvOr("https_proxy", "HTTPS_PROXY")
                      : scheme == "http" ? EnvOr("http_proxy", nullptr)
                                         : std::string();
  if (proxy.empty()) proxy = EnvOr("all_proxy", "ALL_PROXY");
  if (proxy.empty() || HostIsExempt(host, EnvOr("no_proxy", "NO_PROXY"))) return "";
  return proxy;
}

Result<ProxyEndpoint> ParseProxyUrl(std::string_view proxy_url) {
  std::string text(proxy_url);
  if (text.find("://") == std::string::npos) text = "http://" + text;
  const std::string shown = RedactUrl(text);
  CURLU* u = curl_url();
  char *scheme = nullptr, *host = nullptr, *port = nullptr, *user = nullptr, *password = nullptr;
  Status st = Status::Ok();
  if (u == nullptr ||
      curl_url_set(u, CURLUPART_URL, text.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    st = InvalidArgument("proxy " + shown + ": not a URL (http://[user:password@]host:port)");
  } else if (std::string_view(scheme) != "http") {
    st = InvalidArgument("proxy " + shown + ": only http:// proxies are supported");
  }
  ProxyEndpoint endpoint;
  if (st.ok()) {
    endpoint.host = host;
    if (endpoint.host.size() > 2 && endpoint.host.front() == '[') {
      endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
      endpoint.port = static_cast<uint16_t>(std::stoul(port));
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) endpoint.user = UrlDecoded(user);
    if (curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
      endpoint.password = UrlDecoded(password);
    }
  }
  for (char* part : {scheme, host, port, user, password}) curl_free(part);
  curl_url_cleanup(u);
  if (!st.ok()) return st;
  return endpoint;
}

std::string JoinUrl(std::string_view base, std::string_view relative) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  return std::string(base) + "/" + std::string(relative);
}

}  // namespace flotilla::http
