// The held notice request (docs/tracker.md, "Notice") with the real binary
// over loopback: answered at once when the device is behind; held, and
// answered within about a second of a `publish` or of a `fleet publish`
// that changes the device's document, not of another device's change;
// "unchanged" after its wait; a second request of the device closes its
// first; the device credential required. Then two replicas over PostgreSQL
// behind haproxy: requests held on either replica wake when the shared
// repository changes.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "http/http_client.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tests/support/tracker_topology.h"
#include "tracker/storage/device_state.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Generous bounds: the tracker checks once a second; the machine may be loaded.
constexpr auto kWakeBound = 6s;

uint64_t VersionOf(const std::string& timestamp_path) {
  auto text = ReadTextFileBounded(timestamp_path, 1 << 20);
  if (!text.ok()) return 0;
  return ParseJsonStrict(*text).value()["signed"]["version"].get<uint64_t>();
}

// The version of the fleet timestamp the tracker serves `d` (its state file's header).
uint64_t FleetVersionOf(const std::string& repo, const EnrolledDevice& d) {
  auto state =
      tracker::ReadDeviceStateHeader(tracker::RepositoryLayout{repo}.fleet_device_dir(d.device_id));
  return state.ok() && state->has_value() ? (*state)->timestamp : 0;
}

struct NoticeResult {
  HttpResponse response;
  Clock::time_point answered;
};

// One notice request to 127.0.0.1:`port`, read until the server closes.
NoticeResult AskNotice(int port, const EnrolledDevice& device, uint64_t image, uint64_t fleet,
                       int wait_s, const std::string& credential) {
  const std::string request =
      "GET /api/v1/devices/" + device.device_id + "/notice?image=" + std::to_string(image) +
      "&fleet=" + std::to_string(fleet) + "&wait=" + std::to_string(wait_s) +
      " HTTP/1.1\r\nHost: tracker\r\nAuthorization: Bearer " + credential +
      "\r\nConnection: close\r\n\r\n";
  NoticeResult result;
  result.response = ParseResponse(SendRaw(port, request, std::chrono::seconds(wait_s + 30)));
  result.answered = Clock::now();
  return result;
}

Json BodyOf(const NoticeResult& r) { return ParseJsonStrict(r.response.body).value_or(Json()); }

class NoticeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("notice-");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_)) << FileText(dir_ + "/init.log");
    ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 16, "1")) << FileText(dir_ + "/publish.log");
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json", R"({"notice_max_wait_s": 20})").ok());
    ASSERT_TRUE(tracker_.Start(dir_, repo_, {"--config", dir_ + "/config.json"})) << tracker_.Log();
    a_ = EnrolDevice(tracker_.port(), "screen-a", "shop-1");
    b_ = EnrolDevice(tracker_.port(), "screen-b", "shop-1");
    ASSERT_FALSE(a_.device_id.empty());
    ASSERT_FALSE(b_.device_id.empty());
    Tracker("fleet init --offline-keys " + dir_ + "/off");
    Tracker("fleet publish");
  }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  static std::string FileText(const std::string& path) {
    return ReadTextFileBounded(path, 1 << 20).value_or("");
  }
  void Tracker(const std::string& args) {
    auto run =
        RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ + " 2>&1");
    ASSERT_EQ(run.exit_code, 0) << args << "\n" << run.output;
  }
  uint64_t ImageVersion() { return VersionOf(repo_ + "/metadata/timestamp.json"); }
  uint64_t FleetVersion(const EnrolledDevice& d) { return FleetVersionOf(repo_, d); }
  // A request of `d` with the tracker's current versions, held on its own thread.
  std::future<NoticeResult> Hold(const EnrolledDevice& d, int wait_s) {
    const uint64_t image = ImageVersion(), fleet = FleetVersion(d);
    const int port = tracker_.port();
    return std::async(std::launch::async,
                      [=] { return AskNotice(port, d, image, fleet, wait_s, d.credential); });
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  EnrolledDevice a_, b_;
};

