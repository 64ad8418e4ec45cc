// Abusive devices and hostile addresses against the real tracker: one device
// flooding swarms or peers, a crowd of devices behind one address, a flood of
// slow connections from one address, one device holding too many
// connections, and devices at two sites reporting a peer that sent them bad
// data.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/file_io.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/api/device_report.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

std::string Hash(char c) { return std::string(20, c); }

std::string AnnounceTarget(const EnrolledDevice& d, const std::string& hash,
                           const std::string& peer_id, int port) {
  return "/announce/" + d.passkey + "?info_hash=" + PercentEncodeAll(hash) +
         "&peer_id=" + PercentEncodeAll(peer_id) + "&port=" + std::to_string(port) +
         "&left=10&compact=0&numwant=200";
}

std::string PeerId(int i) {
  std::string id = "-FL0001-" + std::to_string(i);
  id.resize(20, '.');
  return id;
}

class TrackerAbuseTest : public ::testing::Test {
 protected:
  void Start(const std::string& config_json) {
    dir_ = MakeTempDir("tracker-abuse");
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json", config_json).ok());
    ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", {"--config", dir_ + "/config.json"}))
        << tracker_.Log();
  }
  void TearDown() override {
    tracker_.Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Metrics() { return HttpRequestTo(tracker_.port(), "GET", "/metrics").body; }

  std::string dir_;
  TrackerProcess tracker_;
};

TEST_F(TrackerAbuseTest, AFloodingDeviceIsCappedWhileAnotherAnnounces) {
  Start(R"({"max_peers_per_device": 64, "max_peers_per_device_swarm": 2})");
  auto flood = EnrolDevice(tracker_.port(), "flood", "shop");
  auto honest = EnrolDevice(tracker_.port(), "honest", "home");
  ASSERT_FALSE(flood.passkey.empty());
  ASSERT_FALSE(honest.passkey.empty());
  ASSERT_EQ(
      HttpRequestTo(tracker_.port(), "GET", AnnounceTarget(honest, Hash('h'), PeerId(0), 7000))
          .status,
      200);
  // Distinct peer ids in the honest device's swarm: at most 2 of them stay.
  for (int i = 0; i < 50; ++i) {
    HttpRequestTo(tracker_.port(), "GET", AnnounceTarget(flood, Hash('h'), PeerId(100 + i), 6882));
  }
  // Distinct swarms: 62 more are taken (64 in all), every later one is a
  // failure reason in a 200.
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    std::string hash = Hash('s');
    hash[0] = static_cast<char>(i);
    auto r = HttpRequestTo(tracker_.port(), "GET", AnnounceTarget(flood, hash, PeerId(1), 6881));
    ASSERT_EQ(r.status, 200) << r.raw;
    if (r.body.find("14:failure reason") != std::string::npos) ++refused;
  }
  EXPECT_EQ(refused, 38);
  auto mine =
      HttpRequestTo(tracker_.port(), "GET", AnnounceTarget(honest, Hash('h'), PeerId(0), 7000));
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(mine.body.find("failure reason"), std::string::npos) << mine.body;
  EXPECT_NE(mine.body.find("10:incompletei3e"), std::string::npos) << mine.body;
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("flotilla_refusals_total{kind=\"announce_device_peers\"} 38"),
            std::string::npos)
      << metrics;
  // The log says so without a line per refusal.
  const std::string log = tracker_.Log();
  size_t lines = 0;
  for (size_t at = 0; (at = log.find("refused (announce_device_peers)", at)) != std::string::npos;
       ++at) {
    ++lines;
  }
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, 3u);
}

