// TorrentFetcher through its API, several fetchers in this process bound to
// their own loopback addresses (libtorrent sessions do not share state):
// rate limits on loopback, restart without traffic, Forget, wrong torrents.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/digest.h"
#include "core/file_io.h"
#include "node/transfer/torrent_fetcher.h"
#include "tests/transfer/transfer_fixture.h"

namespace flotilla::testing {
namespace {

using node::FetchProgress;
using node::FetchState;
using node::TorrentFetcher;
using node::TorrentFetcherOptions;
using std::chrono::milliseconds;
using std::chrono::seconds;

class FetcherApiTest : public TransferTest {
 protected:
  TorrentFetcherOptions Options(const std::string& name, const std::string& ip) {
    TorrentFetcherOptions o;
    o.data_dir = DataDir(name);
    o.listen_interfaces = ip + ":0";
    o.enable_lsd = false;
    o.web_seed_url = tracker_.url();
    o.origin.stall_seconds = 0;
    o.origin.stagger_seconds = 0;
    const std::string torrents = repo_ + "/torrents";
    o.fetch_torrent = [torrents](const node::ArtifactRequest& r) {
      return ReadTextFileBounded(torrents + "/" + r.sha256.Hex() + ".torrent", 8 << 20);
    };
    return o;
  }

