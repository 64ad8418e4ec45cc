// Internals of TorrentFetcher, shared by its .cpp files. Not a public header.
//
// Thread rule: every member below `worker-only` is touched only by tasks on
// `worker_`; `mu_` guards the snapshot the caller's thread reads.
#pragma once

#include <functional>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "node/transfer/link_locality.h"
#include "node/transfer/origin_policy.h"
#include "node/transfer/peer_gate.h"
#include "node/transfer/torrent_fetcher.h"
#include "node/transfer/torrent_loader.h"

namespace flotilla::node {

// One wanted artifact, as the worker sees it.
struct TransferArtifact {
  enum class Readd { kNone, kSavingResume, kRemoving };

  ArtifactRequest request;
  std::string hex;  // hex of the signed SHA-256: every path of this artifact
  transfer::LoadedTorrent torrent;
  lt::torrent_handle handle;
  transfer::OriginPolicy origin;
  FetchProgress progress;
  bool verified = false;  // whole-file SHA-256 and length matched
  int verify_failures = 0;
  bool awaiting_recheck = false;  // force_recheck asked; seeding state is stale until it runs
  // Seeding in the last tick's status. A piece that passes between a tick's
  // alert pop and its status read shows in the status before its alert is
  // handled: completion waits for the next tick, so every passed piece is
  // counted before anyone is told the artifact is complete.
  bool seen_seeding = false;
  bool resume_dirty = false;
  bool resume_pending = false;
  MonoTime last_resume_save{};
  MonoTime last_reconnect{};
  MonoTime last_reannounce{};
  MonoTime last_origin_attach{};
  // A re-added torrent gets its tracker back only once the tracker's min
  // interval since the last announce has passed.
  bool tracker_deferred = false;
  MonoTime announce_allowed_at{};
  // Blocks of unfinished pieces: who sent them and how many payload bytes
  // came from peers and from the origin. Counted as progress only when the
  // piece passes its hash; wasted when it fails.
  struct PendingPiece {
    std::set<lt::tcp::endpoint> senders;
    uint64_t from_peers = 0;
    uint64_t from_origin = 0;
  };
  std::map<int, PendingPiece> pending_pieces;
  // Pieces already counted as progress: a late duplicate of one of their
  // blocks (end game asks several peers for the same block) is neither held
  // nor counted again, not even when a re-add finds the piece in resume data.
  std::set<int> passed_pieces;
  // Peers that sent a block of a piece that failed its hash: banned for this
  // artifact whatever they sent before, across re-adds (peer_gate.h).
  std::shared_ptr<transfer::PeerGate> gate = std::make_shared<transfer::PeerGate>();
  // Senders of a failing piece that had several senders: banned only if
  // libtorrent bans them.
  std::set<lt::address> suspects;
  std::map<lt::address, uint32_t> failures_by_peer;  // failing pieces each peer sent blocks of
  MonoTime last_verified{};  // the last piece that passed its hash, or the add
  // Peers libtorrent banned, judged a tick later (its ban alert comes before
  // the hash failure that explains it): one that never sent a failing piece
  // was 2.0.8's false ban, and the torrent is re-added, at most every
  // kReaddSeconds.
  std::vector<lt::tcp::endpoint> bans_to_judge;
  bool false_ban = false;
  MonoTime last_readd{};
  Readd readd = Readd::kNone;
  uint32_t on_link_peers_ahead = 0;  // last tick's, for link locality
  // The tracker answered an announce of this torrent (origin_policy.h: a
  // node alone in the swarm), and how many peers its latest answer named.
  bool tracker_answered = false;
  int tracker_peers = 0;
  uint64_t peer_pieces_high = 0;  // most pieces connected peers held together, for swarm progress
  uint64_t payload_seen = 0;      // total_payload_download of the current handle
  uint64_t upload_seen = 0;
  bool forgotten = false;  // removal with file deletion in flight
};

class TorrentFetcher::Impl {
 public:
  static Result<std::unique_ptr<Impl>> Start(const TorrentFetcherOptions& options);
  ~Impl();

