#include "node/transfer/origin_policy.h"

#include <gtest/gtest.h>

namespace flotilla::node::transfer {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class OriginPolicyTest : public ::testing::Test {
 protected:
  OriginPolicyOptions Options() {
    OriginPolicyOptions o;
    o.stall_seconds = 10;
    o.no_useful_peer_seconds = 3;
    o.min_attached_seconds = 5;
    o.detach_peer_bytes = 100'000;
    return o;
  }
  OriginObservation At(double s, uint64_t peer_bytes, uint32_t connected, uint32_t useful,
                       uint32_t ahead = 0) {
    return {start_ + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)),
            peer_bytes,
            connected,
            useful,
            false,
            ahead};
  }
  MonoTime start_{seconds(1000)};
};

TEST_F(OriginPolicyTest, AloneAttachesOnlyAfterTheStallPeriod) {
  OriginPolicy policy(Options(), start_);
  for (double t = 0; t < 9.9; t += 0.5) {
    EXPECT_EQ(policy.Update(At(t, 0, 0, 0)), OriginAction::kNone) << t;
  }
  EXPECT_EQ(policy.Update(At(10, 0, 0, 0)), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(), "no peer progress");
  EXPECT_TRUE(policy.attached());
}

TEST_F(OriginPolicyTest, ALanNeighbourAheadMakesTheTorrentWaitItsLongerStallPeriod) {
  OriginPolicyOptions options = Options();
  options.lan_follower_stall_seconds = 40;
  OriginPolicy policy(options, start_);
  for (double t = 0; t < 39.9; t += 0.5) {
    OriginObservation o = At(t, 0, 1, 0, /*ahead=*/1);
    o.lan_peers_ahead = 1;
    EXPECT_EQ(policy.Update(o), OriginAction::kNone) << t;
  }
  OriginObservation o = At(40, 0, 1, 0, 1);
  o.lan_peers_ahead = 1;
  EXPECT_EQ(policy.Update(o), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(), "no peer progress");

  // The same torrent with its peer ahead off the LAN: the usual 10 s.
  OriginPolicy open(options, start_);
  EXPECT_EQ(open.Update(At(9.5, 0, 1, 0, 1)), OriginAction::kNone);
  EXPECT_EQ(open.Update(At(10, 0, 1, 0, 1)), OriginAction::kAttach);
}

// The longer wait is the torrent's, not the node's: when a LAN neighbour
// completes the release's other torrent first, the node stops being a LAN
// follower (that torrent has no neighbour ahead any more), but the neighbour
// still fetches this one over another site's slow uplink, and this torrent
// keeps waiting for it however long its last piece took. Only the neighbour
// leaving this torrent ends the wait, at once.
TEST_F(OriginPolicyTest, TheLongerWaitHoldsWhileALanNeighbourIsAheadInThisTorrent) {
  OriginPolicyOptions options = Options();
  options.lan_follower_stall_seconds = 40;
  OriginPolicy policy(options, start_);
  for (double t = 0; t < 30; t += 0.5) {
    OriginObservation o = At(t, 0, 2, 0, /*ahead=*/1);
    o.lan_peers_ahead = 1;
    EXPECT_EQ(policy.Update(o), OriginAction::kNone) << t;
  }
  EXPECT_EQ(policy.Update(At(30, 0, 1, 0, /*ahead=*/0)), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(), "no peer progress");
}

// A device alone in the swarm (the first of a staged rollout's wave in its
// site): once the tracker has answered, no connected peer and no neighbour
// being connected to for no_useful_peer_seconds make it the token's holder.
TEST_F(OriginPolicyTest, AloneInTheSwarmAttachesAfterTheShortWait) {
  OriginPolicy policy(Options(), start_);
  // No answer from the tracker yet: nothing says the node is alone.
  for (double t = 0; t < 0.75; t += 0.25) {
    EXPECT_EQ(policy.Update(At(t, 0, 0, 0)), OriginAction::kNone) << t;
  }
  for (double t = 0.75; t < 3.75; t += 0.25) {
    OriginObservation o = At(t, 0, 0, 0);
    o.tracker_answered = true;
    EXPECT_EQ(policy.Update(o), OriginAction::kNone) << t;
  }
  OriginObservation o = At(3.75, 0, 0, 0);
  o.tracker_answered = true;
  EXPECT_EQ(policy.Update(o), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(),
            "origin token: alone in the swarm (no peer connected or connecting on the LAN)");
}