TEST_F(TrackerAbuseTest, ADeviceBeyondItsRequestBudgetIsRefusedAlone) {
  Start(R"({"device_request_burst": 5, "device_requests_per_minute": 1})");
  auto busy = EnrolDevice(tracker_.port(), "busy");
  auto calm = EnrolDevice(tracker_.port(), "calm");
  auto announce = [&](const EnrolledDevice& d) {
    return HttpRequestTo(tracker_.port(), "GET", AnnounceTarget(d, Hash('b'), PeerId(1), 6881));
  };
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(announce(busy).body.find("failure reason"), std::string::npos) << i;
  }
  auto refused = announce(busy);
  EXPECT_EQ(refused.status, 200);
  EXPECT_NE(refused.body.find("too many announces"), std::string::npos) << refused.body;
  tracker::TrackerClient client(tracker_.url());
  tracker::DeviceReport report{"web", "r1", "idle", 0, 0, 0, 0, "unknown", {}};
  EXPECT_FALSE(client.Report(busy, report).ok());
  EXPECT_EQ(announce(calm).body.find("failure reason"), std::string::npos);
  EXPECT_TRUE(client.Report(calm, report).ok());
}

TEST_F(TrackerAbuseTest, EnrolmentsAreRateLimitedAndTheFleetCapped) {
  Start(R"({"enrol_burst": 3, "enrol_per_minute": 1, "max_devices": 4})");
  tracker::TrackerClient client(tracker_.url());
  auto enrol = [&](const std::string& name) {
    return client.Enrol({TrackerProcess::FleetToken(), name, ""}).status();
  };
  for (const char* name : {"d1", "d2", "d3"}) ASSERT_TRUE(enrol(name).ok()) << name;
  const Status limited = enrol("d4");
  EXPECT_FALSE(limited.ok());
  EXPECT_NE(limited.message().find("too many enrolments"), std::string::npos) << limited.ToString();
  tracker_.Stop();
  // A fleet at its cap refuses any enrolment, whatever the rate.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json", R"({"max_devices": 3})").ok());
  ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", {"--config", dir_ + "/config.json"}))
      << tracker_.Log();
  tracker::TrackerClient again(tracker_.url());
  const Status capped = again.Enrol({TrackerProcess::FleetToken(), "d5", ""}).status();
  EXPECT_EQ(capped.code(), StatusCode::kPermissionDenied) << capped.ToString();
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("flotilla_refusals_total{kind=\"enrol_cap\"} 1"), std::string::npos)
      << metrics;
}

TEST_F(TrackerAbuseTest, ThreeHundredDevicesBehindOneAddressAreAllServed) {
  Start("{}");
  std::vector<EnrolledDevice> devices;
  for (int i = 0; i < 300; ++i) {
    devices.push_back(EnrolDevice(tracker_.port(), "nat-" + std::to_string(i), "cgnat"));
    ASSERT_FALSE(devices.back().passkey.empty()) << i;
  }
  // Each device announces twice from one address, 30 at a time.
  std::atomic<int> served = 0, next = 0;
  std::vector<std::thread> workers;
  for (int w = 0; w < 30; ++w) {
    workers.emplace_back([&] {
      for (int i; (i = next++) < 600;) {
        auto r = GetFrom("127.0.0.9", tracker_.port(),
                         AnnounceTarget(devices[i % 300], Hash('n'), PeerId(i % 300), 6881));
        if (r.status == 200 && r.body.find("failure reason") == std::string::npos) ++served;
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(served, 600);
  auto last =
      GetFrom("127.0.0.9", tracker_.port(), AnnounceTarget(devices[0], Hash('n'), PeerId(0), 6881));
  EXPECT_NE(last.body.find("10:incompletei300e"), std::string::npos) << last.body;
}

TEST_F(TrackerAbuseTest, SlowConnectionsFromOneAddressLeaveOthersServed) {
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 1400) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 4096);
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  ASSERT_GE(files.rlim_cur, 1400u) << "the test needs 1,100 sockets";
  Start(R"({"read_timeout_s": 30})");
  // 1,100 connections from 127.0.0.66, each sending half a request head and
  // then nothing (slowloris) within the read deadline.
  std::vector<int> slow;
  for (int i = 0; i < 1100; ++i) {
    int fd = ConnectFrom("127.0.0.66", tracker_.port());
    ASSERT_GE(fd, 0) << i;
    ::send(fd, "GET /healthz HTTP/1.1\r\nX-Slow: ", 31, MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(300ms);  // let the server accept them all
  // Another address is answered at once; so is a new client at the same one.
  for (const char* source : {"127.0.0.2", "127.0.0.66"}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = GetFrom(source, tracker_.port(), "/healthz");
    EXPECT_EQ(r.status, 200) << source;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << source;
  }
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("flotilla_refusals_total{kind=\"connection_per_address_evicted\"}"),
            std::string::npos)
      << metrics;
  for (int fd : slow) ::close(fd);
}

// One request on an open connection, its answer read up to its
// Content-Length (a 204 has none); status 0 when the server closed the connection instead.
HttpResponse Exchange(int fd, const std::string& request) {
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[16384];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 5000) > 0) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
    HttpResponse r = ParseResponse(raw);
    auto length = r.headers.find("content-length");
    if (r.status == 204 || (r.status != 0 && length != r.headers.end() &&
                            r.body.size() >= std::stoul(length->second))) {
      return r;
    }
  }
  return ParseResponse(raw);
}

