#include "node/daemon/torrent_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace flotilla::node {

TorrentSource::TorrentSource(TorrentSourceOptions options)
    : options_(std::move(options)), wan_(options_.wan), lan_(NeighbourOptions(options_.lan)) {}

http::ClientOptions TorrentSource::NeighbourOptions(http::ClientOptions lan) {
  lan.connect_timeout = std::min(lan.connect_timeout, std::chrono::milliseconds(1000));
  lan.read_timeout = std::min(lan.read_timeout, std::chrono::milliseconds(2000));
  return lan;
}

Result<std::string> TorrentSource::Fetch(const std::string& artifact_hex) {
  const std::string name = "/torrents/" + artifact_hex + ".torrent";
  const std::vector<Neighbour> neighbours =
      options_.neighbours ? options_.neighbours() : std::vector<Neighbour>{};
  const size_t asked_first = std::min(neighbours.size(), options_.max_neighbours);
  std::lock_guard lock(mutex_);
  http::Call call{.url = "", .max_body_bytes = options_.max_torrent_bytes};
  auto from_neighbours = [&](size_t begin, size_t end) -> std::optional<std::string> {
    for (size_t i = begin; i < end; ++i) {
      call.url = neighbours[i].http_base + name;
      auto answer = lan_.Fetch(call);
      if (answer.ok()) {
        spdlog::debug("torrent {} from neighbour {}", artifact_hex, neighbours[i].device);
        return std::move(answer->body);
      }
    }
    return std::nullopt;
  };
  // A neighbour on the LAN answers within a millisecond; the content URL may
  // be 3G round trips away, and it is billed.
  if (auto bytes = from_neighbours(0, asked_first)) return std::move(*bytes);
  call.url = options_.content_url + name;
  auto from_origin = wan_.Fetch(call);
  if (from_origin.ok()) return std::move(from_origin->body);
  // The content URL is out of reach: every other neighbour heard lately.
  if (auto bytes = from_neighbours(asked_first, neighbours.size())) return std::move(*bytes);
  return from_origin.status();
}

}  // namespace flotilla::node
