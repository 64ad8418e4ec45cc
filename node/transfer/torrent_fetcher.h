// The torrent fetcher: artifacts moved by libtorrent, peers first, the
// tracker's web seed as the last resort (docs/transfer.md).
//
// Threading: one libtorrent session, owned by one worker thread (a core
// ThreadExecutor). Every libtorrent call runs on that thread; it pops alerts
// every `tick` and publishes a snapshot of each artifact's progress under a
// lock. The public methods are called from the daemon's thread: Progress(),
// CompletedPath() and GetCounters() read the snapshot; Want(), Forget(),
// AddPeer() and SetRateLimits() hand work to the worker and wait for it.
//
// Disk layout under `data_dir` (every path derives from it, nothing from a
// torrent):
//   torrents/<hex>.torrent   verified .torrent bytes (info-hash checked)
//   data/<hex>/<hex>         the artifact's bytes (libtorrent's save path is data/<hex>)
//   resume/<hex>.resume      libtorrent resume data, written atomically
//   session.dirty            exists while a session runs: found at Create, the
//                            previous process died and partial data is rechecked
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

// When the tracker's web seed (the origin) is used. See docs/transfer.md.
struct OriginPolicyOptions {
  // Seconds a torrent waits for peer progress, after it is added or after the
  // last byte from a peer, before the origin is attached.
  double stall_seconds = 10;
  // Seconds during which peers are connected but none has a piece still
  // missing (and none delivered a byte) before the origin is attached, by the
  // origin token's holder only: the node with no connected incomplete peer
  // ahead of it (more pieces, or a lower address). Its neighbours wait on
  // `stall_seconds` and take its pieces over the LAN. Also the wait of a node
  // alone in the swarm (the tracker answered; no peer connected, none on its
  // LAN connecting) before it attaches the origin.
  double no_useful_peer_seconds = 3;
  // The stall wait of a torrent in which a connected LAN neighbour is ahead
  // of this node (link_locality.h): the neighbour fetches it for the site,
  // over other sites' uplinks when there is no NAT, and has its own stall
  // rule. A neighbour that goes ends the wait at once (this node is then
  // first on its LAN).
  double lan_follower_stall_seconds = 40;
  // Each fetcher adds a random delay in [0, stagger_seconds) to the stall
  // wait, drawn once at Create: if a holder stalls or goes, its neighbours do
  // not all reach for the origin at once.
  double stagger_seconds = 8;
  // Minimum seconds the origin stays attached once added (no flapping).
  double min_attached_seconds = 5;
  // Detach the origin when peers delivered at least this many bytes over the
  // last `min_attached_seconds` and some connected peer still has missing pieces.
  uint64_t detach_peer_bytes = 256 << 10;
  // Cap on bytes/s from the origin's addresses (0 = no cap of its own).
  int origin_rate_limit = 0;
  // Never attach the origin (tests of peer-only transfer; sites that forbid WAN).
  bool disabled = false;
};

// An HTTP proxy for the tracker's announces (docs/transfer.md, "Behind a proxy").
struct AnnounceProxy {
  std::string host;  // empty: announces go direct
  uint16_t port = 0;
  std::string user;      // empty: no authentication
  std::string password;  // never logged
};

struct TorrentFetcherOptions {
  std::string data_dir;
  // libtorrent listen interfaces, e.g. "127.0.0.3:0" or "0.0.0.0:6881,[::]:6881".
  // A specific IP also becomes the outgoing interface and the announced IP.
  std::string listen_interfaces = "0.0.0.0:0";
  // Tracker base URL (http or https, no trailing '/'); announce URL is
  // <tracker_url>/announce/<passkey>. Empty: no tracker (peers by LSD/AddPeer).
  std::string tracker_url;
  std::string passkey;  // never logged
  // Announces go through this proxy and say so (`proxied=1`: the tracker then
  // never hands this peer out, its address being the proxy's). Peers and web
  // seeds never use it: libtorrent 2.0.8 would take every peer connection
  // through a proxy that carries web seeds (proxy_peer_connections), so a
  // web seed behind a proxy is given as a relay on loopback instead.
  AnnounceProxy announce_proxy;
  // The .torrent bytes of a request (the daemon tries the tracker, then LAN
  // neighbours). Untrusted: the fetcher checks the v2 info-hash.
  std::function<Result<std::string>(const ArtifactRequest&)> fetch_torrent;
  // Web seed base URL (the tracker's public URL): the origin of an artifact is
  // <web_seed_url>/artifacts/<hex>/. Empty: no origin.
  std::string web_seed_url;
  // Largest web seed request (libtorrent's urlseed_max_request_bytes); 0:
  // libtorrent's default (16 MiB). A relay that holds an answer in memory
  // sets it lower.
  int web_seed_max_request_bytes = 0;
  int download_rate_limit = 0;  // bytes/s, 0 = unlimited; applies to LAN and loopback peers too
  int upload_rate_limit = 0;
  bool enable_lsd = true;
  bool enable_dht = false;
  OriginPolicyOptions origin;
  // Link locality (link_locality.h): while a LAN neighbour is ahead in every
  // incomplete torrent, take nothing from peers outside this host's subnets.
  bool link_locality = true;
  // How often the worker pops alerts and applies the origin policy.
  double tick_seconds = 0.2;
  // Resume data of a torrent with new pieces is saved at most this often.
  double resume_save_seconds = 2;
  // A torrent with no connected peer re-connects the known peers this often.
  double reconnect_seconds = 5;
  // Whole-file SHA-256 mismatches after which an artifact is kFailed.
  int max_file_verify_failures = 3;
  Clock* clock = nullptr;  // nullptr: SystemClock
};

// Totals over all artifacts, this process's lifetime (for reports and metrics).
struct TransferCounters {
  uint64_t bytes_from_peers = 0;
  uint64_t bytes_from_origin = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t payload_received = 0;  // every payload byte received, wasted and redundant included
  uint64_t bytes_wasted = 0;      // received bytes that failed verification
  uint64_t hash_failures = 0;
  uint64_t peers_banned = 0;  // (artifact, peer) bans: the peer sent data that failed a hash
  uint64_t origin_attaches = 0;
  uint64_t torrent_readds = 0;        // re-adds that undid a false ban of libtorrent 2.0.8
  uint64_t lan_follower_periods = 0;  // times off-link peers were blocked (link_locality.h)
  bool lan_follower = false;          // off-link peers are blocked now
  int listen_port = 0;
};

class TorrentFetcher final : public ArtifactFetcher {
 public:
  // Starts the session. Fails if the data dir cannot be made or the session
  // cannot listen.
  static Result<std::unique_ptr<TorrentFetcher>> Create(const TorrentFetcherOptions& options);
  // Saves resume data of every torrent (bounded wait) and stops the session.
  ~TorrentFetcher() override;

  Status Want(const ArtifactRequest& request) override;
  Status Forget(const Digest& sha256) override;
  Result<FetchProgress> Progress(const Digest& sha256) const override;
  Result<std::string> CompletedPath(const Digest& sha256) const override;

  // bytes/s, 0 = unlimited; takes effect at once for every peer class.
  Status SetRateLimits(int download_bytes_per_s, int upload_bytes_per_s);
  // A peer given by configuration or a test ("ip:port"): connected to every
  // torrent now and again whenever a torrent has no peers.
  Status AddPeer(const std::string& endpoint);
  TransferCounters GetCounters() const;

  class Impl;

 private:
  explicit TorrentFetcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flotilla::node
