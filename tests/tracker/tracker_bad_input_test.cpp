// Hostile and broken clients: each gets the right 4xx or is dropped by a
// timeout, and the server keeps serving everyone else.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <thread>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

class TrackerBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("tracker-bad");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(tracker_.Start(dir_, repo_, {"--read-timeout", "2"})) << tracker_.Log();
  }
  void TearDown() override {
    EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/healthz").status, 200)
        << "the server must keep serving others";
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }
  int Status(const std::string& raw_request) {
    return ParseResponse(SendRaw(tracker_.port(), raw_request)).status;
  }
  std::string dir_, repo_;
  TrackerProcess tracker_;
};

TEST_F(TrackerBadInputTest, MalformedHttpGets400) {
  EXPECT_EQ(Status("GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET /healthz HTTP/9.9\r\nConnection: close\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET http://elsewhere/healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(Status("DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405);
}

TEST_F(TrackerBadInputTest, OversizedHeadersGet431) {
  const std::string big =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Status(big), 431);
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 1000; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  EXPECT_EQ(Status(many + "\r\n"), 431);
}

TEST_F(TrackerBadInputTest, OversizedBodiesGet413BeforeTheyAreSent) {
  // The declared length alone is refused: the client has not sent a byte of it.
  EXPECT_EQ(Status("POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"),
            413);
  std::string chunked =
      "POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) chunked += "1000\r\n" + std::string(4096, 'a') + "\r\n";
  EXPECT_EQ(Status(chunked + "0\r\n\r\n"), 413);
}

TEST_F(TrackerBadInputTest, SlowlorisClientsAreDroppedWhileOthersAreServed) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(tracker_.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const auto start = std::chrono::steady_clock::now();
  // Drip one header byte every 200 ms, as slowloris does, for up to 10 s.
  auto dripper = std::async(std::launch::async, [fd] {
    const std::string request = "GET /healthz HTTP/1.1\r\nX-Slow: " + std::string(100, 'z');
    for (char c : request) {
      if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) return true;  // the server closed on us
      std::this_thread::sleep_for(200ms);
    }
    return false;
  });
  // Meanwhile other clients are served promptly.
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/healthz").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  }
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);  // returns when the server drops us
  const auto dropped_after = std::chrono::steady_clock::now() - start;
  EXPECT_LE(n, 0) << "a slow client gets no response, just a closed connection";
  EXPECT_GE(dropped_after, 1500ms);
  EXPECT_LT(dropped_after, 5s) << "dropped by the 2 s read timeout";
  ::shutdown(fd, SHUT_RDWR);
  dripper.wait();
  ::close(fd);

  // A client that connects and sends nothing is dropped too.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(SendRaw(tracker_.port(), "", 10s), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(TrackerBadInputTest, BogusAnnounceParametersGetAFailureReason) {
  auto d = EnrolDevice(tracker_.port(), "pi-1");
  ASSERT_FALSE(d.passkey.empty());
  const std::string base = "/announce/" + d.passkey + "?";
  const std::string hash = "info_hash=" + PercentEncodeAll(std::string(20, 'h'));
  const std::string peer = "&peer_id=" + PercentEncodeAll(std::string(20, 'p'));
  for (const std::string& q :
       {std::string(""), hash + peer, hash + peer + "&port=0", hash + peer + "&port=65536",
        hash + peer + "&port=x", "info_hash=short" + peer + "&port=1", hash + "&peer_id=1&port=1",
        hash + peer + "&port=1&event=bogus", hash + peer + "&port=1&left=-1",
        hash + peer + "&port=1&port=2", hash + peer + "&port=1&ip=999.1.1.1",
        hash + peer + "&port=1&site=a/b", hash + "%zz" + peer + "&port=1"}) {
    auto r = HttpRequestTo(tracker_.port(), "GET", base + q);
    EXPECT_EQ(r.status, 200) << q;
    EXPECT_NE(r.body.find("14:failure reason"), std::string::npos) << q;
  }
}

TEST_F(TrackerBadInputTest, RangesOutOfBoundsGet416) {
  const std::string content(1000, 'r');
  const std::string hex = Digest::Of(content).Hex();
  ASSERT_TRUE(CreateDirectories(repo_ + "/artifacts").ok());
  ASSERT_TRUE(WriteFileAtomic(repo_ + "/artifacts/" + hex, content).ok());
  for (const char* range : {"bytes=1000-", "bytes=5000-6000", "bytes=10-5", "bytes=0-1,5-9",
                            "bytes=-0", "pages=1-2", "bytes=abc"}) {
    auto r = HttpRequestTo(tracker_.port(), "GET", "/artifacts/" + hex,
                           {std::string("Range: ") + range});
    EXPECT_EQ(r.status, 416) << range;
    EXPECT_EQ(r.headers["content-range"], "bytes */1000") << range;
  }
  auto ok = HttpRequestTo(tracker_.port(), "GET", "/artifacts/" + hex, {"Range: bytes=999-"});
  EXPECT_EQ(ok.status, 206);
  EXPECT_EQ(ok.body, "r");
}

TEST_F(TrackerBadInputTest, PathTraversalNeverLeavesTheRepository) {
  ASSERT_TRUE(CreateDirectories(repo_ + "/metadata").ok());
  ASSERT_TRUE(CreateDirectories(repo_ + "/artifacts").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/secret.json", "SECRET").ok());
  ASSERT_TRUE(WriteFileAtomic(repo_ + "/metadata/.hidden", "SECRET").ok());
  std::filesystem::create_symlink(dir_ + "/secret.json", repo_ + "/metadata/link.json");
  const std::string fake_hex(64, 'a');
  std::filesystem::create_symlink(dir_ + "/secret.json", repo_ + "/artifacts/" + fake_hex);
  ASSERT_TRUE(CreateDirectories(repo_ + "/torrents").ok());
  std::filesystem::create_symlink(dir_ + "/secret.json",
                                  repo_ + "/torrents/" + fake_hex + ".torrent");
  for (const std::string& target :
       {std::string("/metadata/../../secret.json"), std::string("/metadata/..%2F..%2Fsecret.json"),
        std::string("/metadata/.hidden"), std::string("/metadata/link.json"),
        std::string("/metadata/%2e%2e/tracker.db"), std::string("/metadata//etc/passwd"),
        std::string("/artifacts/../tracker.db"), "/artifacts/" + fake_hex,
        "/artifacts/" + fake_hex + "/x", std::string("/artifacts/..%2Ftracker.db"),
        std::string("/torrents/../tracker.db"), std::string("/torrents/..%2F..%2Fsecret.json"),
        "/metadata/" + std::string(300, 'a')}) {
    auto r = HttpRequestTo(tracker_.port(), "GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << target;
    EXPECT_EQ(r.body.find("SQLite"), std::string::npos) << target;
  }
}

TEST(TrackerConnectionCapTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  const std::string dir = MakeTempDir("tracker-cap");
  ASSERT_TRUE(WriteFileAtomic(dir + "/cap.json", R"({"max_connections":4})").ok());
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir, dir + "/repo", {"--config", dir + "/cap.json"})) << tracker.Log();
  auto connect_idle = [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(tracker.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  };
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(connect_idle());
  std::this_thread::sleep_for(300ms);  // let the server accept them
  const auto t0 = std::chrono::steady_clock::now();
  auto refused = HttpRequestTo(tracker.port(), "GET", "/healthz");
  EXPECT_EQ(refused.status, 0) << "the fifth connection is closed without an answer";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  for (int fd : idle) ::close(fd);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(HttpRequestTo(tracker.port(), "GET", "/healthz").status, 200);
  tracker.Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
