// The daemon's configuration: strict parsing, clear errors, defaults.
#include "node/daemon/node_config.h"

#include <gtest/gtest.h>

namespace flotilla::node {
namespace {

const char* kMinimal = R"({"tracker_url": "http://t:8080/", "enrolment_token": "x",
  "device_name": "kiosk-1", "data_dir": "/var/lib/flotilla", "apps": ["kiosk"]})";

std::string With(const std::string& extra) {
  std::string base = kMinimal;
  return base.substr(0, base.size() - 1) + ", " + extra + "}";
}

TEST(NodeConfig, MinimalConfigGetsTheDocumentedDefaults) {
  auto c = ParseNodeConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tracker_url, "http://t:8080");
  EXPECT_EQ(c->content_url, "http://t:8080");  // metadata and artifacts from the tracker
  EXPECT_EQ(c->transfer_mode, TransferMode::kP2p);
  EXPECT_TRUE(c->deltas);
  EXPECT_EQ(c->refresh_interval_s, 300u);
  EXPECT_EQ(c->download_bytes_per_s, 0u);
  EXPECT_TRUE(c->lan.enabled);
  EXPECT_EQ(c->lan.port, 7476);
  EXPECT_FALSE(c->allowed_hours.has_value());
  EXPECT_EQ(c->import_dir, "");  // no import directory: a 0.1.0 node.json reads as before
  EXPECT_EQ(c->import_poll_s, 5u);
}

TEST(NodeConfig, EveryKeyIsRead) {
  auto c = ParseNodeConfig(With(
      R"("site": "shop-7", "tags": ["kiosk", "portrait"], "transfer_mode": "http-only", "deltas": false,
         "content_url": "https://cdn.example/fleet/",
         "bandwidth": {"down_kib_s": 100, "up_kib_s": 50, "allowed_hours_utc": [22, 6]},
         "listen": "0.0.0.0:6881", "refresh_interval_s": 60, "max_backoff_s": 600,
         "report_interval_s": 30, "http_chunk_kib": 256, "stall_timeout_s": 30,
         "origin_wait_s": 4, "import_dir": "/media/usb", "import_poll_s": 2,
         "log_level": "debug", "root_of_trust": "/etc/flotilla/root.json",
         "lan": {"enabled": true, "http_listen": "0.0.0.0:7477", "group": "239.1.2.3",
                 "port": 9000, "interface": "192.168.1.2", "beacon_interval_s": 5})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->download_bytes_per_s, 100u * 1024);
  EXPECT_EQ(c->upload_bytes_per_s, 50u * 1024);
  EXPECT_EQ(c->allowed_hours->from_hour, 22);
  EXPECT_EQ(c->transfer_mode, TransferMode::kHttpOnly);
  EXPECT_EQ(c->content_url, "https://cdn.example/fleet");
  EXPECT_EQ(c->lan.group, "239.1.2.3");
  EXPECT_EQ(c->lan.beacon_interval_s, 5u);
  EXPECT_EQ(c->stall_timeout_s, 30u);
  EXPECT_EQ(c->origin_wait_s, 4u);
  EXPECT_EQ(c->import_dir, "/media/usb");
  EXPECT_EQ(c->import_poll_s, 2u);
  EXPECT_EQ(c->tags, (std::vector<std::string>{"kiosk", "portrait"}));
}

TEST(NodeConfig, ErrorsNameTheKey) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {With(R"("refresh_intervall_s": 5)"), "unknown key 'refresh_intervall_s'"},
      {With(R"("lan": {"grup": "x"})"), "unknown key 'lan.grup'"},
      {With(R"("transfer_mode": "ftp")"), "transfer_mode"},
      {With(R"("content_url": "file:///srv")"), "content_url: an http:// or https:// URL"},
      {With(R"("refresh_interval_s": 0)"), "refresh_interval_s: must be in 1..86400"},
      {With(R"("refresh_interval_s": "60")"), "refresh_interval_s: must be an unsigned integer"},
      {With(R"("origin_wait_s": 0)"), "origin_wait_s: must be in 1..3600"},
      {With(R"("import_dir": "media/usb")"), "import_dir: an absolute path"},
      {With(R"("import_poll_s": 0)"), "import_poll_s: must be in 1..3600"},
      {With(R"("bandwidth": {"allowed_hours_utc": [5, 5]})"), "allowed_hours_utc"},
      {With(R"("listen": "6881")"), "listen"},
      {With(R"("tags": ["ok", "not ok"])"), "tags: 'not ok' is not 1-64"},
      {With(R"("tags": "kiosk")"), "tags"},
      {With(R"("enrolment_token_file": "/t")"), "exactly one of enrolment_token"},
      {R"({"tracker_url": "ftp://t", "enrolment_token": "x", "device_name": "a",
           "data_dir": "/d", "apps": ["a"]})",
       "tracker_url"},
      {R"({"tracker_url": "http://t", "enrolment_token": "x", "device_name": "a",
           "data_dir": "relative", "apps": ["a"]})",
       "data_dir: required, an absolute path"},
      {R"({"tracker_url": "http://t", "enrolment_token": "x", "device_name": "a",
           "data_dir": "/d", "apps": []})",
       "apps: required"},
      {R"({"tracker_url": "http://t", "enrolment_token": "x", "device_name": "a b",
           "data_dir": "/d", "apps": ["a"]})",
       "device_name"},
      {R"({"a": 1, "a": 2})", "duplicate"},
      {"[1]", "must be a JSON object"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseNodeConfig(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_NE(parsed.status().message().find(c.expected), std::string::npos)
        << parsed.status().ToString() << " should mention " << c.expected;
  }
}