// A neighbour that connects before the wait ends (it announced a moment
// later and the tracker gave it this node's address) ends the alone state:
// the token decides, and the node with a peer ahead waits the stall period.
TEST_F(OriginPolicyTest, APeerConnectingBeforeTheShortWaitHandsTheDecisionToTheToken) {
  OriginPolicy follower(Options(), start_);
  for (double t = 0.5; t < 2; t += 0.5) {
    OriginObservation o = At(t, 0, 0, 0);
    o.tracker_answered = true;
    EXPECT_EQ(follower.Update(o), OriginAction::kNone) << t;
  }
  for (double t = 2; t < 9.9; t += 0.5) {
    OriginObservation o = At(t, 0, 1, 0, /*ahead=*/1);
    o.tracker_answered = true;
    o.lan_peers_ahead = 1;
    o.lan_peers_connecting = 0;
    EXPECT_EQ(follower.Update(o), OriginAction::kNone) << t;
  }
  EXPECT_FALSE(follower.attached());
}

// Two neighbours announcing at the same instant: the tracker serialises
// them, so the first is told of nobody and the second of the first, which
// it connects to within a second. Neither attaches as "alone"; the token
// gives the origin to exactly one of them.
TEST_F(OriginPolicyTest, NeighboursAnnouncingTogetherStillPullTheOriginOnce) {
  OriginPolicy first(Options(), start_);   // told of nobody; lower address
  OriginPolicy second(Options(), start_);  // told of the first
  int attaches = 0;
  for (double t = 0.25; t < 9.9; t += 0.25) {
    const bool connected = t >= 1.25;
    OriginObservation a = At(t, 0, connected ? 1 : 0, 0);
    a.tracker_answered = true;
    OriginObservation b = At(t, 0, connected ? 1 : 0, 0, connected ? 1 : 0);
    b.tracker_answered = true;
    b.lan_peers_ahead = b.peers_ahead;
    b.lan_peers_connecting = connected ? 0 : 1;
    if (first.Update(a) == OriginAction::kAttach) {
      ++attaches;
      EXPECT_EQ(t, 1.25 + 3);  // the token: 3 s with nobody useful
      EXPECT_EQ(first.last_reason(),
                "origin token: no connected peer has the missing pieces or is ahead");
    }
    EXPECT_EQ(second.Update(b), OriginAction::kNone) << t;
  }
  EXPECT_EQ(attaches, 1);
  EXPECT_FALSE(second.attached());
}

// A neighbour the node knows of but is not connected to yet (named by the
// tracker, connection in progress) may be about to take the token: wait.
// Once that attempt fails (the neighbour is gone), the short wait starts.
TEST_F(OriginPolicyTest, ALanPeerKnownButNotYetConnectedKeepsTheNodeWaiting) {
  OriginPolicy policy(Options(), start_);
  for (double t = 0.5; t < 6; t += 0.5) {
    OriginObservation o = At(t, 0, 0, 0);
    o.tracker_answered = true;
    o.lan_peers_connecting = 1;
    EXPECT_EQ(policy.Update(o), OriginAction::kNone) << t;
  }
  for (double t = 6; t < 8.9; t += 0.5) {
    OriginObservation o = At(t, 0, 0, 0);
    o.tracker_answered = true;
    EXPECT_EQ(policy.Update(o), OriginAction::kNone) << t;
  }
  OriginObservation o = At(9, 0, 0, 0);
  o.tracker_answered = true;
  EXPECT_EQ(policy.Update(o), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(),
            "origin token: alone in the swarm (no peer connected or connecting on the LAN)");
  // Kept connecting for the whole stall period: the stall rule still ends it.
  OriginPolicy stuck(Options(), start_);
  for (double t = 0.5; t < 9.9; t += 0.5) {
    OriginObservation c = At(t, 0, 0, 0);
    c.tracker_answered = true;
    c.lan_peers_connecting = 1;
    EXPECT_EQ(stuck.Update(c), OriginAction::kNone) << t;
  }
  OriginObservation c = At(10, 0, 0, 0);
  c.tracker_answered = true;
  c.lan_peers_connecting = 1;
  EXPECT_EQ(stuck.Update(c), OriginAction::kAttach);
  EXPECT_EQ(stuck.last_reason(), "no peer progress");
}

TEST_F(OriginPolicyTest, PeerProgressKeepsTheOriginAway) {
  OriginPolicy policy(Options(), start_);
  uint64_t bytes = 0;
  for (double t = 0; t < 60; t += 0.5) {
    bytes += 1000;
    EXPECT_EQ(policy.Update(At(t, bytes, 1, 1)), OriginAction::kNone) << t;
  }
  // Peers stop delivering: the origin comes after stall_seconds.
  EXPECT_EQ(policy.Update(At(69, bytes, 1, 1)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(70, bytes, 1, 1)), OriginAction::kAttach);
}

