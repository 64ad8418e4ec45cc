// TorrentFetcher's worker tick: alerts, byte accounting (peers vs origin),
// the origin policy, resume data, whole-file verification and recoveries.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/write_resume_data.hpp>

#include "core/digest.h"
#include "core/file_io.h"
#include "node/transfer/fetcher_impl.h"
#include "node/transfer/resume_checkpoint.h"

namespace flotilla::node {
namespace {

constexpr int kBlockSize = 16 << 10;
constexpr double kOriginRetrySeconds = 5;
// A torrent is re-added for 2.0.8's false bans at most this often.
constexpr double kReaddSeconds = 30;
// Link locality: interfaces are re-read this often (Wi-Fi reconnects), and a
// node blocks off-link peers once it was behind its LAN this long.
constexpr double kOnLinkRereadSeconds = 30;
constexpr double kFollowAfterSeconds = 1;

Duration Seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

bool IsBitTorrentPeer(const lt::peer_info& peer) {
  return peer.connection_type == lt::peer_info::standard_bittorrent &&
         !(peer.flags & (lt::peer_info::connecting | lt::peer_info::handshake));
}

// Connected peers that have at least one piece `status` lacks.
uint32_t UsefulPeers(const lt::torrent_status& status, const std::vector<lt::peer_info>& peers) {
  uint32_t useful = 0;
  for (const auto& peer : peers) {
    if (!IsBitTorrentPeer(peer) || peer.pieces.size() != status.pieces.size()) continue;
    for (lt::piece_index_t i(0); i < lt::piece_index_t(status.pieces.size()); ++i) {
      if (peer.pieces[i] && !status.pieces[i]) {
        ++useful;
        break;
      }
    }
  }
  return useful;
}

// Peers on `on_link` (every peer when it is empty: the host's subnets are
// unknown) that are being connected to or are still handshaking.
uint32_t LanPeersConnecting(const std::vector<lt::peer_info>& peers,
                            const std::vector<transfer::Subnet>& on_link) {
  uint32_t connecting = 0;
  for (const auto& peer : peers) {
    if (peer.connection_type != lt::peer_info::standard_bittorrent ||
        !(peer.flags & (lt::peer_info::connecting | lt::peer_info::handshake))) {
      continue;
    }
    if (on_link.empty() || transfer::OnLink(peer.ip.address(), on_link)) ++connecting;
  }
  return connecting;
}

// Connected peers that lack pieces too and come before us for the origin
// token (origin_policy.h): more pieces than we hold, or a lower address than
// the one of ours they see. Seeds are useful peers, not competitors. With
// `only_on_link`, peers outside those subnets are not counted.
uint32_t PeersAhead(const lt::torrent_status& status, const std::vector<lt::peer_info>& peers,
                    const std::vector<transfer::Subnet>* only_on_link = nullptr) {
  uint32_t ahead = 0;
  for (const auto& peer : peers) {
    if (!IsBitTorrentPeer(peer) || (peer.flags & lt::peer_info::seed)) continue;
    if (only_on_link != nullptr && !transfer::OnLink(peer.ip.address(), *only_on_link)) continue;
    const bool more_pieces = peer.num_pieces > status.num_pieces;
    const bool lower_address = peer.ip.address() < peer.local_endpoint.address();
    if (more_pieces || lower_address) ++ahead;
  }
  return ahead;
}

}  // namespace

void TorrentFetcher::Impl::Tick() {
  std::vector<lt::alert*> alerts;
  session_->pop_alerts(&alerts);
  for (lt::alert* a : alerts) HandleAlert(a);
  const MonoTime now = clock_.MonotonicNow();
  if (options_.link_locality &&
      (on_link_.empty() || now - on_link_read_ >= Seconds(kOnLinkRereadSeconds))) {
    on_link_read_ = now;
    auto subnets = transfer::LocalSubnets();
    if (subnets.ok()) on_link_ = std::move(*subnets);
  }
  for (auto& [digest, artifact] : artifacts_) {
    if (!artifact.handle.is_valid() || artifact.forgotten ||
        artifact.readd != TransferArtifact::Readd::kNone) {
      continue;
    }
    UpdateArtifact(artifact);
  }
  UpdateLinkLocality();
  PublishSnapshot();
}

std::string TorrentFetcher::Impl::AddressText(const lt::address& address) {
  return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

std::string TorrentFetcher::Impl::EndpointText(const lt::tcp::endpoint& endpoint) {
  return AddressText(endpoint.address()) + ":" + std::to_string(endpoint.port());
}

TransferArtifact* TorrentFetcher::Impl::FindByHandle(const lt::torrent_handle& handle) {
  for (auto& [digest, artifact] : artifacts_) {
    if (artifact.handle == handle) return &artifact;
  }
  return nullptr;
}

bool TorrentFetcher::Impl::IsOriginEndpoint(const lt::tcp::endpoint& endpoint) const {
  return origin_endpoints_.count(endpoint) != 0;
}

void TorrentFetcher::Impl::HandleAlert(lt::alert* alert) {
  if (auto* block = lt::alert_cast<lt::block_finished_alert>(alert)) {
    OnBlockFinished(*block);
  } else if (auto* resume = lt::alert_cast<lt::save_resume_data_alert>(alert)) {
    OnResumeData(*resume);
  } else if (auto* failed = lt::alert_cast<lt::save_resume_data_failed_alert>(alert)) {
    if (TransferArtifact* a = FindByHandle(failed->handle)) {
      a->resume_pending = false;
      if (a->readd == TransferArtifact::Readd::kSavingResume) {
        a->readd = TransferArtifact::Readd::kRemoving;
        session_->remove_torrent(a->handle);
      }
    }
  } else if (auto* removed = lt::alert_cast<lt::torrent_removed_alert>(alert)) {
    OnTorrentRemoved(*removed);
  } else if (auto* hash = lt::alert_cast<lt::hash_failed_alert>(alert)) {
    ++counters_.hash_failures;
    if (TransferArtifact* a = FindByHandle(hash->handle)) {
      OnHashFailed(*a, static_cast<int>(hash->piece_index));
    }
  } else if (auto* reply = lt::alert_cast<lt::tracker_reply_alert>(alert)) {
    if (TransferArtifact* a = FindByHandle(reply->handle)) {
      a->tracker_answered = true;
      a->tracker_peers = reply->num_peers;
      spdlog::debug("artifact {}: the tracker answered with {} peers", a->hex.substr(0, 12),
                    reply->num_peers);
    }
  } else if (auto* ban = lt::alert_cast<lt::peer_ban_alert>(alert)) {
    if (TransferArtifact* a = FindByHandle(ban->handle)) OnPeerBanned(*a, ban->endpoint);
  } else if (auto* piece = lt::alert_cast<lt::piece_finished_alert>(alert)) {
    if (TransferArtifact* a = FindByHandle(piece->handle)) {
      a->resume_dirty = true;
      OnPiecePassed(*a, static_cast<int>(piece->piece_index));
    }
  } else if (auto* checked = lt::alert_cast<lt::torrent_checked_alert>(alert)) {
    if (TransferArtifact* a = FindByHandle(checked->handle)) a->awaiting_recheck = false;
  } else if (auto* error = lt::alert_cast<lt::file_error_alert>(alert)) {
    if (TransferArtifact* a = FindByHandle(error->handle)) a->progress.error = error->message();
  } else if (auto* deleted = lt::alert_cast<lt::torrent_deleted_alert>(alert)) {
    std::error_code ec;
    std::filesystem::remove_all(
        SavePath(HexEncode(
            ByteSpan(reinterpret_cast<const uint8_t*>(deleted->info_hashes.v2.data()), 32))),
        ec);
  }
}

// Payload bytes of a finished block, held with their sender until the
// piece's hash decides whether they are progress or waste. Pad bytes past the
// end of the file are not payload.
void TorrentFetcher::Impl::OnBlockFinished(const lt::block_finished_alert& alert) {
  TransferArtifact* a = FindByHandle(alert.handle);
  if (a == nullptr) return;
  const uint64_t piece_length = static_cast<uint64_t>(a->torrent.piece_length);
  const uint64_t start = static_cast<uint64_t>(static_cast<int>(alert.piece_index)) * piece_length +
                         static_cast<uint64_t>(alert.block_index) * kBlockSize;
  const uint64_t end = std::min(start + kBlockSize, a->request.length);
  if (end <= start || a->passed_pieces.count(static_cast<int>(alert.piece_index))) return;
  auto& pending = a->pending_pieces[static_cast<int>(alert.piece_index)];
  pending.senders.insert(alert.endpoint);
  (IsOriginEndpoint(alert.endpoint) ? pending.from_origin : pending.from_peers) += end - start;
}

// A piece passed its hash: its bytes are progress, to the peers or the origin.
void TorrentFetcher::Impl::OnPiecePassed(TransferArtifact& a, int piece) {
  a.last_verified = clock_.MonotonicNow();
  auto node = a.pending_pieces.extract(piece);
  if (!a.passed_pieces.insert(piece).second || node.empty()) return;
  // Blocks sent again after a re-add are counted once: at most the piece.
  const uint64_t piece_length = static_cast<uint64_t>(a.torrent.piece_length);
  const uint64_t start = static_cast<uint64_t>(piece) * piece_length;
  const uint64_t size =
      start < a.request.length ? std::min(piece_length, a.request.length - start) : 0;
  const uint64_t from_origin = std::min(node.mapped().from_origin, size);
  const uint64_t from_peers = std::min(node.mapped().from_peers, size - from_origin);
  a.progress.bytes_from_origin += from_origin;
  counters_.bytes_from_origin += from_origin;
  if (from_peers == 0) return;
  a.progress.bytes_from_peers += from_peers;
  counters_.bytes_from_peers += from_peers;
  ++swarm_progress_;
}

// A piece failed its hash: its bytes are waste. Its sender, when it came
// from one peer, is banned for this artifact whatever it sent before. When
// several peers sent its blocks, each is a suspect until libtorrent names the
// culprit (it asks peers for the block hashes and bans the one whose block
// failed): a suspect libtorrent bans stays banned (MaybeRecoverFromBan).
void TorrentFetcher::Impl::OnHashFailed(TransferArtifact& a, int piece) {
  ++a.progress.hash_failures;
  auto node = a.pending_pieces.extract(piece);
  const TransferArtifact::PendingPiece p =
      node.empty() ? TransferArtifact::PendingPiece{} : std::move(node.mapped());
  const uint64_t wasted = p.from_peers + p.from_origin;
  a.progress.bytes_wasted += wasted;
  counters_.bytes_wasted += wasted;
  std::string senders;
  std::vector<lt::tcp::endpoint> peers;
  for (const auto& sender : p.senders) {
    const bool origin = IsOriginEndpoint(sender);
    senders += (senders.empty() ? "" : ", ") + (origin ? "the origin" : EndpointText(sender));
    if (origin) continue;
    peers.push_back(sender);
    const uint32_t failures = ++a.failures_by_peer[sender.address()];
    for (auto& bad : a.progress.bad_peers) {
      if (bad.ip == sender.address().to_string()) bad.hash_failures = failures;
    }
  }
  std::string verdict;
  if (peers.size() == 1) {
    if (BanPeer(a, peers.front())) {
      verdict = "; banned for this artifact: " + AddressText(peers.front().address());
    }
  } else if (!peers.empty()) {
    for (const auto& peer : peers) a.suspects.insert(peer.address());
    verdict = "; its senders are suspects until libtorrent names the culprit";
  }
  spdlog::warn("artifact {}: piece {} failed its hash ({} B wasted, sent by {}){}",
               a.hex.substr(0, 12), piece, wasted, senders.empty() ? "unknown" : senders, verdict);
}

// True when `peer` was not banned for `a` before.
bool TorrentFetcher::Impl::BanPeer(TransferArtifact& a, const lt::tcp::endpoint& peer) {
  if (!a.gate->Ban(peer.address())) return false;
  ++counters_.peers_banned;
  if (a.progress.bad_peers.size() < kMaxBadPeers) {
    a.progress.bad_peers.push_back(
        BadPeer{.swarm = HexEncode(ByteSpan(a.request.info_hash.data(), 20)),
                .ip = peer.address().to_string(),
                .port = peer.port(),
                .hash_failures = std::max<uint32_t>(1, a.failures_by_peer[peer.address()])});
  }
  return true;
}

namespace {}  // namespace

void TorrentFetcher::Impl::OnResumeData(const lt::save_resume_data_alert& alert) {
  TransferArtifact* a = FindByHandle(alert.handle);
  if (a == nullptr || a->forgotten) return;
  a->resume_pending = false;
  const std::vector<char> buffer = lt::write_resume_data_buf(alert.params);
  // The pieces it names are synced before it (docs/durability.md).
  Status written = SaveResumeCheckpoint(
      Env::Default(), DataPath(a->hex), ResumePath(a->hex),
      ByteSpan(reinterpret_cast<const uint8_t*>(buffer.data()), buffer.size()));
  if (!written.ok()) a->progress.error = written.WithContext("save resume data").message();
  if (written.ok()) spdlog::debug("resume data of {} written", a->hex.substr(0, 12));
  if (a->readd == TransferArtifact::Readd::kSavingResume) {
    a->readd = TransferArtifact::Readd::kRemoving;
    session_->remove_torrent(a->handle);
  }
}

void TorrentFetcher::Impl::OnTorrentRemoved(const lt::torrent_removed_alert& alert) {
  for (auto it = artifacts_.begin(); it != artifacts_.end(); ++it) {
    TransferArtifact& a = it->second;
    if (!(a.handle == alert.handle)) continue;
    if (a.forgotten) {
      std::error_code ec;
      std::filesystem::remove_all(SavePath(a.hex), ec);
      artifacts_.erase(it);
      return;
    }
    if (a.readd == TransferArtifact::Readd::kRemoving) {
      a.readd = TransferArtifact::Readd::kNone;
      Status added = AddToSession(a, /*trust_resume=*/true);  // saved just now
      if (!added.ok()) {
        a.progress.state = FetchState::kFailed;
        a.progress.error = added.WithContext("re-add after ban").message();
      }
    }
    return;
  }
}

void TorrentFetcher::Impl::UpdateArtifact(TransferArtifact& a) {
  const lt::torrent_status status = a.handle.status(lt::torrent_handle::query_pieces);
  const uint64_t payload = static_cast<uint64_t>(status.total_payload_download);
  const uint64_t upload = static_cast<uint64_t>(status.total_payload_upload);
  counters_.payload_received += payload - std::min(payload, a.payload_seen);
  counters_.bytes_uploaded += upload - std::min(upload, a.upload_seen);
  a.progress.bytes_uploaded += upload - std::min(upload, a.upload_seen);
  a.payload_seen = std::max(a.payload_seen, payload);
  a.upload_seen = std::max(a.upload_seen, upload);
  a.progress.bytes_verified =
      std::min<uint64_t>(static_cast<uint64_t>(status.total_wanted_done), a.request.length);
  std::vector<lt::peer_info> peers;
  a.handle.get_peer_info(peers);
  uint32_t connected = 0;
  uint64_t peer_pieces = 0;
  for (const auto& peer : peers) {
    if (IsBitTorrentPeer(peer)) {
      ++connected;
      peer_pieces += static_cast<uint64_t>(std::max(peer.num_pieces, 0));
    }
    if (peer.connection_type != lt::peer_info::standard_bittorrent) {
      origin_endpoints_.insert(peer.ip);  // web seed connections are the origin
    }
  }
  a.progress.peers = connected;
  // Connected peers gaining pieces (counted above their highest total, so a
  // peer that reconnects is not progress) show that the swarm moves.
  if (peer_pieces > a.peer_pieces_high) {
    swarm_progress_ += peer_pieces - a.peer_pieces_high;
    a.peer_pieces_high = peer_pieces;
  }
  a.on_link_peers_ahead = PeersAhead(status, peers, &on_link_);
  if (a.progress.state == FetchState::kFailed) return;
  ApplyOriginPolicy(a, status, peers);
  if (!status.is_seeding) a.awaiting_recheck = false;
  const bool seeding_since_last_tick = status.is_seeding && a.seen_seeding;
  a.seen_seeding = status.is_seeding;
  if (seeding_since_last_tick && !a.verified && !a.awaiting_recheck) VerifyCompleted(a);
  MaybeSaveResume(a);
  if (a.tracker_deferred && clock_.MonotonicNow() >= a.announce_allowed_at) {
    a.tracker_deferred = false;
    a.handle.replace_trackers({lt::announce_entry(announce_url_)});
  }
  if (!a.verified) ReconnectIfAlone(a, connected);
  MaybeRecoverFromBan(a);
}

void TorrentFetcher::Impl::ApplyOriginPolicy(TransferArtifact& a, const lt::torrent_status& status,
                                             const std::vector<lt::peer_info>& peers) {
  if (options_.web_seed_url.empty()) return;
  transfer::OriginObservation seen{.now = clock_.MonotonicNow(),
                                   .peer_bytes = a.progress.bytes_from_peers,
                                   .connected_peers = a.progress.peers,
                                   .useful_peers = UsefulPeers(status, peers),
                                   .complete = status.is_seeding,
                                   .peers_ahead = PeersAhead(status, peers),
                                   .swarm_progress = swarm_progress_,
                                   .lan_peers_ahead = a.on_link_peers_ahead,
                                   .tracker_answered = a.tracker_answered,
                                   .lan_peers_connecting = LanPeersConnecting(peers, on_link_)};
  const std::string url = WebSeedUrl(a.hex);
  const transfer::OriginAction action = a.origin.Update(seen);
  if (action != transfer::OriginAction::kNone) {
    spdlog::info(
        "artifact {}: origin {} ({}; {} peer(s), {} useful, {} ahead, {} B from peers, tracker "
        "named {})",
        a.hex.substr(0, 12), action == transfer::OriginAction::kAttach ? "attached" : "detached",
        a.origin.last_reason(), seen.connected_peers, seen.useful_peers, seen.peers_ahead,
        seen.peer_bytes, a.tracker_answered ? std::to_string(a.tracker_peers) : "nothing yet");
  }
  switch (action) {
    case transfer::OriginAction::kAttach:
      ++counters_.origin_attaches;
      a.last_origin_attach = seen.now;
      a.handle.add_url_seed(url);
      break;
    case transfer::OriginAction::kDetach:
      a.handle.remove_url_seed(url);
      break;
    case transfer::OriginAction::kNone:
      // libtorrent drops a web seed that failed (hash failure, HTTP error):
      // while the policy wants the origin, it is attached again, at most
      // every kOriginRetrySeconds so that a broken origin is not hammered.
      if (a.origin.attached() && seen.now - a.last_origin_attach >= Seconds(kOriginRetrySeconds) &&
          a.handle.url_seeds().count(url) == 0) {
        a.last_origin_attach = seen.now;
        a.handle.add_url_seed(url);
      }
      break;
  }
}

// Link locality (link_locality.h): a node behind a LAN neighbour in every
// incomplete torrent blocks off-link peers; it opens up again at once when
// that is no longer so, and asks the tracker for the peers it dropped.
void TorrentFetcher::Impl::UpdateLinkLocality() {
  if (!options_.link_locality || on_link_.empty()) return;
  std::vector<uint32_t> ahead;
  for (const auto& [digest, a] : artifacts_) {
    if (!a.handle.is_valid() || a.forgotten || a.verified ||
        a.readd != TransferArtifact::Readd::kNone || a.progress.state == FetchState::kFailed) {
      continue;
    }
    ahead.push_back(a.on_link_peers_ahead);
  }
  const MonoTime now = clock_.MonotonicNow();
  if (!transfer::IsLanFollower(ahead)) {
    behind_lan_since_.reset();
  } else if (!behind_lan_since_) {
    behind_lan_since_ = now;
  }
  const bool follow = behind_lan_since_ && now - *behind_lan_since_ >= Seconds(kFollowAfterSeconds);
  if (follow == counters_.lan_follower) return;
  counters_.lan_follower = follow;
  if (follow) {
    ++counters_.lan_follower_periods;
    std::vector<lt::address> origin_ips;
    for (const auto& ep : origin_endpoints_) origin_ips.push_back(ep.address());
    session_->set_ip_filter(transfer::OnLinkOnlyFilter(on_link_, origin_ips));
    spdlog::info(
        "link locality: a LAN neighbour is ahead in every torrent; off-link peers blocked");
    return;
  }
  session_->set_ip_filter(lt::ip_filter());
  spdlog::info("link locality: off-link peers allowed again ({})",
               ahead.empty() ? "nothing left to fetch" : "no LAN neighbour ahead any more");
  if (announce_url_.empty()) return;
  for (auto& [digest, a] : artifacts_) {
    if (a.handle.is_valid() && !a.forgotten) {
      a.handle.force_reannounce();  // libtorrent defers it to the tracker's min interval
    }
  }
}

void TorrentFetcher::Impl::MaybeSaveResume(TransferArtifact& a) {
  const MonoTime now = clock_.MonotonicNow();
  if (!a.resume_dirty || a.resume_pending ||
      now - a.last_resume_save < Seconds(options_.resume_save_seconds)) {
    return;
  }
  a.resume_dirty = false;
  a.resume_pending = true;
  a.last_resume_save = now;
  spdlog::debug("saving resume data of {}", a.hex.substr(0, 12));
  a.handle.save_resume_data(lt::torrent_handle::flush_disk_cache);
}

// libtorrent verified every piece; the file's length and SHA-256 must also be
// the signed ones before anyone is told it is complete.
void TorrentFetcher::Impl::VerifyCompleted(TransferArtifact& a) {
  const std::string path = DataPath(a.hex);
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  Result<Digest> digest = ec ? Result<Digest>(NotFound(path)) : HashFile(path);
  if (!ec && size == a.request.length && digest.ok() && *digest == a.request.sha256) {
    a.verified = true;
    a.progress.state = FetchState::kComplete;
    a.progress.error.clear();
    a.resume_dirty = true;
    a.last_resume_save = MonoTime{};
    std::lock_guard<std::mutex> lock(mu_);
    completed_paths_[a.request.sha256] = path;
    return;
  }
  ++a.verify_failures;
  ++a.progress.hash_failures;
  ++counters_.hash_failures;
  a.progress.error = "downloaded file does not match the signed length and SHA-256";
  if (a.verify_failures >= options_.max_file_verify_failures) {
    a.progress.state = FetchState::kFailed;
    a.handle.pause();
    return;
  }
  a.awaiting_recheck = true;
  a.handle.force_recheck();
}

void TorrentFetcher::Impl::ReconnectIfAlone(TransferArtifact& a, uint32_t connected) {
  const MonoTime now = clock_.MonotonicNow();
  if (connected > 0 || now - a.last_reconnect < Seconds(options_.reconnect_seconds)) return;
  a.last_reconnect = now;
  for (const auto& peer : known_peers_) {
    if (!a.gate->Banned(peer.address())) a.handle.connect_peer(peer);
  }
  // The tracker is asked again at most every 6 reconnect periods, and never
  // before its min interval (libtorrent defers a forced announce to it).
  if (!announce_url_.empty() && !a.tracker_deferred &&
      now - a.last_reannounce >= Seconds(6 * options_.reconnect_seconds)) {
    a.last_reannounce = now;
    a.handle.force_reannounce();
  }
}

// libtorrent banned a peer: judged after the tick's alerts, as its ban alert
// comes before the hash failure that explains it.
void TorrentFetcher::Impl::OnPeerBanned(TransferArtifact& a, const lt::tcp::endpoint& peer) {
  if (!IsOriginEndpoint(peer)) a.bans_to_judge.push_back(peer);
}

// A peer libtorrent banned that sent a block of a failing piece stays banned
// here; any other ban is 2.0.8's false ban, undone by re-adding the torrent
// (which forgets libtorrent's bans; the gate keeps the peers banned here
// out). A torrent that failed a hash and then verified nothing for
// the stall period is re-added too: 2.0.8 can leave a failed piece waiting
// for block hashes from peers that are gone. At most one re-add every
// kReaddSeconds.
void TorrentFetcher::Impl::MaybeRecoverFromBan(TransferArtifact& a) {
  for (const auto& peer : a.bans_to_judge) {
    if (a.gate->Banned(peer.address())) continue;
    if (a.suspects.count(peer.address()) != 0) {
      BanPeer(a, peer);
      spdlog::warn(
          "artifact {}: libtorrent banned {} for a failing piece; banned for this "
          "artifact: {}",
          a.hex.substr(0, 12), EndpointText(peer), AddressText(peer.address()));
      continue;
    }
    spdlog::warn(
        "artifact {}: libtorrent banned {}, which sent no failing piece here: the torrent is "
        "re-added to undo the false ban",
        a.hex.substr(0, 12), EndpointText(peer));
    a.false_ban = true;
  }
  a.bans_to_judge.clear();
  if (a.verified) return;
  const MonoTime now = clock_.MonotonicNow();
  const bool stuck = a.progress.hash_failures > 0 &&
                     now - a.last_verified >= Seconds(options_.origin.stall_seconds);
  if (!a.false_ban && !stuck) return;
  if (a.last_readd != MonoTime{} && now - a.last_readd < Seconds(kReaddSeconds)) return;
  if (stuck && !a.false_ban) {
    spdlog::warn("artifact {}: nothing verified for {:.0f} s after a hash failure: re-adding",
                 a.hex.substr(0, 12), options_.origin.stall_seconds);
  }
  a.false_ban = false;
  a.last_readd = a.last_verified = now;
  StartReadd(a);
}

void TorrentFetcher::Impl::PublishSnapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [digest, artifact] : artifacts_) {
    if (!artifact.forgotten) snapshot_[digest] = artifact.progress;
  }
  counters_snapshot_ = counters_;
}

}  // namespace flotilla::node
