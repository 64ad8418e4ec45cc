// The .torrent source against real servers on loopback (this project's HTTP
// server): neighbours first, the content URL over one kept connection, the
// other neighbours when the content URL is out of reach.
#include "node/daemon/torrent_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "http/http_server.h"

namespace flotilla::node {
namespace {

const std::string kHex(64, 'a');
const std::string kName = "/torrents/" + kHex + ".torrent";

// A server answering `kName` with `body` (404 when empty), counting requests.
class TorrentServer {
 public:
  explicit TorrentServer(std::string body) : body_(std::move(body)) {
    server_ =
        http::Server::Start(io_, {}, [this](const http::Request& r, const http::RequestContext&) {
          ++requests;
          if (r.target() != kName || body_.empty()) {
            return http::Reply::Text(http::status::not_found, "no such torrent");
          }
          return http::Reply::Typed(http::status::ok, "application/x-bittorrent", body_);
        }).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TorrentServer() {
    io_.stop();
    thread_.join();
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  uint16_t port() const { return server_->port(); }
  std::atomic<int> requests{0};

 private:
  std::string body_;
  boost::asio::io_context io_{1};
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

// Local ports of this process's established TCP connections to `port` on
// 127.0.0.1, from /proc/net/tcp.
std::vector<int> ConnectionsTo(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);
  std::vector<int> out;
  char remote_hex[16];
  std::snprintf(remote_hex, sizeof remote_hex, "0100007F:%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (remote == remote_hex && state == "01") {
      out.push_back(std::stoi(local.substr(local.find(':') + 1), nullptr, 16));
    }
  }
  return out;
}

TorrentSourceOptions Options(const std::string& content_url, std::vector<Neighbour> neighbours) {
  return TorrentSourceOptions{.content_url = content_url,
                              .wan = http::ClientOptions{.proxy = ""},
                              .lan = http::ClientOptions{.proxy = ""},
                              .neighbours = [neighbours] { return neighbours; }};
}

Neighbour At(const std::string& name, const std::string& base) {
  return Neighbour{.device = name, .http_base = base};
}

TEST(TorrentSourceTest, ANeighbourThatHasItSparesTheContentUrl) {
  TorrentServer origin("from-origin"), empty(""), holder("from-neighbour");
  TorrentSource source(
      Options(origin.base(), {At("empty", empty.base()), At("holder", holder.base())}));
  auto bytes = source.Fetch(kHex);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, "from-neighbour");
  EXPECT_EQ(origin.requests, 0);
  EXPECT_EQ(empty.requests, 1);
}

TEST(TorrentSourceTest, TheContentUrlIsAskedOverOneKeptConnection) {
  TorrentServer origin("from-origin"), empty("");
  TorrentSource source(Options(origin.base(), {At("empty", empty.base())}));
  ASSERT_EQ(source.Fetch(kHex).value_or(""), "from-origin");
  const std::vector<int> first = ConnectionsTo(origin.port());
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(source.Fetch(kHex).value_or(""), "from-origin");
  EXPECT_EQ(ConnectionsTo(origin.port()), first);
  EXPECT_EQ(origin.requests, 2);
}

TEST(TorrentSourceTest, OnlyTheFirstNeighboursAreAskedBeforeTheContentUrl) {
  TorrentServer origin("from-origin"), a(""), b(""), late("from-late");
  auto options =
      Options(origin.base(), {At("a", a.base()), At("b", b.base()), At("late", late.base())});
  options.max_neighbours = 2;
  TorrentSource source(options);
  EXPECT_EQ(source.Fetch(kHex).value_or(""), "from-origin");
  EXPECT_EQ(late.requests, 0);
}

TEST(TorrentSourceTest, TheOtherNeighboursAreAskedWhenTheContentUrlIsOutOfReach) {
  TorrentServer a(""), late("from-late");
  auto options = Options("http://127.0.0.1:1", {At("a", a.base()), At("late", late.base())});
  options.max_neighbours = 1;
  TorrentSource source(options);
  EXPECT_EQ(source.Fetch(kHex).value_or(""), "from-late");
  EXPECT_EQ(a.requests, 1);
}

TEST(TorrentSourceTest, NoneHasItIsTheContentUrlsError) {
  TorrentServer origin(""), a("");
  TorrentSource source(Options(origin.base(), {At("a", a.base())}));
  auto bytes = source.Fetch(kHex);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kNotFound) << bytes.status().ToString();
}

TEST(TorrentSourceTest, NeighboursGetShortTimeouts) {
  const http::ClientOptions lan = TorrentSource::NeighbourOptions(http::ClientOptions{});
  EXPECT_LE(lan.connect_timeout, std::chrono::milliseconds(1000));
  EXPECT_LE(lan.read_timeout, std::chrono::milliseconds(2000));
}

}  // namespace
}  // namespace flotilla::node
