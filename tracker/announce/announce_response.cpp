#include "tracker/announce/announce_response.h"

#include <iterator>
#include <libtorrent/bencode.hpp>
#include <libtorrent/entry.hpp>

namespace flotilla::tracker {
namespace {

using Integer = lt::entry::integer_type;

// libtorrent's writer puts a dictionary's keys in sorted order, as BEP 3
// requires, so the same reply is always the same bytes.
std::string Bencode(const lt::entry& value) {
  std::string out;
  lt::bencode(std::back_inserter(out), value);
  return out;
}

void AppendCompact(const PeerContact& peer, std::string& out) {
  out.append(reinterpret_cast<const char*>(peer.address.bytes.data()), peer.address.v6 ? 16 : 4);
  out += static_cast<char>(peer.port >> 8);
  out += static_cast<char>(peer.port & 0xff);
}

lt::entry PeerDictionaries(const AnnounceResult& result) {
  lt::entry::list_type list;
  for (const auto& peer : result.peers) {
    lt::entry p(lt::entry::dictionary_t);
    p["ip"] = peer.address.ToString();
    p["port"] = Integer{peer.port};
    p["peer id"] = peer.peer_id;
    list.push_back(std::move(p));
  }
  return list;
}

}  // namespace

std::string EncodeAnnounceResponse(const AnnounceResult& result, bool compact,
                                   const AnnounceTiming& timing) {
  lt::entry reply(lt::entry::dictionary_t);
  reply["interval"] = Integer{timing.interval_s};
  reply["min interval"] = Integer{timing.min_interval_s};
  reply["complete"] = Integer{result.complete};
  reply["incomplete"] = Integer{result.incomplete};
  if (!compact) {
    reply["peers"] = PeerDictionaries(result);
    return Bencode(reply);
  }
  std::string peers, peers6;
  for (const auto& peer : result.peers) AppendCompact(peer, peer.address.v6 ? peers6 : peers);
  reply["peers"] = std::move(peers);
  if (!peers6.empty()) reply["peers6"] = std::move(peers6);
  return Bencode(reply);
}

std::string EncodeAnnounceFailure(const std::string& reason) {
  lt::entry reply(lt::entry::dictionary_t);
  reply["failure reason"] = reason;
  return Bencode(reply);
}

}  // namespace flotilla::tracker
