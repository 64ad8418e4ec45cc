// TorrentFetcher: getting a verified torrent, adding it (with resume data),
// re-adding it after a ban stall, and forgetting it.
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <libtorrent/read_resume_data.hpp>
#include <libtorrent/session.hpp>

#include "core/file_io.h"
#include "node/transfer/fetcher_impl.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kMaxResumeBytes = 64 << 20;

bool SameInfoHash(const lt::info_hash_t& hashes, const ArtifactRequest& request) {
  return hashes.has_v2() &&
         std::equal(hashes.v2.begin(), hashes.v2.end(), request.info_hash.begin());
}

}  // namespace

std::string TorrentFetcher::Impl::TorrentPath(const std::string& hex) const {
  return options_.data_dir + "/torrents/" + hex + ".torrent";
}
std::string TorrentFetcher::Impl::SavePath(const std::string& hex) const {
  return options_.data_dir + "/data/" + hex;
}
std::string TorrentFetcher::Impl::DataPath(const std::string& hex) const {
  return SavePath(hex) + "/" + hex;
}
std::string TorrentFetcher::Impl::ResumePath(const std::string& hex) const {
  return options_.data_dir + "/resume/" + hex + ".resume";
}
std::string TorrentFetcher::Impl::WebSeedUrl(const std::string& hex) const {
  // A directory URL: 2.0.8 treats a padded v2 single-file torrent as
  // multi-file and appends the torrent name (docs/tracker.md).
  return options_.web_seed_url + "/artifacts/" + hex + "/";
}

// The torrent kept on disk from an earlier Want (checked again), else the
// caller's fetch_torrent (checked, then kept).
Result<transfer::LoadedTorrent> TorrentFetcher::Impl::LoadTorrent(const ArtifactRequest& request) {
  const std::string path = TorrentPath(request.sha256.Hex());
  if (auto kept = ReadTextFileBounded(path, transfer::kMaxTorrentBytes); kept.ok()) {
    auto loaded = transfer::LoadVerifiedTorrent(*kept, request);
    if (loaded.ok()) return loaded;
  }
  auto bytes = options_.fetch_torrent(request);
  if (!bytes.ok()) return bytes.status().WithContext("fetch torrent");
  ASSIGN_OR_RETURN(transfer::LoadedTorrent loaded, transfer::LoadVerifiedTorrent(*bytes, request));
  RETURN_IF_ERROR_CTX(WriteFileAtomic(path, *bytes, 0600), "keep torrent");
  return loaded;
}

Status TorrentFetcher::Impl::Want(const ArtifactRequest& request) {
  bool known = false;
  RETURN_IF_ERROR(RunOnWorker([&] {
    auto it = artifacts_.find(request.sha256);
    if (it != artifacts_.end() && it->second.forgotten) {
      return Unavailable("artifact " + request.sha256.ToString() + " is being forgotten");
    }
    known = it != artifacts_.end();
    return Status::Ok();
  }));
  if (known) return Status::Ok();
  // fetch_torrent may block on the network: it runs on the caller's thread.
  ASSIGN_OR_RETURN(transfer::LoadedTorrent torrent, LoadTorrent(request));
  return RunOnWorker([&] { return AddArtifact(request, std::move(torrent)); })
      .WithContext("want " + request.sha256.ToString());
}

Status TorrentFetcher::Impl::AddArtifact(const ArtifactRequest& request,
                                         transfer::LoadedTorrent torrent) {
  if (artifacts_.count(request.sha256) != 0) return Status::Ok();
  TransferArtifact artifact{
      .request = request,
      .hex = request.sha256.Hex(),
      .torrent = std::move(torrent),
      .origin = transfer::OriginPolicy(options_.origin, clock_.MonotonicNow())};
  artifact.progress.state = FetchState::kFetching;
  artifact.progress.bytes_total = request.length;
  // The first tick connects the known peers again if the add-time attempt
  // found the torrent not ready; the tracker was just announced to.
  artifact.last_resume_save = artifact.last_reannounce = artifact.last_verified =
      clock_.MonotonicNow();
  RETURN_IF_ERROR(CreateDirectories(SavePath(artifact.hex), 0700));
  RETURN_IF_ERROR(AddToSession(artifact, /*trust_resume=*/!previous_run_crashed_));
  artifacts_.emplace(request.sha256, std::move(artifact));
  PublishSnapshot();
  return Status::Ok();
}

