// The LAN exchange endpoint on loopback: what it serves from the trusted
// metadata and torrents directories, what it refuses, one request per
// connection, answered on the exchange's own thread.
#include "node/daemon/lan_exchange.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/file_io.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

using testing::HttpResponse;

class LanExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("lan-exchange-");
    ASSERT_TRUE(CreateDirectories(dir_ + "/tuf").ok());
    ASSERT_TRUE(CreateDirectories(dir_ + "/torrents").ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/tuf/timestamp.json", "timestamp").ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/tuf/snapshot.json", "snapshot 7").ok());
    ASSERT_TRUE(
        WriteFileAtomic(dir_ + "/torrents/" + std::string(64, 'a') + ".torrent", "d4:ee").ok());
    LanConfig config;
    config.http_listen = "127.0.0.1:0";
    config.port = 0;  // the beacon socket's port: any, so tests never share one
    config.interface_address = "127.0.0.1";
    auto lan = LanExchange::Start(config, "a", "shop-7", dir_ + "/tuf", dir_ + "/torrents", clock_);
    ASSERT_TRUE(lan.ok()) << lan.status().ToString();
    lan_ = std::move(*lan);
    lan_->SetServed(
        {.root_version = 1, .snapshot_version = 7, .targets_version = 7, .timestamp_version = 9});
  }
  void TearDown() override { testing::RunShell("rm -rf " + dir_); }

  HttpResponse Request(const std::string& method, const std::string& target) {
    return testing::HttpRequestTo(lan_->http_port(), method, target);
  }

  SystemClock clock_;
  std::string dir_;
  std::unique_ptr<LanExchange> lan_;
};

TEST_F(LanExchangeTest, ServesTrustedMetadataByNameAndByTrustedVersion) {
  HttpResponse timestamp = Request("GET", "/metadata/timestamp.json");
  EXPECT_EQ(timestamp.status, 200);
  EXPECT_EQ(timestamp.body, "timestamp");
  EXPECT_EQ(timestamp.headers["content-type"], "application/octet-stream");
  EXPECT_EQ(timestamp.headers["server"], "flotilla-node");
  EXPECT_EQ(timestamp.headers["connection"], "close");
  EXPECT_EQ(Request("GET", "/metadata/7.snapshot.json").body, "snapshot 7");
  EXPECT_EQ(Request("GET", "/metadata/6.snapshot.json").status, 404);
  EXPECT_EQ(Request("GET", "/metadata/1.root.json").status, 404);  // trusted, but no file
  EXPECT_EQ(Request("GET", "/metadata/../node.lock").status, 404);
}

// An app role's file (apps/kiosk, stored as apps%2Fkiosk.json) goes to
// neighbours too, under the version it holds; no name reaches outside.
TEST_F(LanExchangeTest, ServesDelegatedRolesAtTheirTrustedVersion) {
  const std::string kiosk = R"({"signed":{"_type":"targets","version":3},"signatures":[]})";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/tuf/apps%2Fkiosk.json", kiosk).ok());
  EXPECT_EQ(Request("GET", "/metadata/3.apps%2Fkiosk.json").body, kiosk);
  EXPECT_EQ(Request("GET", "/metadata/3.apps%2fkiosk.json").body, kiosk);
  EXPECT_EQ(Request("GET", "/metadata/apps%2Fkiosk.json").body, kiosk);
  EXPECT_EQ(Request("GET", "/metadata/2.apps%2Fkiosk.json").status, 404);
  EXPECT_EQ(Request("GET", "/metadata/3.apps%2Fother.json").status, 404);
  EXPECT_EQ(Request("GET", "/metadata/3.apps%2F..%2F..%2Fnode.lock").status, 404);
  EXPECT_EQ(Request("GET", "/metadata/%2E%2E%2Fnode.json").status, 404);
  EXPECT_EQ(Request("GET", "/metadata/3.json").status, 404);
}

TEST_F(LanExchangeTest, ServesTorrentsByDigestOnly) {
  const std::string name = std::string(64, 'a') + ".torrent";
  EXPECT_EQ(Request("GET", "/torrents/" + name).body, "d4:ee");
  EXPECT_EQ(Request("GET", "/torrents/" + std::string(64, 'b') + ".torrent").status, 404);
  EXPECT_EQ(Request("GET", "/torrents/" + std::string(64, 'A') + ".torrent").status, 404);
  EXPECT_EQ(Request("GET", "/torrents/x" + name).status, 404);
}

TEST_F(LanExchangeTest, AnswersHealthAndRefusesOtherMethodsAndPaths) {
  HttpResponse health = Request("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");
  EXPECT_EQ(Request("POST", "/metadata/timestamp.json").status, 405);
  EXPECT_EQ(Request("GET", "/").status, 404);
}

// Two exchanges of one site on one beacon port: each hears the other on its
// own thread, with no one pumping, and a neighbour's beacon carries what it
// serves.
TEST_F(LanExchangeTest, NeighboursAreHeardOnTheExchangesOwnThreads) {
  LanConfig config;
  config.http_listen = "127.0.0.1:0";
  config.port = testing::FreePort();
  config.interface_address = "127.0.0.1";
  auto b = LanExchange::Start(config, "b", "shop-7", dir_ + "/tuf", dir_ + "/torrents", clock_);
  auto c = LanExchange::Start(config, "c", "shop-7", dir_ + "/tuf", dir_ + "/torrents", clock_);
  ASSERT_TRUE(b.ok() && c.ok()) << b.status().ToString() << c.status().ToString();
  (*b)->SetServed({.root_version = 1, .timestamp_version = 12});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::vector<Neighbour> heard;
  while (std::chrono::steady_clock::now() < deadline) {
    (*b)->SendBeacon();
    heard = (*c)->Neighbours();
    if (!heard.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].device, "b");
  EXPECT_EQ(heard[0].timestamp_version, 12u);
  EXPECT_EQ(heard[0].http_base, "http://127.0.0.1:" + std::to_string((*b)->http_port()));
}

}  // namespace
}  // namespace flotilla::node