  // Polls until `fetcher` reports `state` for `a`, or `timeout`.
  FetchProgress WaitState(TorrentFetcher& fetcher, const TestArtifact& a, FetchState state,
                          seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    FetchProgress p;
    while (std::chrono::steady_clock::now() < deadline) {
      p = fetcher.Progress(a.request.sha256).value_or(FetchProgress{});
      if (p.state == state) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return p;
  }

  // Payload bytes per second `fetcher` received (it fetches only `a`) from
  // its first byte until `a` completes: libtorrent's limiter is bursty over
  // a second or two, the whole transfer is not.
  double MeasureRate(TorrentFetcher& fetcher, const TestArtifact& a) {
    for (int i = 0; i < 200 && fetcher.GetCounters().payload_received == 0; ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t b0 = fetcher.GetCounters().payload_received;
    EXPECT_EQ(WaitState(fetcher, a, FetchState::kComplete, seconds(60)).state,
              FetchState::kComplete);
    const uint64_t b1 = fetcher.GetCounters().payload_received;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(b1 - b0) / elapsed;
  }
};

TEST_F(FetcherApiTest, RateLimitsBindOnLoopbackAndChangeAtRunTime) {
  const TestArtifact a = AddArtifact(8 << 20, 32, 21);
  auto seeder = TorrentFetcher::Create(Options("s", "127.77.4.2"));
  ASSERT_TRUE(seeder.ok()) << seeder.status().ToString();
  ASSERT_TRUE((*seeder)->Want(a.request).ok());
  ASSERT_EQ(WaitState(**seeder, a, FetchState::kComplete, seconds(30)).state,
            FetchState::kComplete);
  const std::string seeder_peer =
      "127.77.4.2:" + std::to_string((*seeder)->GetCounters().listen_port);

  // A download limit set at run time, on a node created without one.
  auto options = Options("d", "127.77.4.3");
  options.origin.disabled = true;
  auto downloader = TorrentFetcher::Create(options);
  ASSERT_TRUE(downloader.ok());
  constexpr double kDown = 1 << 20;
  ASSERT_TRUE((*downloader)->SetRateLimits(static_cast<int>(kDown), 0).ok());
  ASSERT_TRUE((*downloader)->AddPeer(seeder_peer).ok());
  ASSERT_TRUE((*downloader)->Want(a.request).ok());
  const double down = MeasureRate(**downloader, a);
  // libtorrent 2.0.8's download limiter undershoots with one peer (0.75-0.8x
  // measured here, docs/transfer.md); it must bind and never exceed the limit.
  EXPECT_LE(down, 1.15 * kDown) << "download rate " << down;
  EXPECT_GE(down, 0.7 * kDown) << "download rate " << down;
  std::printf("download limit %.0f: measured %.0f B/s\n", kDown, down);

  // Upload limit on the seeder binds for a loopback peer too.
  constexpr double kUp = 768 << 10;
  ASSERT_TRUE((*seeder)->SetRateLimits(0, static_cast<int>(kUp)).ok());
  auto options_e = Options("e", "127.77.4.4");
  options_e.origin.disabled = true;
  auto second = TorrentFetcher::Create(options_e);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)->AddPeer(seeder_peer).ok());
  ASSERT_TRUE((*second)->Want(a.request).ok());
  const double up = MeasureRate(**second, a);
  EXPECT_NEAR(up, kUp, 0.15 * kUp) << "upload-limited rate " << up;
  std::printf("upload limit %.0f: measured %.0f B/s\n", kUp, up);
  EXPECT_EQ((*second)->Progress(a.request.sha256)->bytes_from_origin, 0u);
}

TEST_F(FetcherApiTest, RestartSeedsFromResumeDataAndForgetRemovesEverything) {
  const TestArtifact a = AddArtifact((1 << 20) + 123, 16, 22);
  {
    auto fetcher = TorrentFetcher::Create(Options("r", "127.77.5.2"));
    ASSERT_TRUE(fetcher.ok()) << fetcher.status().ToString();
    ASSERT_TRUE((*fetcher)->Want(a.request).ok());
    ASSERT_TRUE((*fetcher)->Want(a.request).ok());  // idempotent
    auto p = WaitState(**fetcher, a, FetchState::kComplete, seconds(30));
    ASSERT_EQ(p.state, FetchState::kComplete) << p.error;
    EXPECT_EQ(p.bytes_verified, a.request.length);
    EXPECT_EQ(p.bytes_from_origin, a.request.length);
    auto path = (*fetcher)->CompletedPath(a.request.sha256);
    ASSERT_TRUE(path.ok());
    EXPECT_EQ(HashFile(*path)->Hex(), a.hex);
    EXPECT_EQ(*path, DataDir("r") + "/data/" + a.hex + "/" + a.hex);
  }
  EXPECT_TRUE(std::filesystem::exists(DataDir("r") + "/resume/" + a.hex + ".resume"));
  EXPECT_FALSE(std::filesystem::exists(DataDir("r") + "/session.dirty"));
  const uint64_t served = TrackerBytesServed(a.hex);

  auto again = TorrentFetcher::Create(Options("r", "127.77.5.2"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Progress(a.request.sha256).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE((*again)->Want(a.request).ok());
  auto p = WaitState(**again, a, FetchState::kComplete, seconds(10));
  ASSERT_EQ(p.state, FetchState::kComplete);
  EXPECT_EQ(p.bytes_from_origin + p.bytes_from_peers, 0u);
  EXPECT_EQ(TrackerBytesServed(a.hex), served);

  ASSERT_TRUE((*again)->Forget(a.request.sha256).ok());
  EXPECT_EQ((*again)->Progress(a.request.sha256).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE((*again)->CompletedPath(a.request.sha256).ok());
  for (int i = 0; i < 50 && std::filesystem::exists(DataDir("r") + "/data/" + a.hex); ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_FALSE(std::filesystem::exists(DataDir("r") + "/data/" + a.hex));
  EXPECT_FALSE(std::filesystem::exists(DataDir("r") + "/resume/" + a.hex + ".resume"));
  EXPECT_FALSE(std::filesystem::exists(DataDir("r") + "/torrents/" + a.hex + ".torrent"));
  EXPECT_TRUE((*again)->Forget(a.request.sha256).ok());  // unknown: not an error
}

TEST_F(FetcherApiTest, TorrentOfAnotherArtifactIsRefused) {
  const TestArtifact a = AddArtifact(100000, 16, 23);
  const TestArtifact b = AddArtifact(100000, 16, 24);
  auto options = Options("w", "127.77.6.2");
  const std::string torrents = repo_ + "/torrents";
  const std::string other = b.hex;
  options.fetch_torrent = [torrents, other](const node::ArtifactRequest&) {
    return ReadTextFileBounded(torrents + "/" + other + ".torrent", 8 << 20);
  };
  auto fetcher = TorrentFetcher::Create(options);
  ASSERT_TRUE(fetcher.ok());
  Status st = (*fetcher)->Want(a.request);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("not the signed one"), std::string::npos) << st.ToString();
  EXPECT_EQ((*fetcher)->Progress(a.request.sha256).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(DataDir("w") + "/torrents/" + a.hex + ".torrent"));
  EXPECT_EQ(TrackerBytesServed(a.hex), 0u);
}

}  // namespace
}  // namespace flotilla::testing