// Adds the artifact's torrent, with its resume data unless the previous run
// died (then libtorrent re-hashes what is on disk: resume data saved before
// a crash may name pieces whose writes never reached the disk).
Status TorrentFetcher::Impl::AddToSession(TransferArtifact& artifact, bool trust_resume) {
  lt::add_torrent_params params;
  auto resume = ReadFileBounded(ResumePath(artifact.hex), kMaxResumeBytes);
  if (resume.ok() && trust_resume) {
    lt::error_code ec;
    params =
        lt::read_resume_data(lt::span<char const>(reinterpret_cast<const char*>(resume->data()),
                                                  static_cast<std::ptrdiff_t>(resume->size())),
                             ec);
    if (ec || !SameInfoHash(params.info_hashes, artifact.request)) params = {};
  }
  lt::add_torrent_params fresh = transfer::MakeAddParams(
      artifact.torrent, SavePath(artifact.hex), artifact.hex, announce_url_, options_.enable_dht);
  params.ti = fresh.ti;
  params.save_path = fresh.save_path;
  params.renamed_files = fresh.renamed_files;
  // A re-add within the tracker's min interval adds the tracker later (Tick).
  artifact.tracker_deferred =
      !fresh.trackers.empty() && clock_.MonotonicNow() < artifact.announce_allowed_at;
  params.trackers = artifact.tracker_deferred ? std::vector<std::string>{} : fresh.trackers;
  params.tracker_tiers.clear();
  params.url_seeds.clear();
  params.flags = fresh.flags;
  params.name.clear();
  params.extensions.push_back(transfer::GatePlugin(artifact.gate));
  // Pieces verified before a re-add come back as resume data, without
  // piece_finished alerts: their held bytes are progress now.
  std::vector<int> kept;
  for (const auto& [piece, pending] : artifact.pending_pieces) {
    if (piece < params.have_pieces.size() && params.have_pieces[lt::piece_index_t(piece)]) {
      kept.push_back(piece);
    }
  }
  for (int piece : kept) OnPiecePassed(artifact, piece);
  lt::error_code ec;
  artifact.handle = session_->add_torrent(std::move(params), ec);
  if (ec) return Unavailable("add torrent: " + ec.message());
  artifact.payload_seen = artifact.upload_seen = 0;
  artifact.seen_seeding = false;
  for (const auto& peer : known_peers_) {
    if (!artifact.gate->Banned(peer.address())) artifact.handle.connect_peer(peer);
  }
  return Status::Ok();
}

// Recovery when 2.0.8 banned a good peer: the torrent is removed (its resume
// data saved first) and added again, which clears the ban list. Its tracker
// is removed first, so that no "stopped" announce is sent, and the earliest
// time the tracker allows the next announce is kept for the re-add.
void TorrentFetcher::Impl::StartReadd(TransferArtifact& artifact) {
  if (artifact.readd != TransferArtifact::Readd::kNone) return;
  ++counters_.torrent_readds;
  const lt::time_point32 lt_now = lt::time_point_cast<lt::seconds32>(lt::clock_type::now());
  lt::time_point32 allowed = lt_now;
  for (const auto& tracker : artifact.handle.trackers()) {
    for (const auto& endpoint : tracker.endpoints) {
      for (const auto& hashes : endpoint.info_hashes)
        allowed = std::max(allowed, hashes.min_announce);
    }
  }
  artifact.announce_allowed_at =
      std::max(artifact.announce_allowed_at, clock_.MonotonicNow() + (allowed - lt_now));
  artifact.handle.replace_trackers({});
  artifact.readd = TransferArtifact::Readd::kSavingResume;
  artifact.resume_pending = true;
  artifact.handle.save_resume_data(lt::torrent_handle::flush_disk_cache);
}

Status TorrentFetcher::Impl::Forget(const Digest& sha256) {
  const std::string hex = sha256.Hex();
  RETURN_IF_ERROR(RunOnWorker([&] { return ForgetOnWorker(sha256); }));
  ::unlink(ResumePath(hex).c_str());
  ::unlink(TorrentPath(hex).c_str());
  return Status::Ok();
}

Status TorrentFetcher::Impl::ForgetOnWorker(const Digest& sha256) {
  const std::string hex = sha256.Hex();
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.erase(sha256);
    completed_paths_.erase(sha256);
  }
  auto it = artifacts_.find(sha256);
  if (it != artifacts_.end() && it->second.handle.is_valid() && !it->second.forgotten) {
    // The data directory goes once libtorrent has closed the file
    // (torrent_deleted_alert / torrent_removed_alert).
    it->second.forgotten = true;
    session_->remove_torrent(it->second.handle, lt::session::delete_files);
    return Status::Ok();
  }
  if (it == artifacts_.end()) {
    std::error_code ec;
    std::filesystem::remove_all(SavePath(hex), ec);
    if (ec) return IOErrorFromErrno("remove " + SavePath(hex), ec.value());
  }
  return Status::Ok();
}

}  // namespace flotilla::node
