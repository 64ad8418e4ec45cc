// The tracker behind a real haproxy (Debian's), as docs/tracker.md's
// `trusted_proxies` describes: haproxy connects to the tracker from
// 127.0.0.9 with `send-proxy-v2` and health-checks /readyz; devices at
// 127.0.0.55 and .56 go through haproxy and are handed each other's own
// addresses, never the balancer's; a forged PROXY header sent straight to
// the tracker from an address it does not trust is refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

std::string AnnounceTarget(const EnrolledDevice& d, int port) {
  return "/announce/" + d.passkey + "?info_hash=" + PercentEncodeAll(std::string(20, 'p')) +
         "&peer_id=" + PercentEncodeAll("-FL0001-" + d.device_id.substr(0, 12)) +
         "&port=" + std::to_string(port) + "&left=10&compact=0&numwant=50";
}

class TrackerBehindHaproxy : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/sbin/haproxy")) {
      GTEST_FAIL() << "haproxy is not installed: run scripts/setup.sh";
    }
    dir_ = MakeTempDir("tracker-haproxy-");
    ASSERT_TRUE(
        WriteFileAtomic(dir_ + "/config.json", R"({"trusted_proxies": ["127.0.0.9"]})").ok());
    ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", {"--config", dir_ + "/config.json"}))
        << tracker_.Log();
    balancer_port_ = FreePort();
    const std::string config =
        "global\n  maxconn 256\n"
        "defaults\n  mode http\n  timeout connect 5s\n"
        "  timeout client 30s\n  timeout server 30s\n"
        "frontend devices\n  bind 127.0.0.1:" +
        std::to_string(balancer_port_) +
        "\n  default_backend trackers\n"
        "backend trackers\n  option httpchk GET /readyz\n"
        "  server t1 127.0.0.1:" +
        std::to_string(tracker_.port()) +
        " send-proxy-v2 check check-send-proxy inter 500ms"
        " source 127.0.0.9\n";
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/haproxy.cfg", config).ok());
    ASSERT_TRUE(haproxy_.Start({"/usr/sbin/haproxy", "-db", "-f", dir_ + "/haproxy.cfg"},
                               dir_ + "/haproxy.log", dir_ + "/haproxy.err"));
    ASSERT_TRUE(WaitFor(
        [&] { return GetFrom("127.0.0.1", balancer_port_, "/healthz").status == 200; }, 10s))
        << ReadTextFileBounded(dir_ + "/haproxy.err", 1 << 20).value_or("");
  }
  void TearDown() override {
    haproxy_.Stop(5s);
    tracker_.Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  TrackerProcess tracker_;
  ChildProcess haproxy_;
  int balancer_port_ = 0;
};

TEST_F(TrackerBehindHaproxy, DevicesAreHandedEachOthersOwnAddresses) {
  // Enrolled through the balancer; the tracker answers as usual.
  auto a = EnrolDevice(balancer_port_, "screen-a", "shop-1");
  auto b = EnrolDevice(balancer_port_, "screen-b", "shop-1");
  ASSERT_FALSE(a.passkey.empty());
  ASSERT_FALSE(b.passkey.empty());
  ASSERT_EQ(GetFrom("127.0.0.55", balancer_port_, AnnounceTarget(a, 6881)).status, 200);
  auto reply = GetFrom("127.0.0.56", balancer_port_, AnnounceTarget(b, 6882));
  ASSERT_EQ(reply.status, 200) << reply.raw;
  EXPECT_NE(reply.body.find("2:ip10:127.0.0.55"), std::string::npos) << reply.body;
  EXPECT_EQ(reply.body.find("127.0.0.9"), std::string::npos) << reply.body;

  // A PROXY header straight from an address the tracker does not trust is a
  // malformed request, and names nobody.
  const std::string forged = std::string("\r\n\r\n\0\r\nQUIT\n", 12) + "\x21\x11" +
                             std::string("\x00\x0c", 2) + std::string("\x0a\x09\x09\x09", 4) +
                             std::string("\x7f\x00\x00\x01\x1a\xe1\x1a\xe1", 8);
  const std::string get =
      "GET " + AnnounceTarget(a, 6999) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(ParseResponse(SendRaw(tracker_.port(), forged + get)).status, 400);
  reply = GetFrom("127.0.0.56", balancer_port_, AnnounceTarget(b, 6882));
  EXPECT_EQ(reply.body.find("10.9.9.9"), std::string::npos) << reply.body;
  EXPECT_NE(reply.body.find("2:ip10:127.0.0.55"), std::string::npos) << reply.body;
}

}  // namespace
}  // namespace flotilla::testing