TEST_F(NoticeTest, ADeviceBehindIsAnsweredAtOnceAndOnlyWithItsCredential) {
  ASSERT_GT(FleetVersion(a_), 0u);
  const auto asked = Clock::now();
  NoticeResult behind = AskNotice(tracker_.port(), a_, 0, FleetVersion(a_), 20, a_.credential);
  ASSERT_EQ(behind.response.status, 200) << behind.response.raw;
  EXPECT_LT(behind.answered - asked, 5s) << "a device behind is not held";
  EXPECT_EQ(behind.response.headers["cache-control"], "no-store");
  EXPECT_EQ(BodyOf(behind),
            (Json{{"changed", true}, {"image", ImageVersion()}, {"fleet", FleetVersion(a_)}}));

  EXPECT_EQ(AskNotice(tracker_.port(), a_, 0, 0, 1, "").response.status, 401);
  EXPECT_EQ(AskNotice(tracker_.port(), a_, 0, 0, 1, "not-a-credential").response.status, 401);
  EXPECT_EQ(AskNotice(tracker_.port(), a_, 0, 0, 1, b_.credential).response.status, 403);
  auto malformed =
      HttpRequestTo(tracker_.port(), "GET", "/api/v1/devices/" + a_.device_id + "/notice?image=x",
                    {"Authorization: Bearer " + a_.credential});
  EXPECT_EQ(malformed.status, 400) << malformed.raw;
  auto with_body =
      HttpRequestTo(tracker_.port(), "GET", "/api/v1/devices/" + a_.device_id + "/notice?image=0",
                    {"Authorization: Bearer " + a_.credential}, "{}");
  EXPECT_EQ(with_body.status, 400) << with_body.raw;
  auto post = HttpRequestTo(tracker_.port(), "POST", "/api/v1/devices/" + a_.device_id + "/notice",
                            {"Authorization: Bearer " + a_.credential});
  EXPECT_EQ(post.status, 405);
}

// `files=1` (docs/tracker.md, "Notice"): the answer to a device whose fleet
// timestamp moved carries its current fleet files, the bytes the fleet route
// serves, zstd-encoded when it accepts that; never to one that did not ask.
TEST_F(NoticeTest, AFleetChangeCarriesTheDevicesFilesWhenAskedFor) {
  auto state =
      tracker::ReadDeviceState(tracker::RepositoryLayout{repo_}.fleet_device_dir(a_.device_id));
  ASSERT_TRUE(state.ok() && state->has_value());
  const tracker::DeviceState& files = **state;
  auto ask = [&](const std::string& query, const std::string& encoding) {
    http::Call call{.url = "http://127.0.0.1:" + std::to_string(tracker_.port()) +
                           "/api/v1/devices/" + a_.device_id + "/notice?image=" +
                           std::to_string(ImageVersion()) + "&fleet=0&wait=1" + query,
                    .max_body_bytes = 1 << 20};
    call.headers.emplace_back("Authorization", "Bearer " + a_.credential);
    call.accept_encoding = encoding;
    call.response_headers = {"Content-Encoding", "Cache-Control"};
    return http::Client().Fetch(call);
  };
  for (const std::string encoding : {"zstd", ""}) {
    SCOPED_TRACE("Accept-Encoding: " + encoding);
    auto answer = ask("&files=1", encoding);
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_EQ(answer->headers["cache-control"], "no-store");
    EXPECT_EQ(answer->headers.contains("content-encoding"), !encoding.empty());
    Json body = ParseJsonStrict(answer->body).value();
    EXPECT_EQ(body["changed"], true);
    EXPECT_EQ(body["fleet"], files.timestamp);
    const Json& carried = body["fleet_files"];
    EXPECT_EQ(carried["root"], files.root);
    EXPECT_EQ(carried["metadata"]["timestamp.json"], *files.Find("timestamp.json"));
    const std::string targets = std::to_string(files.targets) + ".targets.json";
    EXPECT_EQ(carried["metadata"][targets], *files.Find(targets));
    const std::string document = files.document_sha256 + ".device.json";
    EXPECT_EQ(carried["targets"][document], *files.Find(document));
    EXPECT_EQ(carried["metadata"].size(), 3u);
  }
  auto plain = ask("", "zstd");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->headers.contains("content-encoding"));
  EXPECT_EQ(ParseJsonStrict(plain->body).value(),
            (Json{{"changed", true}, {"image", ImageVersion()}, {"fleet", FleetVersion(a_)}}));
}

