// Swarm behaviour of the torrent fetcher with real processes and sockets:
// origin as last resort, peers first, corrupt peers banned, a tampered
// origin never completing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"
#include "tests/transfer/transfer_fixture.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

// The node's completed file must be exactly the artifact's bytes.
void ExpectFileIs(const std::string& data_dir, const TestArtifact& a) {
  auto got = HashFile(data_dir + "/data/" + a.hex + "/" + a.hex);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->Hex(), a.hex);
  EXPECT_EQ(std::filesystem::file_size(data_dir + "/data/" + a.hex + "/" + a.hex),
            a.request.length);
}

TEST_F(TransferTest, FirstNodeUsesTheOriginAndLaterNodesTakeTheirBytesFromPeers) {
  // Not a multiple of the piece size: 2.0.8's hidden tail pad file.
  const TestArtifact a = AddArtifact((4 << 20) + 10000, 32, 7);
  FetchProcess node_a;
  auto args = NodeArgs("a", "127.77.1.2", a);
  args.insert(args.end(), {"--stall", "1"});
  ASSERT_TRUE(node_a.Start(dir_ + "/a.log", args)) << node_a.Log();
  ASSERT_TRUE(node_a.WaitFor(ArtifactComplete, seconds(30))) << node_a.Log();
  const auto a_done = node_a.Last();
  EXPECT_EQ(ArtifactField(a_done, "from_origin"), a.request.length);
  EXPECT_EQ(ArtifactField(a_done, "from_peers"), 0u);
  ExpectFileIs(DataDir("a"), a);
  const uint64_t served_to_a = TrackerBytesServed(a.hex);
  EXPECT_GE(served_to_a, a.request.length);
  EXPECT_LE(served_to_a, a.request.length + a.piece_size);

  std::vector<std::unique_ptr<FetchProcess>> others;
  for (const char* name : {"b", "c", "d"}) {
    others.push_back(std::make_unique<FetchProcess>());
    auto node_args =
        NodeArgs(name, std::string("127.77.1.") + std::to_string(3 + others.size()), a);
    node_args.insert(node_args.end(), {"--stall", "5"});
    ASSERT_TRUE(others.back()->Start(dir_ + "/" + name + ".log", node_args));
  }
  uint64_t from_peers = 0, from_origin = 0;
  for (auto& node : others) {
    ASSERT_TRUE(node->WaitFor(ArtifactComplete, seconds(60))) << node->Log();
    from_peers += ArtifactField(node->Last(), "from_peers");
    from_origin += ArtifactField(node->Last(), "from_origin");
  }
  for (const char* name : {"b", "c", "d"}) ExpectFileIs(DataDir(name), a);
  // Every payload byte is counted once, to peers or to the origin.
  EXPECT_EQ(from_peers + from_origin, 3 * a.request.length);
  EXPECT_GE(from_peers, 8 * (3 * a.request.length) / 10)
      << "peers " << from_peers << " origin " << from_origin;
  // The tracker served what the nodes counted from the origin (plus at most a
  // piece per node of bytes that were in flight when the origin was detached).
  const uint64_t served_later = TrackerBytesServed(a.hex) - served_to_a;
  EXPECT_GE(served_later, from_origin);
  EXPECT_LE(served_later, from_origin + 3 * static_cast<uint64_t>(a.piece_size));
  // A seeds: it uploaded what the others took from peers, at least in part.
  EXPECT_GT(ArtifactField(node_a.Last(), "uploaded"), 0u);
}