TEST_F(OriginPolicyTest, PeersWithoutMissingPiecesBringTheOriginEarly) {
  OriginPolicy policy(Options(), start_);
  EXPECT_EQ(policy.Update(At(1, 0, 2, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(3.9, 0, 2, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(4, 0, 2, 0)), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(),
            "origin token: no connected peer has the missing pieces or is ahead");
}

// The origin token: neighbours that all lack the release wait for the one
// with no incomplete peer ahead of it; it pulls, they take its pieces.
TEST_F(OriginPolicyTest, PeerAheadHoldsTheTokenAndTheOthersWaitForTheStallPeriod) {
  OriginPolicy follower(Options(), start_);
  OriginPolicy holder(Options(), start_);
  for (double t = 0; t < 9.9; t += 0.5) {
    EXPECT_EQ(follower.Update(At(t, 0, 2, 0, /*ahead=*/1)), OriginAction::kNone) << t;
  }
  EXPECT_EQ(holder.Update(At(0.5, 0, 2, 0)), OriginAction::kNone);
  EXPECT_EQ(holder.Update(At(3.4, 0, 2, 0)), OriginAction::kNone);
  EXPECT_EQ(holder.Update(At(3.5, 0, 2, 0)), OriginAction::kAttach);
  // The holder never handed anything on: its neighbours' way out is the stall.
  EXPECT_EQ(follower.Update(At(10, 0, 2, 0, 1)), OriginAction::kAttach);
  EXPECT_EQ(follower.last_reason(), "no peer progress");
}

// Caught up with the holder between its pieces is no reason to pull: only
// a stretch of stall_seconds without a peer byte is.
TEST_F(OriginPolicyTest, FollowerCaughtUpWithTheHolderWaitsWhileItHandsPiecesOn) {
  OriginPolicy policy(Options(), start_);
  uint64_t bytes = 0;
  for (double t = 0.5; t < 60; t += 0.5) {
    const bool new_piece = static_cast<int>(t) % 6 == 0 && t == static_cast<int>(t);
    if (new_piece) bytes += 256 << 10;  // one piece every 6 s, caught up in between
    EXPECT_EQ(policy.Update(At(t, bytes, 2, new_piece ? 1 : 0, 1)), OriginAction::kNone) << t;
  }
  // The holder goes (disconnected): no one ahead any more, so
  // no_useful_peer_seconds later, with nothing useful, this node takes the
  // token.
  EXPECT_EQ(policy.Update(At(60, bytes, 1, 0, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(62.9, bytes, 1, 0, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(63, bytes, 1, 0, 0)), OriginAction::kAttach);
  EXPECT_EQ(policy.last_reason(),
            "origin token: no connected peer has the missing pieces or is ahead");
}

// A one-piece torrent (a small delta): the holder completes it in a second,
// so its neighbours' last sight of it ahead is followed by one where it is a
// seed not yet seen to have the piece. That is the handover, not the token:
// the seed shows as useful on the next ticks and the piece comes over the LAN.
TEST_F(OriginPolicyTest, PeerAheadThatJustCompletedIsWaitedForNotRaced) {
  OriginPolicy policy(Options(), start_);
  for (double t = 0.5; t < 5; t += 0.5) {
    EXPECT_EQ(policy.Update(At(t, 0, 1, 0, /*ahead=*/1)), OriginAction::kNone) << t;
  }
  // Nothing useful for 4.5 s, and now no one ahead: not yet the holder.
  EXPECT_EQ(policy.Update(At(5, 0, 1, 0, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(5.5, 0, 1, 1, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(6, 300'000, 1, 0, 0)), OriginAction::kNone);
  EXPECT_FALSE(policy.attached());
}

// The holder's pieces of another torrent (or its neighbours' gains) are
// signs that it works: a node with a peer ahead keeps waiting on them, and
// the stall period counts from the last of them.
TEST_F(OriginPolicyTest, SwarmProgressKeepsAFollowerWaitingButNotTheHolder) {
  OriginPolicy follower(Options(), start_);
  OriginPolicy holder(Options(), start_);
  uint64_t swarm = 0;
  for (double t = 0.5; t < 30; t += 0.5) {
    if (t == static_cast<int>(t) && static_cast<int>(t) % 4 == 0) ++swarm;  // every 4 s
    OriginObservation seen = At(t, 0, 2, 0, 1);
    seen.swarm_progress = swarm;
    EXPECT_EQ(follower.Update(seen), OriginAction::kNone) << t;
  }
  // Last sign at 28 s: the stall period runs from there.
  OriginObservation quiet = At(37.9, 0, 2, 0, 1);
  quiet.swarm_progress = swarm;
  EXPECT_EQ(follower.Update(quiet), OriginAction::kNone);
  quiet.now += std::chrono::milliseconds(100);
  EXPECT_EQ(follower.Update(quiet), OriginAction::kAttach);
  EXPECT_EQ(follower.last_reason(), "no peer progress");
  // Without a peer ahead the same signs are no reason to wait.
  OriginObservation alone = At(0.5, 0, 0, 0);
  for (double t = 0.5; t < 10; t += 0.5) {
    alone = At(t, 0, 0, 0);
    alone.swarm_progress = static_cast<uint64_t>(t * 2);
    EXPECT_EQ(holder.Update(alone), OriginAction::kNone) << t;
  }
  alone = At(10, 0, 0, 0);
  alone.swarm_progress = 100;
  EXPECT_EQ(holder.Update(alone), OriginAction::kAttach);
}

TEST_F(OriginPolicyTest, HolderAloneAfterItsPeersLeftUsesTheStallPeriod) {
  OriginPolicy policy(Options(), start_);
  EXPECT_EQ(policy.Update(At(1, 0, 1, 0, 1)), OriginAction::kNone);
  // Its peer leaves: alone, nothing is useless, so the stall rule decides.
  for (double t = 1.5; t < 9.9; t += 0.5) {
    EXPECT_EQ(policy.Update(At(t, 0, 0, 0)), OriginAction::kNone) << t;
  }
  EXPECT_EQ(policy.Update(At(10, 0, 0, 0)), OriginAction::kAttach);
}

// On a fast LAN behind a slow WAN, a neighbour pulling from the origin hands
// each new piece on at once: being caught up for a moment must not count.
TEST_F(OriginPolicyTest, NeighbourFeedingNewPiecesKeepsTheOriginAway) {
  OriginPolicy policy(Options(), start_);
  uint64_t bytes = 0;
  for (double t = 0.5; t < 60; t += 0.5) {
    // Every second a new piece arrives from the neighbour; in between nobody
    // has anything we miss.
    bool new_piece = static_cast<int>(t * 2) % 2 == 0;
    if (new_piece) bytes += 256 << 10;
    EXPECT_EQ(policy.Update(At(t, bytes, 2, new_piece ? 1 : 0)), OriginAction::kNone) << t;
  }
  // The neighbour's last piece came at 59 s; nothing useful since 59.5 s:
  // 3 s later, the origin.
  EXPECT_EQ(policy.Update(At(61, bytes, 2, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(62.4, bytes, 2, 0)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(62.5, bytes, 2, 0)), OriginAction::kAttach);
}

TEST_F(OriginPolicyTest, DetachesWhenPeersProgressAfterTheMinimumTime) {
  OriginPolicy policy(Options(), start_);
  ASSERT_EQ(policy.Update(At(10, 0, 0, 0)), OriginAction::kAttach);
  // A useful peer appears and delivers fast, but the origin stays 5 s.
  EXPECT_EQ(policy.Update(At(11, 200'000, 1, 1)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(14, 400'000, 1, 1)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(15, 600'000, 1, 1)), OriginAction::kDetach);
  EXPECT_FALSE(policy.attached());
  // The stall timer restarts at the detach.
  EXPECT_EQ(policy.Update(At(24.9, 600'000, 1, 1)), OriginAction::kNone);
  EXPECT_EQ(policy.Update(At(25, 600'000, 1, 1)), OriginAction::kAttach);
}

TEST_F(OriginPolicyTest, SlowPeersDoNotDetachTheOrigin) {
  OriginPolicy policy(Options(), start_);
  ASSERT_EQ(policy.Update(At(10, 0, 0, 0)), OriginAction::kAttach);
  uint64_t bytes = 0;
  for (double t = 10.5; t < 40; t += 0.5) {
    bytes += 1000;  // 2 KB/s: 10 KB per 5 s window, below 100 KB
    EXPECT_EQ(policy.Update(At(t, bytes, 1, 1)), OriginAction::kNone) << t;
  }
}

TEST_F(OriginPolicyTest, CompletionDetachesAndDisabledNeverAttaches) {
  OriginPolicy policy(Options(), start_);
  ASSERT_EQ(policy.Update(At(10, 0, 0, 0)), OriginAction::kAttach);
  OriginObservation done = At(11, 0, 0, 0);
  done.complete = true;
  EXPECT_EQ(policy.Update(done), OriginAction::kDetach);

  OriginPolicyOptions off = Options();
  off.disabled = true;
  OriginPolicy never(off, start_);
  for (double t = 0; t < 100; t += 1) EXPECT_EQ(never.Update(At(t, 0, 0, 0)), OriginAction::kNone);
}

}  // namespace
}  // namespace flotilla::node::transfer
