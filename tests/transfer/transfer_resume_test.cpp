// Interrupted transfers finish without downloading verified pieces again: a
// node killed with SIGKILL, one stopped with SIGTERM, and one whose link is
// cut by a firewall rule. Each test runs in a network namespace of its own
// (made here, gone when the test process exits), so its iptables rules touch
// nothing else. The payload a node received is measured at the sender (the
// seeder's upload counter): bytes that were in flight when a node died count.
#include <gtest/gtest.h>
#include <sched.h>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/read_resume_data.hpp>
#include <thread>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"
#include "tests/transfer/transfer_fixture.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

class TransferResumeTest : public TransferTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
    auto up = RunShell("ip link set lo up 2>&1");
    ASSERT_EQ(up.exit_code, 0) << up.output;
    TransferTest::SetUp();
    artifact_ = AddArtifact(4 << 20, 32, 31);
    auto args = NodeArgs("s", kSeederIp, artifact_);
    args.insert(args.end(), {"--stall", "0", "--up", std::to_string(kSeederRate), "--no-lsd"});
    ASSERT_TRUE(seeder_.Start(dir_ + "/s.log", args)) << seeder_.Log();
    ASSERT_TRUE(seeder_.WaitFor(ArtifactComplete, seconds(30))) << seeder_.Log();
    ASSERT_EQ(ArtifactField(seeder_.Last(), "uploaded"), 0u);
  }
  void TearDown() override {
    seeder_.Stop();
    TransferTest::TearDown();
  }

  // The downloader: peers by configuration only, no origin.
  std::vector<std::string> DownloaderArgs() {
    return {"--data",     DataDir("b"),
            "--listen",   std::string(kNodeIp) + ":0",
            "--torrents", repo_ + "/torrents",
            "--no-lsd",   "--no-origin",
            "--peer",     std::string(kSeederIp) + ":" + std::to_string(seeder_.port()),
            "--artifact", artifact_.Arg()};
  }
  bool WaitVerified(FetchProcess& node, uint64_t bytes) {
    return node.WaitFor(
        [&](const nlohmann::json& l) { return ArtifactField(l, "verified") >= bytes; },
        seconds(30));
  }
  // The bytes of the pieces the downloader's resume checkpoint names: a
  // restart trusts them and fetches the others again.
  uint64_t CheckpointedBytes() {
    auto data = ReadFileBounded(DataDir("b") + "/resume/" + artifact_.hex + ".resume", 1 << 20);
    if (!data.ok()) return 0;
    lt::error_code ec;
    const lt::add_torrent_params params = lt::read_resume_data(
        {reinterpret_cast<const char*>(data->data()), static_cast<int>(data->size())}, ec);
    if (ec) return 0;
    uint64_t have = 0;
    for (int i = 0; i < params.have_pieces.size(); ++i) {
      if (params.have_pieces[lt::piece_index_t(i)]) ++have;
    }
    return std::min(have * static_cast<uint64_t>(artifact_.piece_size), artifact_.request.length);
  }
  // What the seeder sent, once the downloader has completed or stopped.
  uint64_t SeederUploaded() {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return ArtifactField(seeder_.Last(), "uploaded");
  }
  void ExpectComplete() {
    auto got = HashFile(DataDir("b") + "/data/" + artifact_.hex + "/" + artifact_.hex);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->Hex(), artifact_.hex);
  }

  static constexpr const char* kSeederIp = "127.77.8.2";
  static constexpr const char* kNodeIp = "127.77.8.3";
  static constexpr int kSeederRate = 1 << 20;
  TestArtifact artifact_;
  FetchProcess seeder_;
};

TEST_F(TransferResumeTest, KilledAndStoppedNodeContinuesWithoutDownloadingAgain) {
  const uint64_t length = artifact_.request.length;
  FetchProcess node;
  ASSERT_TRUE(node.Start(dir_ + "/b.log", DownloaderArgs())) << node.Log();
  ASSERT_TRUE(WaitVerified(node, length / 3)) << node.Log();
  node.Kill();  // power-cut-like: no resume data saved at exit
  const uint64_t after_kill = ArtifactField(node.Last(), "verified");
  // The periodic checkpoint (every 2 s) before the kill is what survives.
  const uint64_t sent_before_kill = SeederUploaded();
  const uint64_t checkpointed = CheckpointedBytes();

  ASSERT_TRUE(node.Start(dir_ + "/b.log", DownloaderArgs())) << node.Log();
  ASSERT_TRUE(WaitVerified(node, 2 * length / 3)) << node.Log();
  node.Stop();  // clean: resume data saved
  ASSERT_TRUE(node.Start(dir_ + "/b.log", DownloaderArgs())) << node.Log();
  ASSERT_TRUE(node.WaitFor(ArtifactComplete, seconds(30))) << node.Log();
  ExpectComplete();
  // The last run fetched only what the first two had not verified.
  EXPECT_LT(ArtifactField(node.Last(), "from_peers"), length - after_kill);
  // Fetched twice: what the killed node had received past its last
  // checkpoint, and at most a piece in flight at each interruption. The clean
  // stop saved its checkpoint, so nothing it had verified came again.
  const uint64_t sent = SeederUploaded();
  std::printf("seeder sent %llu for %llu: %llu before the kill, %llu of them checkpointed\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(length),
              static_cast<unsigned long long>(sent_before_kill),
              static_cast<unsigned long long>(checkpointed));
  EXPECT_GE(sent, length);
  EXPECT_LE(sent, length + (sent_before_kill - std::min(sent_before_kill, checkpointed)) +
                      2 * static_cast<uint64_t>(artifact_.piece_size))
      << "seeder sent " << sent << " for " << length << "; " << sent_before_kill
      << " before the kill, of which the checkpoint named " << checkpointed;
}

TEST_F(TransferResumeTest, LinkDropMidTransferResumes) {
  const uint64_t length = artifact_.request.length;
  FetchProcess node;
  ASSERT_TRUE(node.Start(dir_ + "/b.log", DownloaderArgs())) << node.Log();
  ASSERT_TRUE(WaitVerified(node, length / 3)) << node.Log();
  const std::string rule = std::string(" INPUT -s ") + kSeederIp + " -d " + kNodeIp + " -j DROP";
  const std::string back = std::string(" INPUT -s ") + kNodeIp + " -d " + kSeederIp + " -j DROP";
  ASSERT_EQ(RunShell("iptables -I" + rule + " && iptables -I" + back).exit_code, 0);
  std::this_thread::sleep_for(seconds(1));
  const uint64_t cut_at = ArtifactField(node.Last(), "verified");
  std::this_thread::sleep_for(seconds(7));
  // Nothing moved while the link was down (a piece in flight may land).
  EXPECT_LE(ArtifactField(node.Last(), "verified"),
            cut_at + static_cast<uint64_t>(artifact_.piece_size));
  ASSERT_EQ(RunShell("iptables -D" + rule + " && iptables -D" + back).exit_code, 0);
  ASSERT_TRUE(node.WaitFor(ArtifactComplete, seconds(60))) << node.Log();
  ExpectComplete();
  const uint64_t sent = SeederUploaded();
  EXPECT_LE(sent, length + static_cast<uint64_t>(artifact_.piece_size))
      << "seeder sent " << sent << " for " << length;
}

}  // namespace
}  // namespace flotilla::testing
