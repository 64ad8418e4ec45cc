#include "node/transfer/torrent_loader.h"

#include <algorithm>
#include <exception>
#include <libtorrent/torrent_flags.hpp>

#include "core/bytes.h"

namespace flotilla::node::transfer {
namespace {

Result<std::shared_ptr<lt::torrent_info>> ParseBounded(std::string_view bytes) {
  if (bytes.size() > kMaxTorrentBytes) {
    return ResourceExhausted("torrent of " + std::to_string(bytes.size()) + " bytes exceeds " +
                             std::to_string(kMaxTorrentBytes));
  }
  lt::load_torrent_limits limits;
  limits.max_buffer_size = static_cast<int>(kMaxTorrentBytes);
  limits.max_pieces = 1 << 20;
  limits.max_decode_depth = 32;
  limits.max_decode_tokens = 1 << 20;
  try {
    return std::make_shared<lt::torrent_info>(
        lt::span<char const>(bytes.data(), static_cast<std::ptrdiff_t>(bytes.size())), limits,
        lt::from_span);
  } catch (const std::exception& e) {
    return Corruption(std::string("torrent does not parse: ") + e.what());
  }
}

}  // namespace

Result<LoadedTorrent> LoadVerifiedTorrent(std::string_view bytes, const ArtifactRequest& request) {
  ASSIGN_OR_RETURN(std::shared_ptr<lt::torrent_info> info, ParseBounded(bytes));
  const lt::info_hash_t& hashes = info->info_hashes();
  if (!hashes.has_v2() || hashes.has_v1()) {
    return Corruption("torrent is not v2-only");
  }
  const auto& v2 = hashes.v2;
  if (!std::equal(v2.begin(), v2.end(), request.info_hash.begin())) {
    return Corruption("torrent info-hash " +
                      HexEncode(ByteSpan(reinterpret_cast<const uint8_t*>(v2.data()), v2.size())) +
                      " is not the signed one");
  }
  const lt::file_storage& files = info->files();
  LoadedTorrent loaded;
  int payload_files = 0;
  for (lt::file_index_t i : files.file_range()) {
    if (files.pad_file_at(i)) continue;
    ++payload_files;
    loaded.payload_file = i;
  }
  if (payload_files != 1) {
    return Corruption("torrent holds " + std::to_string(payload_files) +
                      " files, an artifact is one");
  }
  if (static_cast<uint64_t>(files.file_size(loaded.payload_file)) != request.length) {
    return Corruption("torrent file size is not the signed length");
  }
  loaded.piece_length = info->piece_length();
  // Peers come from our announce URL, LSD and configuration; the origin is
  // attached by the origin policy, never because a torrent lists it.
  info->clear_trackers();
  info->set_web_seeds({});
  loaded.info = std::move(info);
  return loaded;
}

lt::add_torrent_params MakeAddParams(const LoadedTorrent& torrent, const std::string& save_path,
                                     const std::string& file_name, const std::string& announce_url,
                                     bool enable_dht) {
  lt::add_torrent_params params;
  params.ti = torrent.info;
  params.save_path = save_path;
  params.renamed_files[torrent.payload_file] = file_name;
  if (!announce_url.empty()) params.trackers = {announce_url};
  params.url_seeds.clear();
  params.flags &=
      ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused | lt::torrent_flags::seed_mode);
  params.flags |= lt::torrent_flags::disable_pex | lt::torrent_flags::duplicate_is_error;
  if (!enable_dht) params.flags |= lt::torrent_flags::disable_dht;
  return params;
}

}  // namespace flotilla::node::transfer