TEST_F(TransferTest, CorruptPeerIsBannedAndTheTransferCompletesTenRunsOfTen) {
  const TestArtifact a = AddArtifact(768 << 10, 16, 11);
  // A good seeder, fed by the origin.
  FetchProcess good;
  auto good_args = NodeArgs("good", "127.77.2.2", a);
  good_args.insert(good_args.end(), {"--stall", "0", "--up", std::to_string(1 << 20)});
  ASSERT_TRUE(good.Start(dir_ + "/good.log", good_args)) << good.Log();
  ASSERT_TRUE(good.WaitFor(ArtifactComplete, seconds(30))) << good.Log();

  // The corrupt peer: every 4 KiB of its copy has a flipped byte.
  std::string bad = a.content;
  for (size_t i = 100; i < bad.size(); i += 4096) bad[i] ^= 0x5a;
  std::filesystem::create_directories(dir_ + "/bad");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad/corrupt.bin", bad).ok());
  const std::string bad_log = dir_ + "/bad.log";
  ChildProcess bad_seed;
  ASSERT_TRUE(bad_seed.Start(
      {TestBinaryPath("flotilla-corrupt-seed"), "--listen", "127.77.2.9:0", "--torrent",
       repo_ + "/torrents/" + a.hex + ".torrent", "--file", dir_ + "/bad/corrupt.bin"},
      bad_log, dir_ + "/bad.err"));
  int bad_port = 0;
  for (int i = 0; i < 100 && bad_port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto text = ReadTextFileBounded(bad_log, 1024);
    if (text.ok() && !text->empty()) {
      bad_port = nlohmann::json::parse(*text, nullptr, false).value("port", 0);
    }
  }
  ASSERT_GT(bad_port, 0);

  int banned_runs = 0;
  for (int run = 0; run < 10; ++run) {
    const std::string name = "v" + std::to_string(run);
    // Peers by configuration only: the corrupt one first, then the good one.
    std::vector<std::string> args = {"--data",     DataDir(name),
                                     "--listen",   "127.77.2.3:0",
                                     "--torrents", repo_ + "/torrents",
                                     "--no-lsd",   "--no-origin",
                                     "--stall",    "2",
                                     "--peer",     "127.77.2.9:" + std::to_string(bad_port),
                                     "--peer",     "127.77.2.2:" + std::to_string(good.port()),
                                     "--artifact", a.Arg()};
    FetchProcess victim;
    ASSERT_TRUE(victim.Start(dir_ + "/" + name + ".log", args)) << victim.Log();
    ASSERT_TRUE(victim.WaitFor(ArtifactComplete, seconds(40))) << "run " << run << victim.Log();
    ExpectFileIs(DataDir(name), a);
    const auto last = victim.Last();
    std::printf("run %d: %s\n", run, last["counters"].dump().c_str());
    EXPECT_GT(last["counters"].value("hash_failures", 0), 0) << "run " << run;
    // Only verified bytes are progress, each counted once, re-adds included;
    // what failed is waste, and the corrupt peer is the one banned.
    const uint64_t counted = ArtifactField(last, "from_peers") + ArtifactField(last, "from_origin");
    EXPECT_EQ(counted, a.request.length) << "run " << run;
    EXPECT_LE(ArtifactField(last, "wasted"), a.request.length + 2 * a.piece_size);
    EXPECT_EQ(last["artifacts"][0]["bad_peers"], nlohmann::json::array({"127.77.2.9"}))
        << "run " << run;
    if (last["counters"].value("banned", 0) > 0) ++banned_runs;
    victim.Stop();
  }
  EXPECT_EQ(banned_runs, 10);
}

TEST_F(TransferTest, ArtifactTamperedOnTheOriginIsNeverComplete) {
  const TestArtifact a = AddArtifact(512 << 10, 16, 13);
  // Flip one byte in the middle of the tracker's copy, after its torrent was made.
  const std::string stored = repo_ + "/artifacts/" + a.hex;
  std::string tampered = a.content;
  tampered[tampered.size() / 2] ^= 1;
  {
    std::filesystem::permissions(stored, std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
    std::ofstream out(stored, std::ios::binary | std::ios::trunc);
    out << tampered;
  }
  FetchProcess node;
  auto args = NodeArgs("t", "127.77.3.2", a);
  // The test stops the process itself; the time limit only bounds a hung run,
  // and must outlast a slow start on a loaded machine.
  args.insert(args.end(), {"--stall", "0", "--max-seconds", "60"});
  ASSERT_TRUE(node.Start(dir_ + "/t.log", args)) << node.Log();
  // Wait until it has verified all but the bad piece and seen a hash failure.
  ASSERT_TRUE(node.WaitFor(
      [&](const nlohmann::json& l) {
        return ArtifactField(l, "hash_failures") > 0 &&
               ArtifactField(l, "verified") + a.piece_size >= a.request.length;
      },
      seconds(30)))
      << node.Log();
  std::this_thread::sleep_for(seconds(3));
  node.Stop();
  for (const auto& line : node.Lines()) {
    if (line.value("event", "") != "progress") continue;
    ASSERT_NE(ArtifactState(line), "complete") << line.dump();
    ASSERT_LT(ArtifactField(line, "verified"), a.request.length) << line.dump();
  }
}

}  // namespace
}  // namespace flotilla::testing
