// The tracker service end to end: the real binary, a real repository, real
// sockets on loopback; what goes through the database runs on SQLite and on
// PostgreSQL (TrackerHttpDbTest).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

class TrackerHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("tracker-http");
    repo_ = dir_ + "/repo";
    auto flags = DatabaseFlags();
    ASSERT_TRUE(flags.ok()) << flags.status().ToString();
    database_flags_ = *flags;
    ASSERT_TRUE(tracker_.Start(dir_, repo_, database_flags_)) << tracker_.Log();
  }
  virtual Result<std::vector<std::string>> DatabaseFlags() { return std::vector<std::string>{}; }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  // Adds an artifact with the CLI and returns its hex digest.
  std::string AddArtifact(const std::string& content) {
    const std::string file = dir_ + "/artifact.in";
    EXPECT_TRUE(WriteFileAtomic(file, content).ok());
    auto r = RunShell(BinaryPath("flotilla-tracker") + " artifact add --repository " + repo_ +
                      " --public-url " + tracker_.url() + " " + file);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return Digest::Of(content).Hex();
  }

  std::string Announce(const EnrolledDevice& d, const std::string& peer_id, int port,
                       const std::string& extra = "") {
    const std::string hash(20, '\x42');
    return "/announce/" + d.passkey + "?info_hash=" + PercentEncodeAll(hash) +
           "&peer_id=" + PercentEncodeAll(peer_id) + "&port=" + std::to_string(port) +
           "&uploaded=0&downloaded=0&left=10&compact=1" + extra;
  }

  std::string dir_, repo_;
  std::vector<std::string> database_flags_;
  TrackerProcess tracker_;
};

// The tests whose state lives in the database, once per engine.
class TrackerHttpDbTest : public TrackerHttpTest,
                          public ::testing::WithParamInterface<const char*> {
 protected:
  Result<std::vector<std::string>> DatabaseFlags() override {
    return ServeDatabaseFlags(GetParam(), "tracker_http");
  }
};
INSTANTIATE_TEST_SUITE_P(Engines, TrackerHttpDbTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

TEST_F(TrackerHttpTest, ServesMetadataFilesAsStoredBytes) {
  std::filesystem::create_directories(repo_ + "/metadata");
  const std::string bytes = "{\"signed\":{\"_type\":\"timestamp\"},\"signatures\":[]}\n\x01";
  ASSERT_TRUE(WriteFileAtomic(repo_ + "/metadata/timestamp.json", bytes).ok());
  auto r = HttpRequestTo(tracker_.port(), "GET", "/metadata/timestamp.json");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, bytes);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/metadata/targets.json").status, 404);
  // A large file (streamed, not read into memory) comes back intact too.
  std::string big(300'000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  ASSERT_TRUE(WriteFileAtomic(repo_ + "/metadata/7.targets.json", big).ok());
  auto large = HttpRequestTo(tracker_.port(), "GET", "/metadata/7.targets.json");
  EXPECT_EQ(large.status, 200);
  EXPECT_EQ(large.body, big);
  // A re-signed file replaces the old one atomically and is served at once.
  ASSERT_TRUE(WriteFileAtomic(repo_ + "/metadata/timestamp.json", "v2").ok());
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/metadata/timestamp.json").body, "v2");
}

TEST_F(TrackerHttpTest, ServesArtifactsWithRangesAndTheirTorrents) {
  std::string content(200'000, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 31) ^ (i >> 9));
  const std::string hex = AddArtifact(content);

  auto whole = HttpRequestTo(tracker_.port(), "GET", "/artifacts/" + hex);
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body, content);
  EXPECT_EQ(whole.headers["accept-ranges"], "bytes");

  // The web seed form: a directory URL plus the torrent name (= hex).
  auto part = HttpRequestTo(tracker_.port(), "GET", "/artifacts/" + hex + "/" + hex,
                            {"Range: bytes=1000-1999"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, content.substr(1000, 1000));
  EXPECT_EQ(part.headers["content-range"], "bytes 1000-1999/200000");

  auto tail = HttpRequestTo(tracker_.port(), "GET", "/artifacts/" + hex, {"Range: bytes=-10"});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, content.substr(content.size() - 10));

  auto torrent = HttpRequestTo(tracker_.port(), "GET", "/torrents/" + hex + ".torrent");
  EXPECT_EQ(torrent.status, 200);
  EXPECT_EQ(torrent.headers["content-type"], "application/x-bittorrent");
  EXPECT_EQ(torrent.body,
            ReadTextFileBounded(repo_ + "/torrents/" + hex + ".torrent", 1 << 20).value());
  EXPECT_NE(torrent.body.find(tracker_.url() + "/announce"), std::string::npos);

  // Personalised with a passkey: only for enrolled devices.
  auto device = EnrolDevice(tracker_.port(), "pi-torrent");
  auto mine = HttpRequestTo(tracker_.port(), "GET",
                            "/torrents/" + hex + ".torrent?passkey=" + device.passkey);
  EXPECT_EQ(mine.status, 200);
  EXPECT_NE(mine.body.find(tracker_.url() + "/announce/" + device.passkey), std::string::npos);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET",
                          "/torrents/" + hex + ".torrent?passkey=" + std::string(64, '0'))
                .status,
            403);

  auto metrics = HttpRequestTo(tracker_.port(), "GET", "/metrics").body;
  EXPECT_NE(
      metrics.find("flotilla_artifact_bytes_served_total{artifact=\"sha256:" + hex + "\"} 201010"),
      std::string::npos)
      << metrics;
}