// True when the server closes `fd` (end of stream or reset) within `timeout`.
bool ClosedByServer(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

TEST_F(TrackerAbuseTest, ADeviceOverItsConnectionCapLosesItsIdlestConnection) {
  Start(R"({"max_connections_per_device": 3})");
  auto greedy = EnrolDevice(tracker_.port(), "greedy", "shop");
  auto other = EnrolDevice(tracker_.port(), "other", "home");
  ASSERT_FALSE(greedy.passkey.empty());
  ASSERT_FALSE(other.passkey.empty());
  // Kept-alive requests (HTTP/1.1 without Connection: close).
  auto announce = [&](const EnrolledDevice& d, int peer) {
    return "GET " + AnnounceTarget(d, Hash('k'), PeerId(peer), 6000 + peer) +
           " HTTP/1.1\r\nHost: t\r\n\r\n";
  };
  const std::string report_body =
      tracker::DeviceReportToJson({"web", "r1", "idle", 0, 0, 0, 0, "unknown", {}}).dump();
  const std::string report = "POST /api/v1/devices/" + greedy.device_id +
                             "/report HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                             greedy.credential + "\r\nContent-Type: application/json\r\n" +
                             "Content-Length: " + std::to_string(report_body.size()) + "\r\n\r\n" +
                             report_body;
  auto answered = [](const HttpResponse& r) {
    return (r.status == 200 && r.body.find("failure reason") == std::string::npos) ||
           r.status == 204;
  };
  // The greedy device holds three connections, each from its own address
  // (the per-address cap plays no part), the other device one.
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(ConnectFrom("127.0.0." + std::to_string(31 + i), tracker_.port()));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(answered(Exchange(fds.back(), announce(greedy, i)))) << i;
    std::this_thread::sleep_for(20ms);  // distinct waiting times: fds[0] waits longest
  }
  const int other_fd = ConnectFrom("127.0.0.40", tracker_.port());
  ASSERT_TRUE(answered(Exchange(other_fd, announce(other, 9))));
  // A fourth is answered, and the greedy device's connection that has
  // waited longest is closed; the rest go on.
  fds.push_back(ConnectFrom("127.0.0.34", tracker_.port()));
  ASSERT_TRUE(answered(Exchange(fds[3], announce(greedy, 3))));
  EXPECT_TRUE(ClosedByServer(fds[0], 5s));
  for (int i : {1, 2, 3}) EXPECT_TRUE(answered(Exchange(fds[i], announce(greedy, i)))) << i;
  EXPECT_TRUE(answered(Exchange(other_fd, announce(other, 9))));
  // A report authenticates by credential, and counts the same: fds[1] has
  // now waited longest.
  fds.push_back(ConnectFrom("127.0.0.35", tracker_.port()));
  ASSERT_TRUE(answered(Exchange(fds[4], report)));
  EXPECT_TRUE(ClosedByServer(fds[1], 5s));
  // Requests that close their connection after the answer (libtorrent's
  // announces do) hold nothing: none of the three kept connections goes.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(answered(GetFrom("127.0.0.36", tracker_.port(),
                                 AnnounceTarget(greedy, Hash('k'), PeerId(2), 6002))));
  }
  for (int i : {2, 3, 4}) {
    EXPECT_TRUE(answered(Exchange(fds[i], i == 4 ? report : announce(greedy, i)))) << i;
  }
  EXPECT_TRUE(answered(Exchange(other_fd, announce(other, 9))));
  // A fleet metadata request authenticates by credential too: fds[2] has
  // now waited longest.
  fds.push_back(ConnectFrom("127.0.0.37", tracker_.port()));
  const HttpResponse fleet = Exchange(fds[5], "GET /fleet/devices/" + greedy.device_id +
                                                  "/metadata/timestamp.json HTTP/1.1\r\nHost: t\r\n"
                                                  "Authorization: Bearer " +
                                                  greedy.credential + "\r\n\r\n");
  EXPECT_EQ(fleet.status, 404) << "no fleet document yet";
  EXPECT_TRUE(ClosedByServer(fds[2], 5s));
  for (int i : {3, 4}) {
    EXPECT_TRUE(answered(Exchange(fds[i], i == 4 ? report : announce(greedy, i)))) << i;
  }

  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("flotilla_refusals_total{kind=\"connection_per_identity_evicted\"} 3"),
            std::string::npos)
      << metrics;
  EXPECT_NE(tracker_.Log().find("refused (connection_per_identity_evicted): connection of " +
                                greedy.device_id),
            std::string::npos)
      << tracker_.Log();
  for (int fd : fds) ::close(fd);
  ::close(other_fd);
}

