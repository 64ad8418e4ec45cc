#include "tracker/announce/announce_response.h"

#include "tracker/announce/bencode.h"

namespace flotilla::tracker {
namespace {

void AppendCompact(const PeerContact& peer, std::string& out) {
  out.append(reinterpret_cast<const char*>(peer.address.bytes.data()), peer.address.v6 ? 16 : 4);
  out += static_cast<char>(peer.port >> 8);
  out += static_cast<char>(peer.port & 0xff);
}

}  // namespace

std::string EncodeAnnounceResponse(const AnnounceResult& result, bool compact,
                                   const AnnounceTiming& timing) {
  BencodeDict dict{
      {"interval", int64_t{timing.interval_s}},
      {"min interval", int64_t{timing.min_interval_s}},
      {"complete", result.complete},
      {"incomplete", result.incomplete},
  };
  if (compact) {
    std::string peers, peers6;
    for (const auto& peer : result.peers) AppendCompact(peer, peer.address.v6 ? peers6 : peers);
    dict.emplace("peers", std::move(peers));
    if (!peers6.empty()) dict.emplace("peers6", std::move(peers6));
  } else {
    BencodeList list;
    for (const auto& peer : result.peers) {
      list.emplace_back(BencodeDict{{"ip", peer.address.ToString()},
                                    {"port", int64_t{peer.port}},
                                    {"peer id", peer.peer_id}});
    }
    dict.emplace("peers", std::move(list));
  }
  return BencodeValue(std::move(dict)).Encode();
}

std::string EncodeAnnounceFailure(const std::string& reason) {
  return BencodeValue(BencodeDict{{"failure reason", reason}}).Encode();
}

}  // namespace flotilla::tracker
