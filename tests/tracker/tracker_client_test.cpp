// The tracker client library against the real tracker: enrolment, reports
// and the fleet read back, each refusal as the Status the library promises,
// and the URLs it hands out; what reads the database back runs on SQLite
// and on PostgreSQL.
#include "tracker/client/tracker_client.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "http/http_server.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

using tracker::DeviceReport;
using tracker::TrackerClient;

class TrackerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("tracker-client");
    auto flags = DatabaseFlags();
    ASSERT_TRUE(flags.ok()) << flags.status().ToString();
    ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", *flags)) << tracker_.Log();
  }
  virtual Result<std::vector<std::string>> DatabaseFlags() { return std::vector<std::string>{}; }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  TrackerProcess tracker_;
};

class TrackerClientDbTest : public TrackerClientTest,
                            public ::testing::WithParamInterface<const char*> {
 protected:
  Result<std::vector<std::string>> DatabaseFlags() override {
    return ServeDatabaseFlags(GetParam(), "tracker_client");
  }
};
INSTANTIATE_TEST_SUITE_P(Engines, TrackerClientDbTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

DeviceReport Downloading(uint64_t done) {
  return {"web", "r1", "downloading", done, 100, 30, 20, "unknown", {"disk slow"}};
}

TEST_P(TrackerClientDbTest, EnrolReportAndReadTheFleetBack) {
  TrackerClient client(tracker_.url() + "/");
  EXPECT_EQ(client.Enrol({"wrong-token", "pi-a", ""}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(client.Enrol({TrackerProcess::FleetToken(), "no spaces", ""}).status().code(),
            StatusCode::kInvalidArgument);
  auto a = client.Enrol({TrackerProcess::FleetToken(), "pi-a", "shop-7"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = client.Enrol({TrackerProcess::FleetToken(), "pi-b", ""});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->announce_url, client.AnnounceUrl(a->passkey));

  DeviceReport first = Downloading(40);
  first.bad_peers = {{std::string(40, 'a'), "10.0.0.9", 6881, 2}};
  ASSERT_TRUE(client.Report(*a, first).ok());
  // Another device's credential, an unknown one, a report the tracker refuses.
  tracker::DeviceCredentials impostor = *a;
  impostor.credential = b->credential;
  Status st = client.Report(impostor, Downloading(50));
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << st.ToString();
  impostor.credential = std::string(64, '1');
  EXPECT_EQ(client.Report(impostor, Downloading(50)).code(), StatusCode::kPermissionDenied);
  DeviceReport exploded = Downloading(50);
  exploded.state = "exploded";
  st = client.Report(*a, exploded);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  for (const auto& secret : {a->credential, b->credential, a->passkey}) {
    EXPECT_EQ(st.message().find(secret), std::string::npos);
  }

  auto fleet = client.Fleet();
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->devices.size(), 2u);
  std::map<std::string, tracker::DeviceRow> by_name;
  for (const auto& d : fleet->devices) by_name[d.identity.name] = d;
  const tracker::DeviceRow& pa = by_name.at("pi-a");
  EXPECT_EQ(pa.identity.device_id, a->device_id);
  EXPECT_EQ(pa.identity.site, "shop-7");
  ASSERT_TRUE(pa.reported);
  EXPECT_EQ(pa.report.state, "downloading");
  EXPECT_EQ(pa.report.progress_done, 40u);  // the refused reports changed nothing
  EXPECT_EQ(pa.report.bytes_from_peers, 30u);
  EXPECT_FALSE(by_name.at("pi-b").reported);
  EXPECT_EQ(fleet->bytes_from_peers, 30u);
  EXPECT_EQ(fleet->bytes_from_origin, 20u);
  ASSERT_EQ(fleet->failures.size(), 1u);
  EXPECT_EQ(fleet->failures[0].message, "disk slow");
  EXPECT_EQ(fleet->failures[0].device_name, "pi-a");
  // A bound below the answer's size is refused, not truncated.
  EXPECT_EQ(client.Fleet(64).status().code(), StatusCode::kResourceExhausted);
}

TEST_F(TrackerClientTest, UrlsNameWhatTheTrackerServes) {
  TrackerClient client(tracker_.url());
  const std::string hex(64, 'a');
  EXPECT_EQ(client.MetadataUrl("timestamp.json"), tracker_.url() + "/metadata/timestamp.json");
  EXPECT_EQ(client.ArtifactUrl(hex), tracker_.url() + "/artifacts/" + hex);
  EXPECT_EQ(client.TorrentUrl(hex, "p"),
            tracker_.url() + "/torrents/" + hex + ".torrent?passkey=p");
  http::Client http;
  EXPECT_EQ(http.Fetch({.url = client.MetadataUrl("timestamp.json")}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(http.Fetch({.url = client.TorrentUrl(hex)}).status().code(), StatusCode::kNotFound);
  std::filesystem::create_directories(dir_ + "/repo/metadata");
  std::ofstream(dir_ + "/repo/metadata/timestamp.json") << "{}";
  EXPECT_EQ(http.Fetch({.url = client.MetadataUrl("timestamp.json")})->body, "{}");
}

// A 0.1.0 tracker refuses report members it does not know with
// 400 {"error":"unknown member bad_peers"} (its report parser, verbatim): a
// newer node's report then goes again without its bad peers, instead of the
// whole report being lost. The stand-in answers as that code did.
TEST(TrackerClientAgainstAnOlderTracker, AReportGoesWithoutTheMembersTheTrackerRefuses) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::string> bodies;
  auto server =
      http::Server::Start(io, {}, [&](const http::Request& request, const http::RequestContext&) {
        bodies.push_back(request.body());
        for (const char* member : {"bad_peers", "failure", "platform", "seq"}) {  // key order
          if (request.body().find(std::string("\"") + member + "\"") != std::string::npos) {
            return http::Reply::Typed(http::status::bad_request, "application/json",
                                      std::string(R"({"error":"unknown member )") + member + "\"}");
          }
        }
        return http::Reply::Typed(http::status::ok, "application/json", "{}");
      });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::thread loop([&] { io.run(); });
  TrackerClient client("http://127.0.0.1:" + std::to_string((*server)->port()));
  tracker::DeviceCredentials device;
  device.device_id = "d1";
  device.credential = "c1";
  DeviceReport report = Downloading(40);
  report.bad_peers = {{std::string(40, 'a'), "10.0.0.9", 6881, 2}};
  Status with_bad_peers = client.Report(device, report);
  report.seq = 12;
  Status with_seq = client.Report(device, report);
  report.state = "failed";
  report.failure = "transfer";
  Status with_failure = client.Report(device, report);
  report.bad_peers = {{std::string(40, 'b'), "10.0.0.9", 6881, 1}};
  report.platform = "linux/arm64";
  Status with_all = client.Report(device, report);
  work.reset();
  io.stop();
  loop.join();
  EXPECT_TRUE(with_bad_peers.ok()) << with_bad_peers.ToString();
  ASSERT_EQ(bodies.size(), 14u);
  EXPECT_NE(bodies[0].find("bad_peers"), std::string::npos);
  EXPECT_EQ(bodies[1].find("bad_peers"), std::string::npos);
  EXPECT_NE(bodies[1].find("downloading"), std::string::npos);

  // A report with a sequence number too: it goes without both.
  EXPECT_TRUE(with_seq.ok()) << with_seq.ToString();
  EXPECT_NE(bodies[3].find("\"seq\":12"), std::string::npos);
  EXPECT_EQ(bodies[4].find("seq"), std::string::npos);
  EXPECT_NE(bodies[4].find("downloading"), std::string::npos);

  // A failure kind too: it goes without all three, still saying "failed"
  // (which such a tracker counts as a failure, as it always did).
  EXPECT_TRUE(with_failure.ok()) << with_failure.ToString();
  EXPECT_NE(bodies[6].find("\"failure\":\"transfer\""), std::string::npos) << bodies[6];
  EXPECT_EQ(bodies[7].find("failure"), std::string::npos) << bodies[7];
  EXPECT_NE(bodies[7].find("seq"), std::string::npos) << bodies[7];
  EXPECT_EQ(bodies[8].find("seq"), std::string::npos) << bodies[8];
  EXPECT_NE(bodies[8].find("\"failed\""), std::string::npos) << bodies[8];

  // The platform too: all four optional members are dropped, one by one.
  EXPECT_TRUE(with_all.ok()) << with_all.ToString();
  EXPECT_NE(bodies[9].find("\"platform\":\"linux/arm64\""), std::string::npos) << bodies[9];
  EXPECT_NE(bodies[11].find("platform"), std::string::npos) << bodies[11];
  EXPECT_EQ(bodies[12].find("platform"), std::string::npos) << bodies[12];
  EXPECT_EQ(bodies[13].find("bad_peers"), std::string::npos) << bodies[13];
  EXPECT_EQ(bodies[13].find("seq"), std::string::npos) << bodies[13];
  EXPECT_NE(bodies[13].find("\"failed\""), std::string::npos) << bodies[13];
}

// This tracker refuses a failure kind it does not know (a newer node's):
// the report goes again without it and the device's state still arrives.
TEST_F(TrackerClientTest, AFailureKindTheTrackerDoesNotKnowIsLeftOut) {
  TrackerClient client(tracker_.url());
  auto a = client.Enrol({TrackerProcess::FleetToken(), "pi-a", ""});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  DeviceReport report = Downloading(40);
  report.state = "failed";
  report.failure = "overheated";
  Status sent = client.Report(*a, report);
  EXPECT_TRUE(sent.ok()) << sent.ToString();
  auto fleet = client.Fleet();
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->devices.size(), 1u);
  EXPECT_EQ(fleet->devices[0].report.state, "failed");
  // A report the tracker refuses for another reason is not sent again.
  report.release = "../x";
  EXPECT_EQ(client.Report(*a, report).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flotilla::testing
