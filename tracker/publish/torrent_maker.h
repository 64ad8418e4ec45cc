// Torrents for artifacts: one single-file, v2-only torrent per artifact
// (libtorrent create_torrent), with the tracker's announce URL and the
// artifact's web seed (BEP 19) set. `publish` calls AddArtifact for every
// artifact it makes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/status.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

struct TorrentOptions {
  // The tracker's public base URL, e.g. "https://tracker.example:8443" (no trailing '/').
  std::string public_url;
  // Power of two, >= 16 KiB. 256 KiB keeps a 200 MB torrent near 25 KB.
  int piece_size = 256 << 10;
};

struct ArtifactTorrent {
  Digest sha256;
  uint64_t length = 0;
  std::array<uint8_t, 32> info_hash_v2{};  // what the signed metadata pins
  std::string torrent;                     // the bencoded .torrent
};

// Announce URL written into torrents: <public_url>/announce. A device appends
// "/<passkey>" (or fetches a personalised torrent, see PersonalizeTorrent).
std::string AnnounceUrl(std::string_view public_url);
// Web seed URL: <public_url>/artifacts/<hex>/ (a directory: libtorrent 2.0.8
// appends the torrent name, which is <hex>).
std::string WebSeedUrl(std::string_view public_url, std::string_view hex);

// Builds the torrent of the file at `path`, whose file name must be its
// SHA-256 in hex (the torrent's name). Reads the file once.
Result<ArtifactTorrent> MakeArtifactTorrent(const std::string& path, const TorrentOptions& options);

// Copies `source` into the repository under its SHA-256 (temp + fsync +
// rename), then writes its torrent the same way. An artifact already present
// is kept (its torrent is rewritten). Crash-safe: a torrent file exists only
// for an artifact that is complete on disk.
Result<ArtifactTorrent> AddArtifact(const RepositoryLayout& repo, const std::string& source,
                                    const TorrentOptions& options);

// Returns `torrent` with its announce URL replaced by `announce_url` (and any
// announce-list dropped). The info dictionary, and so the info-hash, is kept.
Result<std::string> PersonalizeTorrent(std::string_view torrent, std::string_view announce_url);

}  // namespace flotilla::tracker
