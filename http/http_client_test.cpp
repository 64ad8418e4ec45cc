// The HTTP client against real servers on loopback: this module's own Beast
// server (plain and TLS, with a test CA made by openssl), and raw sockets for
// servers that stall or never end.
#include "http/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "core/file_io.h"
#include "http/http_server.h"
#include "tests/support/test_util.h"
#include "tests/support/tinyproxy.h"

namespace flotilla::http {
namespace {

using testing::MakeTempDir;
using testing::RunShell;
using namespace std::chrono_literals;

// This module's server on 127.0.0.1, its io_context on a thread of its own.
class TestServer {
 public:
  explicit TestServer(Handler handler, ServerOptions options = {}) {
    options.address = "127.0.0.1";
    server_ = Server::Start(io_, options, std::move(handler)).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path, const std::string& scheme = "http",
                  const std::string& host = "127.0.0.1") const {
    return scheme + "://" + host + ":" + std::to_string(server_->port()) + path;
  }
  uint16_t port() const { return server_->port(); }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

// What the server saw of the last request (handlers run on the server's thread).
struct Seen {
  std::mutex mu;
  std::string method, target, body, authorization, proxy_authorization, range;
  int requests = 0;

  void Record(const Request& r) {
    std::lock_guard lock(mu);
    method = std::string(r.method_string());
    target = std::string(r.target());
    body = r.body();
    authorization = std::string(r[field::authorization]);
    proxy_authorization = std::string(r[field::proxy_authorization]);
    range = std::string(r[field::range]);
    ++requests;
  }
};

// A server on raw sockets: it accepts one connection at a time, sends
// `prefix`, then either stalls (until the client leaves) or, with `endless`,
// sends chunks until the client leaves.
class RawServer {
 public:
  RawServer(std::string prefix, bool endless) : prefix_(std::move(prefix)), endless_(endless) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~RawServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  uint64_t bytes_sent() const { return sent_; }

 private:
  void Run() {
    while (!stop_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      Serve(fd);
      ::close(fd);
    }
  }
  void Serve(int fd) {
    timeval tick{0, 50'000};  // so that a blocked send still sees stop_
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tick, sizeof tick);
    char request[4096];
    (void)::recv(fd, request, sizeof request, 0);
    if (::send(fd, prefix_.data(), prefix_.size(), MSG_NOSIGNAL) < 0) return;
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
    size_t offset = 0;  // into `chunk`: a send may stop part way
    while (!stop_) {
      if (endless_) {
        ssize_t n = ::send(fd, chunk.data() + offset, chunk.size() - offset, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return;
        sent_ += static_cast<uint64_t>(n);
        offset = (offset + static_cast<size_t>(n)) % chunk.size();
      } else {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0 && ::recv(fd, request, sizeof request, 0) <= 0) return;
      }
    }
  }

  std::string prefix_;
  bool endless_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

Reply Ok(std::string body) { return Reply::Typed(status::ok, "text/plain", std::move(body)); }

TEST(HttpClient, MethodHeadersAndBodyReachTheServer) {
  Seen seen;
  TestServer server([&](const Request& r, const RequestContext&) {
    seen.Record(r);
    return Ok("answer to " + std::string(r.method_string()));
  });
  Client client;
  Call call;
  call.method = "POST";
  call.url = server.Url("/api/v1/thing?x=1");
  call.headers = {{"Authorization", "Bearer sekrit"}};
  call.body = R"({"a":1})";
  auto response = client.Fetch(call);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "answer to POST");
  {
    std::lock_guard lock(seen.mu);
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.target, "/api/v1/thing?x=1");
    EXPECT_EQ(seen.body, R"({"a":1})");
    EXPECT_EQ(seen.authorization, "Bearer sekrit");
  }

