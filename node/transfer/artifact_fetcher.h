// How the daemon gets an artifact's bytes onto disk, whatever the transport.
//
// The daemon asks for artifacts by their signed description (SHA-256, length,
// v2 info-hash); a fetcher moves the bytes and reports progress. Two
// implementations: the HTTP fetcher (origin only: the `http-only` transfer
// mode and the simulation's baselines) and the torrent fetcher (libtorrent,
// peers first, the tracker's web seed as the last resort).
//
// Contract shared by every implementation:
// - A file is reported kComplete, and CompletedPath() returns it, only after
//   its length and SHA-256 matched the signed ones. Nothing unverified is
//   ever handed to the daemon or served to a peer.
// - Partial data survives a restart (kill -9 included): Want() after a restart
//   continues where the previous process stopped, without downloading again
//   what was already verified.
// - Every path derives from the fetcher's data directory, so several nodes on
//   one host never collide.
// - Methods are called from the daemon's event loop thread only; a fetcher
//   that runs its own thread hands results back under its own lock. The
//   daemon polls Progress() (about once a second), there are no callbacks.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace flotilla::node {

struct ArtifactRequest {
  Digest sha256;                        // signed SHA-256 of the artifact's bytes
  uint64_t length = 0;                  // signed length in bytes
  std::array<uint8_t, 32> info_hash{};  // signed BitTorrent v2 info-hash
};

enum class FetchState {
  kQueued,    // accepted, not moving yet (waiting for a slot, a schedule window, a link)
  kFetching,  // bytes are moving, or the fetcher is trying to find a source
  kComplete,  // on disk and verified: CompletedPath() returns it
  kFailed,    // gave up (verification failed repeatedly, no space...): see `error`
};

// A peer that sent bytes failing verification, as reports name it.
struct BadPeer {
  std::string swarm;  // the torrent's announce info_hash (first 20 bytes of the v2 one), hex
  std::string ip;     // IPv4 or IPv6 literal, as connected
  uint16_t port = 0;
  uint32_t hash_failures = 0;  // pieces it sent (blocks of) that failed
};

struct FetchProgress {
  FetchState state = FetchState::kQueued;
  uint64_t bytes_total = 0;     // the signed length
  uint64_t bytes_verified = 0;  // verified bytes on disk (pieces or ranges)
  // Verified payload received from peers, this process's lifetime.
  uint64_t bytes_from_peers = 0;
  uint64_t bytes_from_origin = 0;  // verified payload from the tracker (HTTP or web seed)
  uint64_t bytes_uploaded = 0;     // payload sent to peers
  uint32_t peers = 0;              // peers connected now (origin not counted)
  uint64_t hash_failures = 0;      // pieces or files that failed verification
  uint64_t bytes_wasted = 0;       // received bytes that failed verification (never progress)
  // Peers banned for this artifact (they sent bytes that failed
  // verification); the first kMaxBadPeers of them.
  std::vector<BadPeer> bad_peers;
  std::string error;  // kFailed: why, for humans and reports
};

inline constexpr size_t kMaxBadPeers = 16;

class ArtifactFetcher {
 public:
  virtual ~ArtifactFetcher() = default;

  // Starts (or continues) fetching `request`. Idempotent. An artifact that is
  // already complete and verified on disk becomes kComplete without traffic.
  virtual Status Want(const ArtifactRequest& request) = 0;

  // Stops fetching or sharing `sha256` and deletes its data (partial or
  // complete). Unknown digests are not an error.
  virtual Status Forget(const Digest& sha256) = 0;

  // Progress of a wanted artifact; NotFound for one never wanted.
  virtual Result<FetchProgress> Progress(const Digest& sha256) const = 0;

  // The verified file of a kComplete artifact. The daemon reads it (to
  // rebuild a layer) but never moves or modifies it: the fetcher may keep
  // serving it to peers until Forget().
  virtual Result<std::string> CompletedPath(const Digest& sha256) const = 0;
};

}  // namespace flotilla::node