TEST_P(TrackerHttpDbTest, EnrolmentNeedsTheFleetToken) {
  auto wrong = HttpRequestTo(tracker_.port(), "POST", "/api/v1/enroll", {},
                             R"({"fleet_token":"guess","name":"pi-1"})");
  EXPECT_EQ(wrong.status, 403);
  auto bad_name =
      HttpRequestTo(tracker_.port(), "POST", "/api/v1/enroll", {},
                    R"({"fleet_token":")" + TrackerProcess::FleetToken() + R"(","name":"../etc"})");
  EXPECT_EQ(bad_name.status, 400);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/api/v1/enroll").status, 405);
  auto d = EnrolDevice(tracker_.port(), "pi-1", "shop-7");
  ASSERT_FALSE(d.device_id.empty());
  EXPECT_EQ(d.credential.size(), 64u);
  EXPECT_EQ(d.passkey.size(), 64u);
}

TEST_P(TrackerHttpDbTest, AnnounceReturnsSameSwarmPeersAndRefusesUnknownPasskeys) {
  auto a = EnrolDevice(tracker_.port(), "pi-a", "shop");
  auto b = EnrolDevice(tracker_.port(), "pi-b", "shop");
  ASSERT_FALSE(a.passkey.empty());
  ASSERT_FALSE(b.passkey.empty());
  auto first = HttpRequestTo(tracker_.port(), "GET", Announce(a, std::string(20, 'a'), 7001));
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_NE(first.body.find("5:peers0:"), std::string::npos) << first.body;

  auto second = HttpRequestTo(tracker_.port(), "GET",
                              Announce(b, std::string(20, 'b'), 7002, "&ip=192.168.5.9"));
  ASSERT_EQ(second.status, 200);
  // a's entry: 127.0.0.1:7001 as 6 compact bytes.
  EXPECT_NE(second.body.find(std::string("5:peers6:\x7f\x00\x00\x01\x1b\x59", 15)),
            std::string::npos)
      << second.body;
  EXPECT_NE(second.body.find("8:intervali1800e"), std::string::npos);

  // a now sees b at the LAN address b announced (same site).
  auto again = HttpRequestTo(tracker_.port(), "GET", Announce(a, std::string(20, 'a'), 7001));
  EXPECT_NE(again.body.find(std::string("5:peers6:\xc0\xa8\x05\x09\x1b\x5a", 15)),
            std::string::npos);

  EnrolledDevice stranger{"x", "x", std::string(64, 'f')};
  auto refused = HttpRequestTo(tracker_.port(), "GET", Announce(stranger, std::string(20, 's'), 1));
  // BEP 3: a refusal is a 200 whose bencoded body carries the reason.
  EXPECT_EQ(refused.status, 200);
  EXPECT_NE(refused.body.find("14:failure reason15:unknown passkey"), std::string::npos);
  auto no_passkey = HttpRequestTo(tracker_.port(), "GET", "/announce?info_hash=x");
  EXPECT_EQ(no_passkey.status, 200);
  EXPECT_NE(no_passkey.body.find("14:failure reason"), std::string::npos);

  auto metrics = HttpRequestTo(tracker_.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("flotilla_announces_total{result=\"ok\"} 3"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("flotilla_announces_total{result=\"refused\"} 2"), std::string::npos);
  EXPECT_NE(metrics.find("flotilla_refusals_total{kind=\"announce_passkey\"} 2"),
            std::string::npos);
  EXPECT_NE(metrics.find("flotilla_swarm_peers 2"), std::string::npos);
  // No secret ever reaches the log.
  const std::string log = tracker_.Log();
  for (const auto& secret : {a.passkey, a.credential, b.passkey, TrackerProcess::FleetToken()}) {
    EXPECT_EQ(log.find(secret), std::string::npos);
  }
  EXPECT_NE(log.find("enrolled device 'pi-a'"), std::string::npos) << log;
}

TEST_P(TrackerHttpDbTest, ReportsNeedTheDeviceCredentialAndAWellFormedBody) {
  auto a = EnrolDevice(tracker_.port(), "pi-a");
  auto b = EnrolDevice(tracker_.port(), "pi-b");
  const std::string path = "/api/v1/devices/" + a.device_id + "/report";
  const std::string good =
      R"({"app":"web","release":"r1","state":"downloading","progress":{"done":1,"total":4},)"
      R"("bytes_from_peers":300,"bytes_from_origin":100,"health":"unknown","errors":[]})";
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "POST", path, {}, good).status, 401);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "POST", path,
                          {"Authorization: Bearer " + std::string(64, '1')}, good)
                .status,
            401);
  EXPECT_EQ(
      HttpRequestTo(tracker_.port(), "POST", path, {"Authorization: Bearer " + b.credential}, good)
          .status,
      403);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "POST", path, {"Authorization: Bearer " + a.credential},
                          "{\"app\":")
                .status,
            400);
  EXPECT_EQ(
      HttpRequestTo(tracker_.port(), "POST", path, {"Authorization: Bearer " + a.credential}, good)
          .status,
      204);
  auto metrics = HttpRequestTo(tracker_.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("flotilla_devices{state=\"downloading\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("flotilla_devices{state=\"enrolled\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("flotilla_http_requests_total{route=\"report\",code=\"401\"} 2"),
            std::string::npos);
}

TEST_P(TrackerHttpDbTest, StateSurvivesARestartAndSigkill) {
  auto a = EnrolDevice(tracker_.port(), "pi-a");
  ASSERT_FALSE(a.passkey.empty());
  tracker_.Kill();  // SIGKILL: no chance to flush anything
  ASSERT_TRUE(tracker_.Start(dir_, repo_, database_flags_)) << tracker_.Log();
  auto r = HttpRequestTo(tracker_.port(), "GET", Announce(a, std::string(20, 'a'), 7001));
  EXPECT_EQ(r.status, 200) << r.raw;
}

class TrackerHttpPostgresqlTest : public TrackerHttpTest {
 protected:
  Result<std::vector<std::string>> DatabaseFlags() override {
    return ServeDatabaseFlags("postgresql", "tracker_outage");
  }
};

// A database that goes away costs the requests that need it a 500, never the
// process; announces (secrets in memory) go on; when it is back, so is serve.
TEST_F(TrackerHttpPostgresqlTest, ADatabaseOutageIsA500AndServeRecovers) {
  auto a = EnrolDevice(tracker_.port(), "pi-a");
  ASSERT_FALSE(a.credential.empty());
  const std::string path = "/api/v1/devices/" + a.device_id + "/report";
  const std::vector<std::string> auth = {"Authorization: Bearer " + a.credential};
  auto report = [&](const std::string& state) {
    return HttpRequestTo(tracker_.port(), "POST", path, auth,
                         R"({"app":"web","release":"r1","state":")" + state +
                             R"(","progress":{"done":1,"total":4},"bytes_from_peers":0,)"
                             R"("bytes_from_origin":0,"health":"unknown","errors":[]})")
        .status;
  };
  EXPECT_EQ(report("downloading"), 204);

  auto cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.ok());
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/readyz").status, 200);
  (*cluster)->StopServer();
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/readyz").status, 503);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/healthz").status, 200) << "alive all the same";
  EXPECT_EQ(report("verifying"), 500);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/api/v1/fleet").status, 500);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", Announce(a, std::string(20, 'a'), 7001)).status,
            200);
  EXPECT_TRUE(tracker_.running());

  ASSERT_TRUE((*cluster)->StartServer().ok());
  EXPECT_EQ(report("running"), 204);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/readyz").status, 200);
  auto fleet = HttpRequestTo(tracker_.port(), "GET", "/api/v1/fleet");
  ASSERT_EQ(fleet.status, 200);
  EXPECT_NE(fleet.body.find(R"("state":"running")"), std::string::npos) << fleet.body;
  EXPECT_NE(tracker_.Log().find("report from 'pi-a' not stored"), std::string::npos);
}

}  // namespace
}  // namespace flotilla::testing