  call.method = "DELETE";
  call.body.clear();
  EXPECT_EQ(client.Fetch(call)->body, "answer to DELETE");
}

TEST(HttpClient, EachHttpStatusMapsToOneStatusCode) {
  TestServer server([](const Request& r, const RequestContext&) {
    const int code = std::atoi(std::string(r.target()).c_str() + 1);
    return Reply::Text(static_cast<status>(code), "reason " + std::to_string(code));
  });
  Client client;
  const std::vector<std::pair<int, StatusCode>> cases = {
      {401, StatusCode::kPermissionDenied}, {403, StatusCode::kPermissionDenied},
      {404, StatusCode::kNotFound},         {410, StatusCode::kNotFound},
      {400, StatusCode::kInvalidArgument},  {429, StatusCode::kInvalidArgument},
      {500, StatusCode::kUnavailable},      {503, StatusCode::kUnavailable}};
  for (const auto& [code, expected] : cases) {
    auto r = client.Fetch({.url = server.Url("/" + std::to_string(code))});
    ASSERT_FALSE(r.ok()) << code;
    EXPECT_EQ(r.status().code(), expected) << code << ": " << r.status().ToString();
    // The server's reason is in the message, for the operator.
    EXPECT_NE(r.status().message().find("reason " + std::to_string(code)), std::string::npos);
  }
  EXPECT_EQ(StatusOfHttp(302, "GET x").code(), StatusCode::kUnavailable);
}

// A client that answers challenges asks for 401 as a Response, with the
// headers it names; other statuses stay errors.
TEST(HttpClient, AnsweredStatusesAndAskedHeadersComeBackInTheResponse) {
  TestServer server([](const Request& r, const RequestContext&) {
    Reply reply = Reply::Text(r.target() == "/ok" ? status::ok : status::unauthorized, "why");
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"http://x/token\"");
    reply.headers.emplace_back("Docker-Content-Digest", "sha256:abc");
    return reply;
  });
  Client client;
  Call call{.url = server.Url("/401"),
            .response_headers = {"www-authenticate", "Docker-Content-Digest", "X-Absent"},
            .answered_statuses = {401}};
  auto r = client.Fetch(call);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->body, "why\n");
  EXPECT_EQ(r->headers.at("www-authenticate"), "Bearer realm=\"http://x/token\"");
  EXPECT_EQ(r->headers.at("docker-content-digest"), "sha256:abc");
  EXPECT_FALSE(r->headers.contains("x-absent"));
  call.url = server.Url("/ok");
  r = client.Fetch(call);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "why\n");
  EXPECT_EQ(r->headers.at("docker-content-digest"), "sha256:abc");
  call.url = server.Url("/401");
  call.answered_statuses.clear();
  EXPECT_EQ(client.Fetch(call).status().code(), StatusCode::kPermissionDenied);
}

