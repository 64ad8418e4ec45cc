// The LAN exchange endpoint on loopback: what it serves from the trusted
// metadata and torrents directories, what it refuses, one request per
// connection. The test's own thread pumps the exchange, as the loop does.
#include "node/daemon/lan_exchange.h"

#include <gtest/gtest.h>

#include <future>
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

  // One request, answered while this thread pumps the exchange.
  HttpResponse Request(const std::string& method, const std::string& target) {
    auto reply = std::async(std::launch::async, [&] {
      return testing::HttpRequestTo(lan_->http_port(), method, target);
    });
    while (reply.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) lan_->Pump();
    return reply.get();
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

}  // namespace
}  // namespace flotilla::node
