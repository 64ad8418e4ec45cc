// Interop: a BitTorrent client that is not flotilla (Debian's
// python3-libtorrent) downloads an artifact using only the tracker's
// .torrent, its announce and its web seed; the bytes must match the SHA-256.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

class TrackerInteropTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("tracker-interop"); }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }
  void Download(size_t size, int piece_kib) {
    const std::string repo = dir_ + "/repo";
    ASSERT_TRUE(tracker_.Start(dir_, repo)) << tracker_.Log();
    // Not a multiple of the piece size: libtorrent 2.0.8 then treats the
    // v2 torrent as multi-file and appends the name to the web seed URL.
    std::string content(size, '\0');
    uint32_t x = 12345;
    for (auto& c : content) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/artifact.in", content).ok());
    auto add = RunShell(BinaryPath("flotilla-tracker") + " artifact add --repository " + repo +
                        " --public-url " + tracker_.url() + " --piece-kib " +
                        std::to_string(piece_kib) + " " + dir_ + "/artifact.in");
    ASSERT_EQ(add.exit_code, 0) << add.output;
    const std::string hex = Digest::Of(content).Hex();

    auto device = EnrolDevice(tracker_.port(), "python-peer");
    ASSERT_FALSE(device.passkey.empty());
    auto torrent = HttpRequestTo(tracker_.port(), "GET",
                                 "/torrents/" + hex + ".torrent?passkey=" + device.passkey);
    ASSERT_EQ(torrent.status, 200);
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/a.torrent", torrent.body).ok());

    std::filesystem::create_directories(dir_ + "/download");
    auto run = RunShell("/usr/bin/python3 " + std::string(FLOTILLA_SOURCE_DIR) +
                        "/tests/tracker/interop_download.py " + dir_ + "/a.torrent " + dir_ +
                        "/download 60");
    ASSERT_EQ(run.exit_code, 0) << run.output << tracker_.Log();
    EXPECT_NE(run.output.find("TRACKER_REPLY"), std::string::npos) << run.output;
    auto got = HashFile(dir_ + "/download/" + hex);
    ASSERT_TRUE(got.ok()) << got.status().ToString() << "\n" << run.output;
    EXPECT_EQ(got->Hex(), hex);

    auto metrics = HttpRequestTo(tracker_.port(), "GET", "/metrics").body;
    EXPECT_NE(metrics.find("flotilla_announces_total{result=\"ok\"}"), std::string::npos);
    EXPECT_NE(metrics.find("flotilla_artifact_bytes_served_total{artifact=\"sha256:" + hex),
              std::string::npos)
        << metrics;
  }
  std::string dir_;
  TrackerProcess tracker_;
};

TEST_F(TrackerInteropTest, PythonLibtorrentDownloadsThroughTrackerAndWebSeed) {
  Download(3 * 1024 * 1024 + 12345, 64);
}

TEST_F(TrackerInteropTest, PieceAlignedArtifactDownloadsToo) { Download(1024 * 1024, 256); }

}  // namespace
}  // namespace flotilla::testing