TEST(HttpClient, ConnectionFailuresAreUnavailableAndBadUrlsInvalid) {
  uint16_t closed_port;
  {
    TestServer server([](const Request&, const RequestContext&) { return Ok(""); });
    closed_port = server.port();
  }
  Client client({.connect_timeout = 2s});
  auto refused = client.Fetch({.url = "http://127.0.0.1:" + std::to_string(closed_port) + "/"});
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  EXPECT_EQ(client.Fetch({.url = "ftp://127.0.0.1/x"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Fetch({.url = "no url at all"}).status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpClient, BodyOverTheBoundIsResourceExhaustedWhetherAnnouncedOrNot) {
  TestServer server(
      [](const Request&, const RequestContext&) { return Ok(std::string(100 << 10, 'b')); });
  Client client;
  auto big = client.Fetch({.url = server.Url("/big"), .max_body_bytes = 64 << 10});
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status().ToString();
  auto fits = client.Fetch({.url = server.Url("/big"), .max_body_bytes = 100 << 10});
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(fits->body.size(), 100u << 10);

  // No Content-Length, a body that never ends: reading stops at the bound.
  RawServer endless("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", /*endless=*/true);
  uint64_t streamed = 0;
  auto r = client.Stream({.url = endless.Url(), .max_body_bytes = 1 << 20}, [&](ByteSpan chunk) {
    streamed += chunk.size();
    return Status::Ok();
  });
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_LE(streamed, 1u << 20);
}

TEST(HttpClient, AServerThatStallsIsADeadline) {
  Client client({.connect_timeout = 2s, .read_timeout = 1s});
  // Accepts, never answers.
  RawServer silent("", /*endless=*/false);
  auto start = std::chrono::steady_clock::now();
  auto r = client.Fetch({.url = silent.Url()});
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  // Answers the head and a little body, then stalls.
  RawServer stalls("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc", /*endless=*/false);
  std::string got;
  r = client.Stream({.url = stalls.Url()}, [&](ByteSpan chunk) {
    got.append(AsStringView(chunk));
    return Status::Ok();
  });
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_EQ(got, "abc");
}

TEST(HttpClient, RedirectsAreFollowedUpToTheBound) {
  // /hop/N redirects to /hop/N-1; /hop/0 answers.
  TestServer server([](const Request& r, const RequestContext&) {
    const int n = std::atoi(std::string(r.target()).substr(5).c_str());
    if (n == 0) return Ok("landed");
    Reply reply = Reply::Text(status::found, "");
    reply.headers.emplace_back("Location", "/hop/" + std::to_string(n - 1));
    return reply;
  });
  Client three({.max_redirects = 3});
  auto ok = three.Fetch({.url = server.Url("/hop/3")});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body, "landed");
  auto too_many = three.Fetch({.url = server.Url("/hop/4")});
  EXPECT_EQ(too_many.status().code(), StatusCode::kUnavailable) << too_many.status().ToString();
  Client none({.max_redirects = 0});
  EXPECT_EQ(none.Fetch({.url = server.Url("/hop/1")}).status().code(), StatusCode::kUnavailable);
}

TEST(HttpClient, CredentialsDoNotFollowARedirectToAnotherHost) {
  Seen seen;
  std::string elsewhere;
  TestServer server([&](const Request& r, const RequestContext&) {
    seen.Record(r);
    if (r.target() == "/here") return Ok("");
    Reply reply = Reply::Text(status::found, "");
    reply.headers.emplace_back("Location", elsewhere);
    return reply;
  });
  elsewhere = server.Url("/here", "http", "localhost");  // same server, another host name
  Client client;
  auto r = client.Fetch({.url = server.Url("/go"), .headers = {{"Authorization", "Bearer c"}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::lock_guard lock(seen.mu);
  EXPECT_EQ(seen.target, "/here");
  EXPECT_EQ(seen.authorization, "");
}

TEST(HttpClient, RangeIsSentAndContentRangeReturned) {
  Seen seen;
  const std::string content = "0123456789";
  TestServer server([&](const Request& r, const RequestContext&) {
    seen.Record(r);
    auto range = ResolveRange(std::string_view(r[field::range]), content.size()).value();
    Reply reply = Reply::Typed(status::partial_content, "application/octet-stream",
                               content.substr(range->offset, range->length));
    reply.headers.emplace_back("Content-Range",
                               "bytes " + std::to_string(range->offset) + "-" +
                                   std::to_string(range->offset + range->length - 1) + "/10");
    return reply;
  });
  Client client;
  auto r = client.Fetch({.url = server.Url("/f"), .range = ByteRange{2, 3}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->body, "234");
  EXPECT_EQ(r->content_range, "bytes 2-4/10");
  r = client.Fetch({.url = server.Url("/f"), .range = ByteRange{7, 0}});
  EXPECT_EQ(r->body, "789");
  std::lock_guard lock(seen.mu);
  EXPECT_EQ(seen.range, "bytes=7-");
}

TEST(HttpClient, AClientReusesItsConnection) {
  // The server takes one connection at a time: a second connection would be
  // closed at once, so both calls succeed only over the same connection.
  TestServer server([](const Request&, const RequestContext&) { return Ok("again"); },
                    ServerOptions{.max_connections = 1});
  Client client;
  for (int i = 0; i < 3; ++i) {
    auto r = client.Fetch({.url = server.Url("/")});
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
  }
}

TEST(HttpClient, SinkErrorsStopTheTransferAndFilesAreRemovedOnFailure) {
  TestServer server(
      [](const Request&, const RequestContext&) { return Ok(std::string(300 << 10, 'z')); });
  Client client;
  int chunks = 0;
  auto r = client.Stream({.url = server.Url("/"), .max_body_bytes = 1 << 20}, [&](ByteSpan) {
    ++chunks;
    return IOErrorFromErrno("write", ENOSPC);
  });
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_EQ(chunks, 1);
  r = client.Stream({.url = server.Url("/"), .max_body_bytes = 1 << 20},
                    [&](ByteSpan) -> Status { throw std::runtime_error("boom"); });
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);

  const std::string dir = MakeTempDir("http-client");
  EXPECT_TRUE(
      client.FetchToFile({.url = server.Url("/"), .max_body_bytes = 1 << 20}, dir + "/ok").ok());
  EXPECT_EQ(std::filesystem::file_size(dir + "/ok"), 300u << 10);
  EXPECT_FALSE(
      client.FetchToFile({.url = server.Url("/"), .max_body_bytes = 1 << 10}, dir + "/x").ok());
  EXPECT_FALSE(std::filesystem::exists(dir + "/x"));
  std::filesystem::remove_all(dir);
}

TEST(HttpClient, SecretsInUrlsNeverReachMessages) {
  TestServer server([](const Request&, const RequestContext&) {
    return Reply::Text(status::forbidden, "unknown passkey");
  });
  Client client;
  auto r = client.Fetch({.url = server.Url("/announce/PASSKEY123?passkey=PASSKEY456", "http",
                                           "user:PW789@127.0.0.1")});
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  const std::string message = r.status().message();
  for (const char* secret : {"PASSKEY123", "PASSKEY456", "PW789", "announce"}) {
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
  }
  EXPECT_NE(message.find("http://127.0.0.1:" + std::to_string(server.port())), std::string::npos)
      << message;
  // A proxy's password neither, whether the proxy is refused or malformed.
  Client proxied({.connect_timeout = 2s, .proxy = "http://user:PROXYPW@127.0.0.1:1"});
  r = proxied.Fetch({.url = "http://192.0.2.1/"});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message().find("PROXYPW"), std::string::npos) << r.status().message();
  Client malformed({.proxy = "http://user:PROXYPW@[::1"});
  r = malformed.Fetch({.url = "http://192.0.2.1/"});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("PROXYPW"), std::string::npos) << r.status().message();
  EXPECT_EQ(RedactUrl("https://u:p@host.example:8443/a?b=c"), "https://host.example:8443");
  EXPECT_EQ(RedactUrl("http://[::1]/x"), "http://[::1]:80");
}

// A plain HTTP proxy is asked for the absolute URL; our server plays it.
TEST(HttpClient, ProxiesComeFromTheOptionOrTheEnvironment) {
  Seen seen;
  TestServer proxy([&](const Request& r, const RequestContext&) {
    seen.Record(r);
    return Ok("via proxy");
  });
  const std::string target = "http://192.0.2.7:8080/metadata/timestamp.json";
  Client explicit_proxy({.proxy = "http://op:secret@127.0.0.1:" + std::to_string(proxy.port())});
  auto r = explicit_proxy.Fetch({.url = target});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "via proxy");
  {
    std::lock_guard lock(seen.mu);
    EXPECT_EQ(seen.target, target);
    EXPECT_EQ(seen.proxy_authorization, "Basic b3A6c2VjcmV0");  // op:secret
  }
  // The environment, as libcurl reads it, unless the option says otherwise.
  ::setenv("http_proxy", ("http://127.0.0.1:" + std::to_string(proxy.port())).c_str(), 1);
  Client from_env;
  EXPECT_EQ(from_env.Fetch({.url = target})->body, "via proxy");
  Client direct({.connect_timeout = 1s, .proxy = ""});
  EXPECT_EQ(direct.Fetch({.url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/d"})->body,
            "via proxy");
  {
    std::lock_guard lock(seen.mu);
    EXPECT_EQ(seen.target, "/d");  // origin form: no proxy in between
  }
  Client bypass({.proxy = "http://127.0.0.1:1", .no_proxy = "127.0.0.1"});
  EXPECT_TRUE(bypass.Fetch({.url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/"}).ok());
  ::unsetenv("http_proxy");
}

// Sets (or, with nullptr, clears) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(HttpClient, ProxyForPicksTheProxyAsLibcurlDoes) {
  ScopedEnv no_all("all_proxy", nullptr), no_all_upper("ALL_PROXY", nullptr),
      no_upper("NO_PROXY", nullptr), https_upper("HTTPS_PROXY", nullptr);
  const ClientOptions given{.proxy = "http://p:3128", .no_proxy = "lan.example, .corp,10.0.0.5"};
  EXPECT_EQ(ProxyFor(given, "https://tracker.example/x"), "http://p:3128");
  EXPECT_EQ(ProxyFor(given, "http://lan.example:8080/"), "");
  EXPECT_EQ(ProxyFor(given, "http://a.lan.example/"), "");
  EXPECT_EQ(ProxyFor(given, "http://notlan.example/"), "http://p:3128");
  EXPECT_EQ(ProxyFor(given, "http://x.CORP/"), "");
  EXPECT_EQ(ProxyFor(given, "http://10.0.0.5:9/"), "");
  EXPECT_EQ(ProxyFor({.proxy = ""}, "http://tracker.example/"), "");
  // Address ranges, as libcurl reads them.
  const ClientOptions ranges{.proxy = "http://p:3128",
                             .no_proxy = "10.0.0.0/8,fd00::/12,192.0.2.0/25"};
  EXPECT_EQ(ProxyFor(ranges, "http://10.20.30.40:8080/"), "");
  EXPECT_EQ(ProxyFor(ranges, "http://11.0.0.1/"), "http://p:3128");
  EXPECT_EQ(ProxyFor(ranges, "http://[fd0a::1]/"), "");
  EXPECT_EQ(ProxyFor(ranges, "http://[fd10::1]/"), "http://p:3128");
  EXPECT_EQ(ProxyFor(ranges, "http://192.0.2.127/"), "");
  EXPECT_EQ(ProxyFor(ranges, "http://192.0.2.128/"), "http://p:3128");
  {
    ScopedEnv http("http_proxy", "http://h:1"), https("https_proxy", "http://s:2"),
        no("no_proxy", "skip.example");
    const ClientOptions from_env;
    EXPECT_EQ(ProxyFor(from_env, "http://tracker.example/"), "http://h:1");
    EXPECT_EQ(ProxyFor(from_env, "https://tracker.example/"), "http://s:2");
    EXPECT_EQ(ProxyFor(from_env, "https://skip.example/"), "");
    EXPECT_EQ(ProxyFor({.proxy = ""}, "http://tracker.example/"), "");  // "none" wins
  }
  {
    ScopedEnv all("all_proxy", "http://everything:3"), http("http_proxy", nullptr),
        https("https_proxy", nullptr), no("no_proxy", "*");
    EXPECT_EQ(ProxyFor({}, "http://tracker.example/"), "");  // "*": nothing through it
  }
  {
    ScopedEnv all("all_proxy", "http://everything:3"), http("http_proxy", nullptr),
        https("https_proxy", nullptr), no("no_proxy", nullptr);
    EXPECT_EQ(ProxyFor({}, "https://tracker.example/"), "http://everything:3");
  }
}

TEST(HttpClient, ProxyUrlsParseWithoutShowingTheirPassword) {
  auto full = ParseProxyUrl("http://fleet%40shop:pa%3Ass@proxy.example:8080");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->host, "proxy.example");
  EXPECT_EQ(full->port, 8080);
  EXPECT_EQ(full->user, "fleet@shop");
  EXPECT_EQ(full->password, "pa:ss");
  auto bare = ParseProxyUrl("10.1.2.3");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, 1080);
  EXPECT_TRUE(bare->user.empty());
  auto socks = ParseProxyUrl("socks5://u:HIDDEN@p:1080");
  EXPECT_EQ(socks.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(socks.status().message().find("HIDDEN"), std::string::npos);
  auto broken = ParseProxyUrl("http://u:HIDDEN@[::1");
  EXPECT_EQ(broken.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(broken.status().message().find("HIDDEN"), std::string::npos);
}

class HttpClientTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("http-tls");
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    auto r = RunShell("cd " + dir_ + " && openssl req -x509 " + ec +
                      "-days 2 -subj /CN=flotilla-test-ca -keyout ca.key -out ca.pem && "
                      "openssl req " +
                      ec +
                      "-subj /CN=localhost -keyout server.key -out server.csr && "
                      "printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
                      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
                      "-CAcreateserial -days 2 -extfile san.ext -out server.pem");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(HttpClientTls, VerifiesTheChainAgainstTheGivenCaAndTheHostName) {
  ServerOptions options;
  options.tls = TlsFiles{dir_ + "/server.pem", dir_ + "/server.key"};
  TestServer server([](const Request&, const RequestContext& c) { return Ok(c.tls ? "tls" : ""); },
                    options);
  Client trusting({.ca_file = dir_ + "/ca.pem"});
  auto r = trusting.Fetch({.url = server.Url("/", "https", "localhost")});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "tls");
  // The certificate names localhost, not 127.0.0.1.
  r = trusting.Fetch({.url = server.Url("/", "https", "127.0.0.1")});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  // The system store does not know the test CA.
  Client system_store;
  r = system_store.Fetch({.url = server.Url("/", "https", "localhost")});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  Client missing_ca({.ca_file = dir_ + "/none.pem"});
  EXPECT_EQ(missing_ca.Fetch({.url = server.Url("/", "https", "localhost")}).status().code(),
            StatusCode::kInvalidArgument);
}

// Debian's tinyproxy between the client and this module's servers: plain
// requests are forwarded, https goes through CONNECT, a proxy that wants
// credentials refuses a client without them with a clear PermissionDenied.
TEST_F(HttpClientTls, ThroughARealProxyWithAndWithoutAuthentication) {
  testing::TinyProxy proxy;
  ASSERT_TRUE(proxy.Start("fleet", "Pr0xy-Secret")) << proxy.Log();
  TestServer plain([](const Request& r, const RequestContext&) {
    return Ok("plain " + std::string(r.target()));
  });
  ServerOptions options;
  options.tls = TlsFiles{dir_ + "/server.pem", dir_ + "/server.key"};
  TestServer tls([](const Request&, const RequestContext& c) { return Ok(c.tls ? "tls" : ""); },
                 options);

  Client with_auth({.ca_file = dir_ + "/ca.pem", .proxy = proxy.Url()});
  auto r = with_auth.Fetch({.url = plain.Url("/metadata/1.root.json")});
  ASSERT_TRUE(r.ok()) << r.status().ToString() << proxy.Log();
  EXPECT_EQ(r->body, "plain /metadata/1.root.json");
  r = with_auth.Fetch({.url = tls.Url("/", "https", "localhost")});
  ASSERT_TRUE(r.ok()) << r.status().ToString() << proxy.Log();
  EXPECT_EQ(r->body, "tls");
  const auto requests = proxy.Requests();
  ASSERT_EQ(requests.size(), 2u) << proxy.Log();
  EXPECT_EQ(requests[0], "GET " + plain.Url("/metadata/1.root.json") + " HTTP/1.1");
  EXPECT_EQ(requests[1], "CONNECT localhost:" + std::to_string(tls.port()) + " HTTP/1.1");

  // Without credentials: 407 for a plain request, a refused CONNECT for https.
  Client no_auth({.ca_file = dir_ + "/ca.pem", .proxy = proxy.Url(false)});
  for (const std::string& url : {plain.Url("/x"), tls.Url("/", "https", "localhost")}) {
    r = no_auth.Fetch({.url = url});
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
    EXPECT_NE(r.status().message().find("HTTP 407"), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("proxy"), std::string::npos) << r.status().ToString();
  }
  // Wrong credentials: the same, and the password given never shows.
  Client wrong({.proxy = "http://fleet:WRONG-pw@127.0.0.1:" + std::to_string(proxy.port())});
  r = wrong.Fetch({.url = plain.Url("/x")});
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_EQ(r.status().message().find("WRONG-pw"), std::string::npos);
  // no_proxy sends the request direct: the proxy sees nothing more.
  Client bypass({.proxy = proxy.Url(), .no_proxy = "127.0.0.1"});
  EXPECT_TRUE(bypass.Fetch({.url = plain.Url("/direct")}).ok());
  EXPECT_EQ(proxy.Requests().size(), 2u + 3u) << proxy.Log();  // the refused ones were seen

  // A body too: the refusal comes before it (not a reset while it is sent),
  // and with credentials it reaches the server.
  r = no_auth.Fetch({.method = "POST", .url = plain.Url("/api"), .body = std::string(8192, 'x')});
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("HTTP 407"), std::string::npos) << r.status().ToString();
  r = with_auth.Fetch({.method = "POST", .url = plain.Url("/api"), .body = std::string(8192, 'x')});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "plain /api");

  // A proxy without authentication takes a client without credentials.
  testing::TinyProxy open_proxy;
  ASSERT_TRUE(open_proxy.Start()) << open_proxy.Log();
  Client anonymous({.proxy = open_proxy.Url()});
  r = anonymous.Fetch({.url = plain.Url("/open")});
  ASSERT_TRUE(r.ok()) << r.status().ToString() << open_proxy.Log();
  EXPECT_EQ(r->body, "plain /open");
}

}  // namespace
}  // namespace flotilla::http
