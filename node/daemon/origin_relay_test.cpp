// The origin relay against a real origin on loopback (this project's HTTP
// server): ranges forwarded and answered as the origin answered them, both
// request forms libtorrent writes, nothing but artifacts relayed.
#include "node/daemon/origin_relay.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "http/http_server.h"
#include "tests/support/raw_http.h"

namespace flotilla::node {
namespace {

constexpr const char* kArtifact = "/artifacts/abc/abc";
const std::string kBytes = "0123456789";

class OriginRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = http::Server::Start(
        io_, {}, [this](const http::Request& request, const http::RequestContext&) {
          ++origin_requests_;
          if (request.target() != kArtifact) {
            return http::Reply::Text(http::status::not_found, "no such artifact");
          }
          auto range = request.find(http::field::range);
          if (range == request.end()) {
            return http::Reply::Typed(http::status::ok, "application/octet-stream", kBytes);
          }
          // "bytes=FIRST-LAST", enough for this test.
          const std::string spec(range->value().substr(6));
          const size_t first = std::stoul(spec), last = std::stoul(spec.substr(spec.find('-') + 1));
          http::Reply reply =
              http::Reply::Typed(http::status::partial_content, "application/octet-stream",
                                 kBytes.substr(first, last - first + 1));
          reply.headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" +
                                                          std::to_string(last) + "/10");
          return reply;
        });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    thread_ = std::thread([this] { io_.run(); });
    auto relay = OriginRelay::Start("http://127.0.0.1:" + std::to_string(server_->port()),
                                    http::ClientOptions{.proxy = ""});
    ASSERT_TRUE(relay.ok()) << relay.status().ToString();
    relay_ = std::move(*relay);
  }
  void TearDown() override {
    relay_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int RelayPort() const { return std::stoi(relay_->url().substr(relay_->url().rfind(':') + 1)); }
  testing::HttpResponse Get(const std::string& target, const std::string& extra = "") {
    return testing::ParseResponse(
        testing::SendRaw(RelayPort(), "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra +
                                          "Connection: close\r\n\r\n"));
  }

  boost::asio::io_context io_{1};
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::atomic<int> origin_requests_{0};
  std::unique_ptr<OriginRelay> relay_;
};

TEST_F(OriginRelayTest, ForwardsRangesInBothRequestFormsAndNothingButArtifacts) {
  EXPECT_EQ(relay_->url().rfind("http://127.0.0.1:", 0), 0u) << relay_->url();
  // A range, in the origin form: the origin's 206 and Content-Range come back.
  auto ranged = Get(kArtifact, "Range: bytes=2-5\r\n");
  EXPECT_EQ(ranged.status, 206) << ranged.raw;
  EXPECT_EQ(ranged.body, "2345");
  EXPECT_EQ(ranged.headers["content-range"], "bytes 2-5/10");
  // The absolute form libtorrent 2.0.8 writes when a proxy is configured.
  auto whole = Get(relay_->url() + kArtifact);
  EXPECT_EQ(whole.status, 200) << whole.raw;
  EXPECT_EQ(whole.body, kBytes);
  EXPECT_EQ(relay_->bytes_relayed(), 4u + kBytes.size());
  const int forwarded = origin_requests_.load();
  EXPECT_EQ(forwarded, 2);

  // Anything but an artifact is never forwarded.
  for (const std::string target :
       {"/metadata/timestamp.json", "/api/v1/enroll", "/artifacts/../metadata/root.json",
        "/artifacts/abc/abc?passkey=x"}) {
    EXPECT_EQ(Get(target).status, 404) << target;
  }
  EXPECT_EQ(origin_requests_.load(), forwarded);
  // The origin's 404 is passed on; an origin that is gone is a 502.
  EXPECT_EQ(Get("/artifacts/def/def").status, 404);
  auto unreachable = OriginRelay::Start("http://127.0.0.1:1", http::ClientOptions{.proxy = ""});
  ASSERT_TRUE(unreachable.ok());
  relay_ = std::move(*unreachable);
  EXPECT_EQ(Get(kArtifact).status, 502);
}

}  // namespace
}  // namespace flotilla::node
