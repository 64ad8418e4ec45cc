#include "tracker/service/config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "http/http_server.h"
#include "tracker/announce/swarm_registry.h"

namespace flotilla::tracker {
namespace {

TEST(TrackerConfig, LoadsKnownKeysAndRefusesTypos) {
  const std::string dir = ::testing::TempDir() + "/tracker-config";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/ok.json", R"({"listen":"0.0.0.0:0","repository":"/r",
      "announce_interval_s":600,"min_announce_interval_s":30,"peer_ttl_s":1300,
      "signing_lease_ttl_s":5})")
                  .ok());
  auto c = LoadTrackerConfig(dir + "/ok.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->repository, "/r");
  EXPECT_EQ(c->announce_interval_s, 600);
  EXPECT_EQ(c->signing_lease_ttl_s, 5);
  EXPECT_TRUE(ValidateTrackerConfig(*c).ok());

  ASSERT_TRUE(WriteFileAtomic(dir + "/typo.json", R"({"repositroy":"/r"})").ok());
  EXPECT_NE(LoadTrackerConfig(dir + "/typo.json").status().message().find("repositroy"),
            std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(dir + "/type.json", R"({"read_timeout_s":"10"})").ok());
  EXPECT_FALSE(LoadTrackerConfig(dir + "/type.json").ok());

  TrackerConfig bad = *c;
  bad.tls_certificate = "/cert.pem";
  EXPECT_FALSE(ValidateTrackerConfig(bad).ok());
  bad = *c;
  bad.peer_ttl_s = 10;
  EXPECT_FALSE(ValidateTrackerConfig(bad).ok());
  bad = *c;
  bad.trusted_proxies = {"10.0.0.2", "fd00::2"};
  EXPECT_TRUE(ValidateTrackerConfig(bad).ok());
  bad.trusted_proxies = {"10.0.0.2", "lb.example"};
  EXPECT_NE(ValidateTrackerConfig(bad).message().find("not an IP address: lb.example"),
            std::string::npos);
  bad = *c;
  bad.signing_lease_ttl_s = 31;  // the lease's TTL is at most 30 s
  EXPECT_FALSE(ValidateTrackerConfig(bad).ok());
  bad = *c;
  bad.timestamp_expiry_s = 59;  // re-signed at half: not faster than every 30 s
  EXPECT_FALSE(ValidateTrackerConfig(bad).ok());
  bad.timestamp_expiry_s = 120;
  EXPECT_TRUE(ValidateTrackerConfig(bad).ok());
  std::filesystem::remove_all(dir);
}

TEST(TrackerConfig, DatabaseUrlDefaultsToTheRepositoryFile) {
  TrackerConfig c;
  c.repository = "/r";
  EXPECT_EQ(TrackerDatabaseUrl(c, "/r/tracker.db"), "/r/tracker.db");
  c.database = "/data/t.db";
  EXPECT_EQ(TrackerDatabaseUrl(c, "/r/tracker.db"), "/data/t.db");
  EXPECT_TRUE(ValidateTrackerConfig(c).ok());
  c.database_url = "postgresql://flotilla@db/tracker";
  EXPECT_EQ(ValidateTrackerConfig(c).code(), StatusCode::kInvalidArgument) << "named twice";
  c.database.clear();
  EXPECT_TRUE(ValidateTrackerConfig(c).ok());
  EXPECT_EQ(TrackerDatabaseUrl(c, "/r/tracker.db"), "postgresql://flotilla@db/tracker");
}

TEST(TrackerConfig, ListenAddresses) {
  EXPECT_EQ(ParseListenAddress("127.0.0.1:8080")->port, 8080);
  EXPECT_EQ(ParseListenAddress("[::1]:0")->host, "::1");
  EXPECT_FALSE(ParseListenAddress("127.0.0.1").ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:99999").ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:x").ok());
}

TEST(TrackerConfig, FleetTokenFileMustBePrivate) {
  const std::string dir = ::testing::TempDir() + "/tracker-token";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/token", "0123456789abcdef0123\n", 0644).ok());
  EXPECT_EQ(LoadFleetTokenHash(dir + "/token").status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(WriteFileAtomic(dir + "/token", "0123456789abcdef0123\n", 0600).ok());
  auto hash = LoadFleetTokenHash(dir + "/token");
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->size(), 64u);
  ASSERT_TRUE(WriteFileAtomic(dir + "/short", "abc\n", 0600).ok());
  EXPECT_FALSE(LoadFleetTokenHash(dir + "/short").ok());
  std::filesystem::remove_all(dir);
}

TEST(TrackerConfig, DefaultsAreTheLibrariesDefaults) {
  const TrackerConfig c;
  const http::ServerOptions server;
  EXPECT_EQ(c.max_connections, server.max_connections);
  EXPECT_EQ(c.max_connections_per_address, server.max_connections_per_address);
  EXPECT_EQ(c.max_connections_per_device, server.max_connections_per_identity);
  const SwarmLimits swarm;
  EXPECT_EQ(c.max_peers, static_cast<int64_t>(swarm.max_peers));
  EXPECT_EQ(c.max_peers_per_device, static_cast<int64_t>(swarm.max_peers_per_device));
  EXPECT_EQ(c.max_peers_per_device_swarm, static_cast<int64_t>(swarm.max_peers_per_device_swarm));
}

}  // namespace
}  // namespace flotilla::tracker