TEST_F(TrackerAbuseTest, APeerReportedFromTwoSitesIsNoLongerHandedOut) {
  Start("{}");
  tracker::TrackerClient client(tracker_.url());
  auto bad = EnrolDevice(tracker_.port(), "bad", "elsewhere");
  auto good = EnrolDevice(tracker_.port(), "good", "elsewhere");
  auto a = EnrolDevice(tracker_.port(), "pi-a", "site-a");
  auto a2 = EnrolDevice(tracker_.port(), "pi-a2", "site-a");
  auto b = EnrolDevice(tracker_.port(), "pi-b", "site-b");
  auto c = EnrolDevice(tracker_.port(), "pi-c", "site-c");
  const std::string hash = Hash('r');
  ASSERT_EQ(
      GetFrom("127.0.0.5", tracker_.port(), AnnounceTarget(bad, hash, PeerId(1), 6001)).status,
      200);
  ASSERT_EQ(
      GetFrom("127.0.0.6", tracker_.port(), AnnounceTarget(good, hash, PeerId(2), 6002)).status,
      200);
  auto listed = [&] {
    return GetFrom("127.0.0.7", tracker_.port(), AnnounceTarget(c, hash, PeerId(3), 6003)).body;
  };
  ASSERT_NE(listed().find("ip9:127.0.0.5"), std::string::npos);

  tracker::DeviceReport report{"web", "r1", "downloading", 1, 2, 0, 0, "unknown", {}};
  std::string swarm_hex;
  for (size_t i = 0; i < hash.size(); ++i) swarm_hex += "72";  // hex of 'r'
  report.bad_peers = {{swarm_hex, "127.0.0.5", 6001, 2}};
  // Two devices of one site: the peer stays listed.
  ASSERT_TRUE(client.Report(a, report).ok());
  ASSERT_TRUE(client.Report(a2, report).ok());
  EXPECT_NE(listed().find("ip9:127.0.0.5"), std::string::npos) << "one site alone does not delist";
  // A report naming the tracker itself (the web seed) changes nothing.
  tracker::DeviceReport origin = report;
  origin.bad_peers = {{swarm_hex, "127.0.0.1", static_cast<uint16_t>(tracker_.port()), 9}};
  ASSERT_TRUE(client.Report(b, origin).ok());
  // A second site: delisted; the honest peer is still there.
  ASSERT_TRUE(client.Report(b, report).ok());
  const std::string after = listed();
  EXPECT_EQ(after.find("ip9:127.0.0.5"), std::string::npos) << after;
  EXPECT_NE(after.find("ip9:127.0.0.6"), std::string::npos) << after;
}

}  // namespace
}  // namespace flotilla::testing
