// The origin policy: when one torrent may use the tracker's web seed.
//
// The origin is the last resort, not a peer among equals (docs/transfer.md):
// - a torrent starts without it;
// - it is attached after `stall_seconds` without a byte from peers (since the
//   torrent was added or since the last peer byte), whatever else is seen;
// - it is attached after `no_useful_peer_seconds` during which peers were
//   connected, none had a piece still missing and none delivered a byte, but
//   only by the holder of the origin token: a node with no connected
//   incomplete peer ahead of it (see `peers_ahead`). The others wait while
//   the holder pulls and hands pieces on; the stall rule above is their way
//   out if it stalls or goes. For them (peers ahead), any sign that the
//   node's swarms move (`swarm_progress`) also restarts the stall clock: the
//   holder's first piece of a torrent can take longer than the stall period
//   while it pulls the release's other torrents. A node becomes the holder
//   only `no_useful_peer_seconds` after its last peer ahead went: the one
//   ahead usually went because it just completed, and the seed it became
//   shows as useful a moment later (a small delta is one piece, done in a
//   second: without the wait its neighbours all pulled it from the origin);
// - a node alone in the swarm holds the token by definition: once the
//   tracker has answered one of its announces, it attaches after
//   `no_useful_peer_seconds` during which it had no connected peer and no
//   connection in progress to a peer on its LAN (see `lan_peers_connecting`).
//   A neighbour that announces a moment later is given this node's address
//   and connects within a second, which ends the wait: the token rule above
//   then decides;
// - a torrent in which a LAN neighbour is ahead (link_locality.h) waits
//   `lan_follower_stall_seconds` instead: that neighbour fetches it for the
//   site and has its own stall rule, and a piece from another site's uplink
//   can take longer than `stall_seconds` to show. This holds per torrent:
//   a neighbour that completes another torrent first still fetches this one;
// - it stays attached at least `min_attached_seconds`, then is detached as soon
//   as peers delivered `detach_peer_bytes` over that window and a connected
//   peer still has missing pieces;
// - it is detached when the torrent completes.
// Pure logic over observations: no clock reads, no libtorrent.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "core/clock.h"
#include "node/transfer/torrent_fetcher.h"

namespace flotilla::node::transfer {

struct OriginObservation {
  MonoTime now;
  uint64_t peer_bytes = 0;       // payload from peers so far (monotonic)
  uint32_t connected_peers = 0;  // BitTorrent peers, origin excluded
  uint32_t useful_peers = 0;     // connected peers that have a piece we miss
  bool complete = false;
  // Connected peers that are not seeds and come before this node for the
  // origin token: they hold more pieces than we do, or their address is lower
  // than ours (the address we reach them from). Symmetric on a LAN, so among
  // neighbours that all lack the release exactly one has none ahead.
  uint32_t peers_ahead = 0;
  // Monotonic count of signs that this node's swarms move, over all its
  // torrents: blocks received from peers and pieces gained by connected peers.
  uint64_t swarm_progress = 0;
  // Connected peers on this node's LAN (link_locality.h) among
  // `peers_ahead`: while there is one, the stall wait is
  // `lan_follower_stall_seconds`.
  uint32_t lan_peers_ahead = 0;
  // The tracker answered an announce of this torrent (false with no tracker:
  // nothing says the node is alone, so only the stall rule applies).
  bool tracker_answered = false;
  // Peers on this node's LAN (link_locality.h) it is connecting to or
  // handshaking with: known (from the tracker's reply, LSD or configuration)
  // but not yet connected. Peers of other sites are not counted: behind NAT
  // they are never reached, and without NAT they connect like any other.
  uint32_t lan_peers_connecting = 0;
};

enum class OriginAction { kNone, kAttach, kDetach };

class OriginPolicy {
 public:
  OriginPolicy(const OriginPolicyOptions& options, MonoTime started);

  // Feeds one observation (call every tick); says what to do with the origin.
  OriginAction Update(const OriginObservation& observation);
  bool attached() const { return attached_; }
  // Why the last attach or detach happened, for logs and tests.
  const std::string& last_reason() const { return last_reason_; }

 private:
  bool ShouldAttach(const OriginObservation& o);
  bool ShouldDetach(const OriginObservation& o) const;
  uint64_t PeerBytesInWindow(const OriginObservation& o) const;

  OriginPolicyOptions options_;
  bool attached_ = false;
  MonoTime attached_at_{};
  MonoTime last_peer_progress_;
  uint64_t last_peer_bytes_ = 0;
  uint64_t last_swarm_progress_ = 0;
  bool useless_ = false;  // peers connected, none with a missing piece
  MonoTime useless_since_{};
  uint32_t last_peers_ahead_ = 0;
  MonoTime no_peer_ahead_since_;  // since when peers_ahead has been 0
  bool alone_ = false;            // tracker answered, no connected peer, none on the LAN connecting
  MonoTime alone_since_{};
  std::deque<std::pair<MonoTime, uint64_t>> samples_;  // (time, peer_bytes)
  std::string last_reason_;
};

}  // namespace flotilla::node::transfer
