// Parsing of BitTorrent HTTP tracker announces (BEP 3, BEP 23, BEP 52).
//
// A v2 torrent announces the first 20 bytes of its 32-byte info-hash (BEP 52),
// so a swarm is keyed by 20 bytes whatever the torrent's version.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "tracker/announce/ip_address.h"

namespace flotilla::tracker {

using InfoHash20 = std::array<uint8_t, 20>;

enum class AnnounceEvent { kNone, kStarted, kCompleted, kStopped, kPaused };

struct AnnounceRequest {
  InfoHash20 info_hash{};
  std::string peer_id;  // exactly 20 bytes
  uint16_t port = 0;
  uint64_t uploaded = 0;
  uint64_t downloaded = 0;
  std::optional<uint64_t> left;  // absent: unknown, counted as a leecher
  AnnounceEvent event = AnnounceEvent::kNone;
  bool compact = true;
  int numwant = 50;  // clamped to [0, kMaxNumwant]
  // Optional site label (flotilla extension): peers with the same label are
  // listed first. 1-64 characters of [A-Za-z0-9._-].
  std::string site;
  // Optional address the peer is reachable at inside its site (BEP 3 `ip`);
  // given only to peers of the same site.
  std::optional<IpAddress> lan_ip;
  // Optional (flotilla extension, `proxied=1`): the announce came through an
  // HTTP proxy, so its source address is the proxy's. The peer gets peers but
  // is never handed out to anyone.
  bool proxied = false;
};

inline constexpr int kMaxNumwant = 200;

// Splits a URL query ("a=1&b=%20") into decoded key/value pairs. Refuses bad
// percent escapes, empty keys and repeated keys. '+' is kept as a literal '+'.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

// Builds an AnnounceRequest from a decoded query; unknown keys are ignored
// (clients send many optional ones), malformed known keys are refused.
Result<AnnounceRequest> ParseAnnounce(const std::map<std::string, std::string>& query);

}  // namespace flotilla::tracker