TEST_F(NoticeTest, UnchangedAfterItsWait) {
  const auto asked = Clock::now();
  NoticeResult r = Hold(a_, 2).get();
  ASSERT_EQ(r.response.status, 200) << r.response.raw;
  EXPECT_GE(r.answered - asked, 1900ms);
  EXPECT_LT(r.answered - asked, 15s);
  EXPECT_EQ(BodyOf(r),
            (Json{{"changed", false}, {"image", ImageVersion()}, {"fleet", FleetVersion(a_)}}));
  EXPECT_EQ(r.response.headers["cache-control"], "no-store");
}

TEST_F(NoticeTest, AFleetChangeWakesThatDeviceOnly) {
  auto a = Hold(a_, 20);
  auto b = Hold(b_, 5);
  std::this_thread::sleep_for(1500ms);  // both held
  ASSERT_EQ(a.wait_for(0s), std::future_status::timeout) << "answered before any change";
  EXPECT_NE(HttpRequestTo(tracker_.port(), "GET", "/metrics")
                .body.find("flotilla_notice_requests_held 2\n"),
            std::string::npos);
  const uint64_t b_fleet = FleetVersion(b_);
  // An app for screen-a alone: only its document changes.
  Tracker("group create only-a --select name=screen-a");
  Tracker("app assign kiosk --group only-a");
  Tracker("fleet publish");
  const auto published = Clock::now();
  ASSERT_EQ(FleetVersion(b_), b_fleet) << "screen-b's repository was re-signed";
  ASSERT_EQ(a.wait_for(kWakeBound), std::future_status::ready) << tracker_.Log();
  NoticeResult woken = a.get();
  EXPECT_LT(woken.answered - published, kWakeBound);
  ASSERT_EQ(woken.response.status, 200) << woken.response.raw;
  EXPECT_EQ(BodyOf(woken),
            (Json{{"changed", true}, {"image", ImageVersion()}, {"fleet", FleetVersion(a_)}}));
  NoticeResult other = b.get();
  ASSERT_EQ(other.response.status, 200) << other.response.raw;
  EXPECT_EQ(BodyOf(other)["changed"], false) << other.response.body;
}

TEST_F(NoticeTest, APublishWakesTheHeldRequest) {
  auto a = Hold(a_, 20);
  std::this_thread::sleep_for(1500ms);
  const uint64_t before = ImageVersion();
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 16, "2", "1")) << FileText(dir_ + "/publish.log");
  const auto published = Clock::now();
  ASSERT_GT(ImageVersion(), before);
  ASSERT_EQ(a.wait_for(kWakeBound), std::future_status::ready);
  NoticeResult woken = a.get();
  EXPECT_LT(woken.answered - published, kWakeBound);
  EXPECT_EQ(BodyOf(woken),
            (Json{{"changed", true}, {"image", ImageVersion()}, {"fleet", FleetVersion(a_)}}))
      << woken.response.raw;
}

TEST_F(NoticeTest, ASecondRequestOfTheDeviceClosesItsFirst) {
  auto first = Hold(a_, 20);
  std::this_thread::sleep_for(1500ms);
  const auto second_asked = Clock::now();
  auto second = Hold(a_, 3);
  ASSERT_EQ(first.wait_for(kWakeBound), std::future_status::ready);
  NoticeResult closed = first.get();
  EXPECT_EQ(closed.response.status, 0) << "closed unanswered: " << closed.response.raw;
  EXPECT_LT(closed.answered - second_asked, kWakeBound);
  NoticeResult held = second.get();
  EXPECT_EQ(held.response.status, 200) << held.response.raw;
  EXPECT_EQ(BodyOf(held)["changed"], false);
}