  Status Want(const ArtifactRequest& request);
  Status Forget(const Digest& sha256);
  Result<FetchProgress> Progress(const Digest& sha256) const;
  Result<std::string> CompletedPath(const Digest& sha256) const;
  Status SetRateLimits(int download, int upload);
  Status AddPeer(const std::string& endpoint);
  TransferCounters GetCounters() const;

 private:
  explicit Impl(const TorrentFetcherOptions& options);

  // Runs `task` on the worker and waits for its status.
  Status RunOnWorker(std::function<Status()> task);
  Status StartSession();
  void ScheduleTick();
  void Shutdown();

  // torrent_fetcher_add.cpp: torrent bytes, add, re-add, forget.
  Result<transfer::LoadedTorrent> LoadTorrent(const ArtifactRequest& request);
  // `trust_resume`: resume data was saved by a process that did not crash.
  Status AddToSession(TransferArtifact& artifact, bool trust_resume);
  Status AddArtifact(const ArtifactRequest& request, transfer::LoadedTorrent torrent);
  Status ForgetOnWorker(const Digest& sha256);
  void StartReadd(TransferArtifact& artifact);
  std::string TorrentPath(const std::string& hex) const;
  std::string SavePath(const std::string& hex) const;
  std::string DataPath(const std::string& hex) const;
  std::string ResumePath(const std::string& hex) const;

  // torrent_fetcher_tick.cpp: alerts, progress, origin policy, resume, verify.
  void Tick();
  void HandleAlert(lt::alert* alert);
  void OnBlockFinished(const lt::block_finished_alert& alert);
  void OnResumeData(const lt::save_resume_data_alert& alert);
  void OnTorrentRemoved(const lt::torrent_removed_alert& alert);
  void UpdateArtifact(TransferArtifact& artifact);
  void ApplyOriginPolicy(TransferArtifact& artifact, const lt::torrent_status& status,
                         const std::vector<lt::peer_info>& peers);
  void MaybeSaveResume(TransferArtifact& artifact);
  void VerifyCompleted(TransferArtifact& artifact);
  void ReconnectIfAlone(TransferArtifact& artifact, uint32_t connected);
  void MaybeRecoverFromBan(TransferArtifact& artifact);
  void OnHashFailed(TransferArtifact& artifact, int piece);
  void OnPiecePassed(TransferArtifact& artifact, int piece);
  bool BanPeer(TransferArtifact& artifact, const lt::tcp::endpoint& peer);
  void OnPeerBanned(TransferArtifact& artifact, const lt::tcp::endpoint& peer);
  void UpdateLinkLocality();
  void PublishSnapshot();
  TransferArtifact* FindByHandle(const lt::torrent_handle& handle);
  bool IsOriginEndpoint(const lt::tcp::endpoint& endpoint) const;
  static std::string AddressText(const lt::address& address);
  static std::string EndpointText(const lt::tcp::endpoint& endpoint);
  std::string WebSeedUrl(const std::string& hex) const;

  const TorrentFetcherOptions options_;
  Clock& clock_;
  std::string announce_url_;

  // worker-only
  std::unique_ptr<lt::session> session_;
  std::map<Digest, TransferArtifact> artifacts_;
  std::set<lt::tcp::endpoint> origin_endpoints_;
  std::vector<lt::tcp::endpoint> known_peers_;
  TransferCounters counters_;
  std::vector<transfer::Subnet> on_link_;  // this host's subnets, re-read every 30 s
  MonoTime on_link_read_{};
  std::optional<MonoTime> behind_lan_since_;  // since when a LAN neighbour is ahead everywhere
  // Signs that this node's swarms move (OriginObservation::swarm_progress).
  uint64_t swarm_progress_ = 0;
  bool previous_run_crashed_ = false;
  bool stopping_ = false;

  mutable std::mutex mu_;
  std::map<Digest, FetchProgress> snapshot_;
  std::map<Digest, std::string> completed_paths_;
  TransferCounters counters_snapshot_;

  ThreadExecutor worker_;  // last: stopped first when Impl is destroyed
};

}  // namespace flotilla::node
