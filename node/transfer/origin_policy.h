// The origin policy: when one torrent may use the tracker's web seed.
//
// The origin is the last resort, not a peer among equals (docs/transfer.md):
// - a torrent starts without it;
// - it is attached after `stall_seconds` without a byte from peers (since the
//   torrent was added or since the last peer byte), or after
//   `no_useful_peer_seconds` during which peers were connected, none had a
//   piece still missing and none delivered a byte;
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
  bool useless_ = false;  // peers connected, none with a missing piece
  MonoTime useless_since_{};
  std::deque<std::pair<MonoTime, uint64_t>> samples_;  // (time, peer_bytes)
  std::string last_reason_;
};

}  // namespace flotilla::node::transfer