// Two replicas over one PostgreSQL database and one repository, behind
// haproxy as docs/scale.md configures it: requests held on both replicas
// (round robin) wake on a `fleet publish` and on a `publish`, which write
// the shared repository as the lease holder's re-signing does.
TEST(NoticeReplicasTest, RequestsHeldOnEitherReplicaWakeBehindHaproxy) {
  const std::string dir = MakeTempDir("notice-replicas-");
  const std::string repo = dir + "/repo";
  const std::string url = ReplicaTopology::CreateDatabase("notice_replicas");
  ASSERT_FALSE(url.empty()) << "the test's PostgreSQL cluster did not start";
  auto tracker = [&](const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " --database-url '" + url +
                    "' 2>&1");
  };
  auto init = RunShell(BinaryPath("flotilla-tracker") + " init " + repo +
                       " --public-url http://127.0.0.1:1 --database-url '" + url + "' 2>&1");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(PublishImage(dir, repo, "kiosk", 16, "1"));
  ReplicaTopology topology;
  ReplicaTopology::Options options;
  options.replicas = 2;
  options.config_members = "\"notice_max_wait_s\": 20";
  const std::string started = topology.Start(dir + "/servers", repo, url, options);
  ASSERT_EQ(started, "");
  std::vector<EnrolledDevice> devices;
  for (const char* name : {"screen-a", "screen-b", "screen-c", "screen-d"}) {
    devices.push_back(EnrolDevice(topology.balancer_port(), name, "shop-1"));
    ASSERT_FALSE(devices.back().device_id.empty()) << topology.Logs();
  }
  auto fleet_init = tracker("fleet init --offline-keys " + dir + "/off --repository " + repo);
  ASSERT_EQ(fleet_init.exit_code, 0) << fleet_init.output;
  ASSERT_EQ(tracker("fleet publish --repository " + repo).exit_code, 0);

  // Held through the balancer: round robin puts two on each replica.
  auto hold_all = [&] {
    std::vector<std::future<NoticeResult>> held;
    const uint64_t image = VersionOf(repo + "/metadata/timestamp.json");
    for (const EnrolledDevice& d : devices) {
      const uint64_t fleet = FleetVersionOf(repo, d);
      held.push_back(std::async(std::launch::async, [&topology, d, image, fleet] {
        return AskNotice(topology.balancer_port(), d, image, fleet, 20, d.credential);
      }));
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(1500ms);
    return held;
  };
  auto expect_woken = [&](std::vector<std::future<NoticeResult>>& held, Clock::time_point changed,
                          const char* what) {
    for (size_t i = 0; i < held.size(); ++i) {
      ASSERT_EQ(held[i].wait_for(kWakeBound), std::future_status::ready)
          << what << ": device " << i << "\n"
          << topology.HaproxyLog();
      NoticeResult r = held[i].get();
      EXPECT_EQ(r.response.status, 200) << what << ": " << r.response.raw;
      EXPECT_EQ(BodyOf(r)["changed"], true) << what << ": " << r.response.body;
      EXPECT_LT(r.answered - changed, kWakeBound) << what;
    }
  };

  // A fleet change for every device.
  auto held = hold_all();
  for (auto& h : held) ASSERT_EQ(h.wait_for(0s), std::future_status::timeout);
  ASSERT_EQ(tracker("group create everyone --select site=shop-1 --repository " + repo).exit_code,
            0);
  ASSERT_EQ(tracker("app assign kiosk --group everyone --repository " + repo).exit_code, 0);
  auto published = tracker("fleet publish --repository " + repo);
  ASSERT_EQ(published.exit_code, 0) << published.output;
  expect_woken(held, Clock::now(), "fleet publish");

  // A new release: the image timestamp.
  held = hold_all();
  ASSERT_TRUE(PublishImage(dir, repo, "kiosk", 16, "2", "1"));
  expect_woken(held, Clock::now(), "publish");

  // The balancer spread the held requests over both replicas.
  const std::string log = topology.HaproxyLog();
  for (const char* server : {"api/r0", "api/r1"}) {
    EXPECT_NE(log.find(server), std::string::npos) << server << "\n" << log;
  }
  size_t notices = 0;
  for (size_t at = log.find("/notice?"); at != std::string::npos; at = log.find("/notice?", at + 1))
    ++notices;
  EXPECT_EQ(notices, 8u) << log;
  topology.Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
