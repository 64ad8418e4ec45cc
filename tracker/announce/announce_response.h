// Bencoded tracker responses (BEP 3; compact peers BEP 23; peers6 BEP 7).
#pragma once

#include <string>

#include "tracker/announce/swarm_registry.h"

namespace flotilla::tracker {

struct AnnounceTiming {
  int interval_s = 1800;
  int min_interval_s = 60;
};

// `peers` is a 6-byte-per-peer string (IPv4) and `peers6` an 18-byte one
// (IPv6) when compact, else a list of {ip, port, peer id} dictionaries.
std::string EncodeAnnounceResponse(const AnnounceResult& result, bool compact,
                                   const AnnounceTiming& timing);

// {"failure reason": reason}
std::string EncodeAnnounceFailure(const std::string& reason);

}  // namespace flotilla::tracker
