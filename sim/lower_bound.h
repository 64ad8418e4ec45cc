// A lower bound for a scenario's T95 (the time until 95% of all devices run
// the release): what no distribution strategy can beat on that topology.
// The derivation, worked on the city scenario, is in docs/sim.md, "A lower bound for T95".
//
// Bytes: a device needs, for every layer of the release that the previous
// release lacks, the smallest artifact that rebuilds it from what it holds
// (the full artifact, or a delta whose bases the previous release has).
// Those `release_min_bytes` must cross each site's WAN downlink at least
// once (its devices can get them nowhere else: a NAT'd site is reachable
// from no other, and even an open site's devices must receive them over
// their own WAN), and leave the origin at least once per NAT'd site (none
// of them can receive from another site) plus once if any site is open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"
#include "sim/scenario.h"

namespace flotilla::sim {

struct T95LowerBound {
  uint64_t release_min_bytes = 0;  // per site, over its WAN downlink
  double site_wan_s = 0;           // slowest site: RTT floor + slow-start-limited delivery
  double origin_s = 0;             // the origin's uplink sending its minimum copies
  double churn_s = 0;              // the 95th-percentile device held back by churn (0: none)
  double t95_s = 0;                // max of the three
  std::string binding;             // "site WAN downlink", "origin uplink" or "churn"
};

// The `flotilla` object of release `version` of `app` in a tracker
// repository (`targets/apps/<app>/<hash>.release-<version>.json`).
Result<Json> ReadReleaseFile(const std::string& repo, const std::string& app, uint64_t version);

// The smallest bytes that bring a device from release `version - 1` (none
// when `version` is 1) to `version` of `app`, read from the tracker
// repository's release files.
Result<uint64_t> MinimalReleaseBytes(const std::string& repo, const std::string& app,
                                     uint64_t version);

// Seconds to deliver `bytes` of payload over one TCP connection on a path
// with round trip `rtt_s` and bottleneck `rate_kbit` (L2): one RTT for the
// handshake, one for the request and first reply, then windows starting at
// 10 segments and doubling each RTT until they fill the path, then the rate
// (at the best payload per frame, 1472 of 1514 bytes). Losses ignored.
double DeliverySeconds(uint64_t bytes, double rtt_s, uint64_t rate_kbit);

T95LowerBound ComputeT95LowerBound(const Scenario& scenario, uint64_t release_min_bytes);

// to_json (nlohmann): an object of the fields by their names.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(T95LowerBound, release_min_bytes, site_wan_s, origin_s, churn_s,
                                   t95_s, binding)

}  // namespace flotilla::sim
