// PROXY protocol v2: the header's parser on hand-made headers (the layout of
// haproxy's doc/proxy-protocol.txt, section 2.2), and the server trusting it
// only from the balancers it was given. tests/tracker's haproxy test runs a
// real haproxy in front of the tracker.
#include "http/proxy_protocol.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/http_server.h"
#include "tests/support/raw_http.h"

namespace flotilla::http {
namespace {

const std::string kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

// A version 2 header: command, family byte, the bytes after the fixed part.
std::string Header(int command, uint8_t family, const std::string& rest) {
  std::string h = kSignature;
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(family);
  h += static_cast<char>(rest.size() >> 8);
  h += static_cast<char>(rest.size() & 0xFF);
  return h + rest;
}

std::string Ipv4Rest(const std::string& source, const std::string& tlvs = "") {
  std::string rest = source + std::string("\x7f\x00\x00\x01\x1f\x90\x00\x50", 8);
  return rest + tlvs;
}

Result<std::optional<boost::asio::ip::address>> Parse(const std::string& header) {
  if (header.size() < kProxyHeaderFixedBytes) return InvalidArgument("short");
  ByteSpan all = AsBytes(header);
  return ProxyHeaderSource(all.first(kProxyHeaderFixedBytes), all.subspan(kProxyHeaderFixedBytes));
}

TEST(ProxyProtocol, NamesTheIpv4AndIpv6ClientAndSkipsTlvs) {
  auto v4 = Parse(Header(
      1, 0x11, Ipv4Rest(std::string("\x0a\x01\x02\x03", 4), std::string("\x04\x00\x01Z", 4))));
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  EXPECT_EQ(v4->value().to_string(), "10.1.2.3");
  std::string v6 = std::string(15, '\0') + "\x01";
  v6 = std::string("\x20\x01\x0d\xb8", 4) + v6.substr(4) + std::string(16, '\0') +
       std::string("\x1f\x90\x00\x50", 4);
  auto six = Parse(Header(1, 0x21, v6));
  ASSERT_TRUE(six.ok()) << six.status().ToString();
  EXPECT_EQ(six->value().to_string(), "2001:db8::1");
  // haproxy listening on IPv6 names an IPv4 client as v4-mapped.
  std::string mapped = std::string(10, '\0') + "\xff\xff" + std::string("\xc0\xa8\x01\x14", 4) +
                       std::string(16, '\0') + std::string("\x1f\x90\x00\x50", 4);
  EXPECT_EQ(Parse(Header(1, 0x21, mapped))->value().to_string(), "192.168.1.20");
}

TEST(ProxyProtocol, LocalAndAddresslessFamiliesKeepTheConnectionsOwnSource) {
  auto local = Parse(Header(0, 0x00, ""));
  ASSERT_TRUE(local.ok());
  EXPECT_FALSE(local->has_value());
  auto unspec = Parse(Header(1, 0x00, ""));
  ASSERT_TRUE(unspec.ok());
  EXPECT_FALSE(unspec->has_value());
}

TEST(ProxyProtocol, RefusesWhatIsNotAWholeVersion2Header) {
  const std::string good = Header(1, 0x11, Ipv4Rest(std::string("\x0a\x01\x02\x03", 4)));
  std::string bad_signature = good;
  bad_signature[5] = 'x';
  EXPECT_FALSE(Parse(bad_signature).ok());
  std::string version1 = good;
  version1[12] = 0x11;
  EXPECT_FALSE(Parse(version1).ok());
  std::string bad_command = good;
  bad_command[12] = 0x22;
  EXPECT_FALSE(Parse(bad_command).ok());
  EXPECT_FALSE(Parse(good.substr(0, good.size() - 1)).ok());         // rest shorter than its length
  EXPECT_FALSE(Parse(Header(1, 0x11, "\x0a\x01")).ok());             // too short for IPv4
  EXPECT_FALSE(Parse(Header(1, 0x41, std::string(12, '\0'))).ok());  // unknown family
  auto too_long = ProxyHeaderRestLength(
      AsBytes(Header(1, 0x11, std::string(2000, '\0'))).first(kProxyHeaderFixedBytes));
  EXPECT_FALSE(too_long.ok());
  EXPECT_FALSE(
      ProxyHeaderRestLength(AsBytes("PROXY TCP4 10.1.2.3 127.0.0.1 1 2\r\n").first(16)).ok());
}

// The server on 127.0.0.1 trusting `proxies`; records each request's remote.
class ProxyServer {
 public:
  explicit ProxyServer(std::vector<boost::asio::ip::address> proxies) {
    ServerOptions options;
    options.address = "127.0.0.1";
    options.trusted_proxies = std::move(proxies);
    options.read_timeout = std::chrono::seconds(1);
    server_ = Server::Start(io_, options, [this](const Request&, const RequestContext& c) {
                std::lock_guard<std::mutex> lock(mu_);
                remotes_.push_back(c.remote.to_string());
                return Reply::Text(status::ok, c.remote.to_string());
              }).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ProxyServer() {
    io_.stop();
    thread_.join();
  }
  int port() const { return server_->port(); }
  std::vector<std::string> remotes() {
    std::lock_guard<std::mutex> lock(mu_);
    return remotes_;
  }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> remotes_;
};

const std::string kGet = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

TEST(ProxyProtocolServer, ATrustedBalancersHeaderNamesTheClient) {
  ProxyServer server({boost::asio::ip::make_address("127.0.0.1")});
  const std::string header = Header(1, 0x11, Ipv4Rest(std::string("\x0a\x01\x02\x03", 4)));
  auto reply = testing::ParseResponse(testing::SendRaw(server.port(), header + kGet));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "10.1.2.3\n");
  // LOCAL (a health check): the balancer's own address.
  reply = testing::ParseResponse(testing::SendRaw(server.port(), Header(0, 0x00, "") + kGet));
  EXPECT_EQ(reply.body, "127.0.0.1\n");
  // Without a header, from a trusted address: closed, nothing handled.
  EXPECT_EQ(testing::ParseResponse(testing::SendRaw(server.port(), kGet)).status, 0);
  // A header that stops short: closed at the read deadline.
  EXPECT_EQ(testing::SendRaw(server.port(), header.substr(0, 20)), "");
  EXPECT_EQ(server.remotes(), (std::vector<std::string>{"10.1.2.3", "127.0.0.1"}));
}

TEST(ProxyProtocolServer, AHeaderFromAnyoneElseIsNeverBelieved) {
  ProxyServer server({boost::asio::ip::make_address("127.0.0.2")});
  const std::string header = Header(1, 0x11, Ipv4Rest(std::string("\x0a\x01\x02\x03", 4)));
  auto reply = testing::ParseResponse(testing::SendRaw(server.port(), header + kGet));
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(testing::ParseResponse(testing::SendRaw(server.port(), kGet)).body, "127.0.0.1\n");
  EXPECT_EQ(server.remotes(), (std::vector<std::string>{"127.0.0.1"}));
}

}  // namespace
}  // namespace flotilla::http
