// The origin token with real processes and sockets (docs/transfer.md, "The
// origin token"): neighbours that start together pull the artifact from the
// origin once, through the one with the lowest address, and take it from
// each other; the others still reach the origin when no peer helps.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/digest.h"
#include "tests/transfer/transfer_fixture.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

TEST_F(TransferTest, NeighboursStartingTogetherPullTheOriginOnceThroughTheLowestAddress) {
  const TestArtifact a = AddArtifact((4 << 20) + 5000, 64, 21);
  // The origin's rate is capped (a slow WAN), so the others have time to
  // reach for it if the token did not hold them back. --stall also turns the
  // random stagger off: without the token all three would attach at 3 s.
  const char* kAddresses[] = {"127.77.5.2", "127.77.5.3", "127.77.5.4"};
  std::vector<std::unique_ptr<FetchProcess>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<FetchProcess>());
    const std::string name = "n" + std::to_string(i);
    auto args = NodeArgs(name, kAddresses[i], a);
    args.insert(args.end(), {"--stall", "12", "--origin-cap", std::to_string(768 << 10)});
    ASSERT_TRUE(nodes.back()->Start(dir_ + "/" + name + ".log", args)) << nodes.back()->Log();
  }
  uint64_t from_origin[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(nodes[i]->WaitFor(ArtifactComplete, seconds(60))) << nodes[i]->Log();
    from_origin[i] = ArtifactField(nodes[i]->Last(), "from_origin");
    auto got = HashFile(DataDir("n" + std::to_string(i)) + "/data/" + a.hex + "/" + a.hex);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->Hex(), a.hex);
  }
  const uint64_t piece = static_cast<uint64_t>(a.piece_size);
  // The lowest address held the token and pulled (nearly) everything...
  EXPECT_GE(from_origin[0], a.request.length - 4 * piece)
      << from_origin[0] << " " << from_origin[1] << " " << from_origin[2];
  // ...its neighbours took theirs from peers.
  EXPECT_LE(from_origin[1], 4 * piece) << from_origin[1];
  EXPECT_LE(from_origin[2], 4 * piece) << from_origin[2];
  // Ground truth: the tracker served about one copy, not three.
  const uint64_t served = TrackerBytesServed(a.hex);
  EXPECT_GE(served, a.request.length);
  EXPECT_LE(served, a.request.length + 8 * piece) << served;
}

// A node that waits for a neighbour ahead of it is not stuck when that
// neighbour never gets anything: the stall period releases it.
TEST_F(TransferTest, NodeBehindANeighbourWithNoOriginStillReachesTheOrigin) {
  const TestArtifact a = AddArtifact(1 << 20, 64, 22);
  // The lower address never uses the origin: it holds the token but has
  // nothing to hand on.
  FetchProcess stuck;
  auto stuck_args = NodeArgs("stuck", "127.77.6.2", a);
  stuck_args.insert(stuck_args.end(), {"--no-origin", "--stall", "1"});
  ASSERT_TRUE(stuck.Start(dir_ + "/stuck.log", stuck_args)) << stuck.Log();
  FetchProcess behind;
  auto behind_args = NodeArgs("behind", "127.77.6.3", a);
  behind_args.insert(behind_args.end(), {"--stall", "6"});
  ASSERT_TRUE(behind.Start(dir_ + "/behind.log", behind_args)) << behind.Log();
  ASSERT_TRUE(behind.WaitFor(ArtifactComplete, seconds(40))) << behind.Log();
  EXPECT_EQ(ArtifactField(behind.Last(), "from_origin"), a.request.length);
  // Then the stuck one gets everything from it.
  ASSERT_TRUE(stuck.WaitFor(ArtifactComplete, seconds(30))) << stuck.Log();
  EXPECT_EQ(ArtifactField(stuck.Last(), "from_peers"), a.request.length);
}

// The first device of a site to want a release has no neighbour to wait
// for: once the tracker answered and no peer showed, it holds the token and
// attaches the origin after the token's short wait, long before its stall
// period (60 s here).
TEST_F(TransferTest, NodeAloneInTheSwarmTakesTheOriginBeforeItsStallPeriod) {
  const TestArtifact a = AddArtifact(1 << 20, 64, 23);
  FetchProcess alone;
  auto args = NodeArgs("alone", "127.77.7.2", a);
  args.insert(args.end(), {"--stall", "60"});
  ASSERT_TRUE(alone.Start(dir_ + "/alone.log", args)) << alone.Log();
  ASSERT_TRUE(alone.WaitFor(ArtifactComplete, seconds(45))) << alone.Log();
  EXPECT_EQ(ArtifactField(alone.Last(), "from_origin"), a.request.length);
  std::ifstream out(dir_ + "/alone.log"), err(dir_ + "/alone.log.err");
  std::stringstream logs;
  logs << out.rdbuf() << err.rdbuf();
  EXPECT_NE(logs.str().find("origin attached (origin token: alone in the swarm"), std::string::npos)
      << logs.str();
}

}  // namespace
}  // namespace flotilla::testing