TEST(NodeConfig, ProxyComesFromTheKeyTheEnvironmentOrNowhere) {
  // Absent: libcurl's environment (the client options leave it unset).
  auto from_env = ParseNodeConfig(kMinimal);
  ASSERT_TRUE(from_env.ok());
  EXPECT_FALSE(from_env->proxy.has_value());
  EXPECT_FALSE(HttpOptionsFor(*from_env).proxy.has_value());
  // "none": no proxy whatever the environment says.
  auto none = ParseNodeConfig(With(R"("proxy": "none")"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(HttpOptionsFor(*none).proxy, "");
  // A URL, with hosts reached directly; LAN neighbours never use it.
  auto given = ParseNodeConfig(
      With(R"("proxy": "http://shop:pw@proxy.lan:3128", "no_proxy": "registry.lan")"));
  ASSERT_TRUE(given.ok()) << given.status().ToString();
  const http::ClientOptions wan = HttpOptionsFor(*given);
  EXPECT_EQ(wan.proxy, "http://shop:pw@proxy.lan:3128");
  EXPECT_EQ(wan.no_proxy, "registry.lan");
  EXPECT_EQ(http::ProxyFor(wan, given->tracker_url), "http://shop:pw@proxy.lan:3128");
  EXPECT_EQ(LanHttpOptionsFor(*given).proxy, "");
  // Bad values name the key and never show the password.
  auto socks = ParseNodeConfig(With(R"("proxy": "socks5://u:HIDDEN@p:1080")"));
  ASSERT_FALSE(socks.ok());
  EXPECT_NE(socks.status().message().find("proxy"), std::string::npos);
  EXPECT_EQ(socks.status().message().find("HIDDEN"), std::string::npos);
  auto stray = ParseNodeConfig(With(R"("no_proxy": "a.lan")"));
  ASSERT_FALSE(stray.ok());
  EXPECT_NE(stray.status().message().find("no_proxy"), std::string::npos);
}

// Secrets stay off the SD card: a tmpfs place per device name by default,
// cleaned as data_dir is, never under data_dir nor holding it.
TEST(NodeConfig, SecretsDirIsATmpfsPlaceOutsideTheDataDir) {
  auto c = ParseNodeConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->secrets_dir, "/run/flotilla-node/kiosk-1/secrets");
  c = ParseNodeConfig(With(R"("secrets_dir": "/run//s/")"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->secrets_dir, "/run/s");
  for (const char* bad : {R"("secrets_dir": "run/s")", R"("secrets_dir": "/var/lib/flotilla/s")",
                          R"("secrets_dir": "/var/lib/flotilla")", R"("secrets_dir": "/var")"}) {
    auto refused = ParseNodeConfig(With(bad));
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("secrets_dir"), std::string::npos)
        << refused.status().ToString();
  }
}

TEST(NodeConfig, AllowedHoursWrapMidnight) {
  using std::chrono::hours;
  const std::chrono::system_clock::time_point day{hours(24 * 20000)};
  AllowedHours night{22, 6};
  EXPECT_TRUE(TransfersAllowedAt(night, day + hours(23)));
  EXPECT_TRUE(TransfersAllowedAt(night, day + hours(3)));
  EXPECT_FALSE(TransfersAllowedAt(night, day + hours(12)));
  AllowedHours office{9, 17};
  EXPECT_TRUE(TransfersAllowedAt(office, day + hours(9)));
  EXPECT_FALSE(TransfersAllowedAt(office, day + hours(17)));
  EXPECT_TRUE(TransfersAllowedAt(std::nullopt, day));
}

}  // namespace
}  // namespace flotilla::node
