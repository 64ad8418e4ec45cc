// Turns untrusted .torrent bytes into a torrent libtorrent may add.
//
// The bytes come from the tracker or a LAN neighbour; they are trusted only
// because their v2 info-hash equals the signed one. Even then no name or path
// from the torrent chooses a path on disk: the payload file is renamed to
// <hex of the signed SHA-256> inside a save path the caller derives.
#pragma once

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/torrent_info.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node::transfer {

// Refuses torrents larger than this (a 200 MB artifact at 16 KiB pieces: 391 KB).
inline constexpr size_t kMaxTorrentBytes = 8 << 20;

struct LoadedTorrent {
  std::shared_ptr<lt::torrent_info> info;
  lt::file_index_t payload_file{0};  // the one non-pad file
  int piece_length = 0;
};

// Parses `bytes` with bounded limits and checks: v2-only, info-hash equal to
// `request.info_hash`, exactly one non-pad file, whose size is the signed
// length. Trackers and web seeds listed in the torrent are dropped.
Result<LoadedTorrent> LoadVerifiedTorrent(std::string_view bytes, const ArtifactRequest& request);

// add_torrent_params for `torrent`: save path `save_path`, payload renamed to
// `file_name`, DHT/PEX off, not auto-managed, tracker `announce_url` if not empty.
lt::add_torrent_params MakeAddParams(const LoadedTorrent& torrent, const std::string& save_path,
                                     const std::string& file_name, const std::string& announce_url,
                                     bool enable_dht);

}  // namespace flotilla::node::transfer
