// Ground truth of where each device's bytes came from.
//
// Node counters say what a node believes; the simulation's report must not
// depend on them. Every device namespace gets an nftables table with named
// counters that classify each IP packet it receives by source address:
// from the origin (the cloud namespace, where the tracker runs), from its own
// site's LAN (a neighbour), or from anywhere else (a peer in another site,
// reached over both WAN links). Sent bytes are split into LAN and WAN the
// same way. Byte counts are IP packet lengths (headers included), as the
// interface counters are.
#pragma once

#include <cstdint>
#include <string>

#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla::sim {

struct DeviceTraffic {
  uint64_t rx_origin = 0;     // from the cloud (tracker: metadata, web seed, announces)
  uint64_t rx_lan = 0;        // from the device's own site LAN (neighbours, the router)
  uint64_t rx_wan_peers = 0;  // from other sites' devices
  uint64_t tx_lan = 0;        // to the site LAN
  uint64_t tx_wan = 0;        // to anything beyond the site router
  friend bool operator==(const DeviceTraffic&, const DeviceTraffic&) = default;
};

// The nft script that installs the counters in a device of site LAN
// `lan_prefix` (e.g. "10.1.0.0/24") with the origin at `origin_address`.
std::string DeviceAccountingRules(const std::string& lan_prefix, const std::string& origin_address);

// Installs the counters in namespace `ns`, replacing earlier ones (zeroed).
Status InstallDeviceAccounting(const std::string& ns, const std::string& lan_prefix,
                               const std::string& origin_address);

// Reads them (one `nft -j` call).
Result<DeviceTraffic> ReadDeviceAccounting(const std::string& ns);

// Parses the JSON of `nft -j list counters table inet fsim_acct`.
Result<DeviceTraffic> ParseDeviceAccounting(const std::string& nft_json);

// to_json (nlohmann): an object of the five counters by their names.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeviceTraffic, rx_origin, rx_lan, rx_wan_peers, tx_lan, tx_wan)

}  // namespace flotilla::sim
