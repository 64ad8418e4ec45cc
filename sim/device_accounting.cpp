#include "sim/device_accounting.h"

#include <fmt/format.h>

#include <map>

#include "sim/command.h"

namespace flotilla::sim {
namespace {

constexpr const char* kTable = "fsim_acct";

}  // namespace

std::string DeviceAccountingRules(const std::string& lan_prefix,
                                  const std::string& origin_address) {
  // Rules are evaluated in order; the first `counter name ... accept` wins.
  return fmt::format(
      "table inet {0}\n"
      "delete table inet {0}\n"
      "table inet {0} {{\n"
      "  counter rx_origin {{}}\n"
      "  counter rx_lan {{}}\n"
      "  counter rx_wan_peers {{}}\n"
      "  counter tx_lan {{}}\n"
      "  counter tx_wan {{}}\n"
      "  chain input {{ type filter hook input priority -300; policy accept;\n"
      "    iifname \"lo\" accept\n"
      "    ip saddr {2} counter name rx_origin accept\n"
      "    ip saddr {1} counter name rx_lan accept\n"
      "    counter name rx_wan_peers\n"
      "  }}\n"
      "  chain output {{ type filter hook output priority -300; policy accept;\n"
      "    oifname \"lo\" accept\n"
      "    ip daddr {1} counter name tx_lan accept\n"
      "    counter name tx_wan\n"
      "  }}\n"
      "}}\n",
      kTable, lan_prefix, origin_address);
}

Status InstallDeviceAccounting(const std::string& ns, const std::string& lan_prefix,
                               const std::string& origin_address) {
  return RunChecked(InNetns(ns, {"nft", "-f", "-"}),
                    DeviceAccountingRules(lan_prefix, origin_address))
      .status();
}

Result<DeviceTraffic> ReadDeviceAccounting(const std::string& ns) {
  ASSIGN_OR_RETURN(
      std::string out,
      RunChecked(InNetns(ns, {"nft", "-j", "list", "counters", "table", "inet", kTable})));
  return ParseDeviceAccounting(out);
}

Result<DeviceTraffic> ParseDeviceAccounting(const std::string& nft_json) {
  Json doc = Json::parse(nft_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) {
    return InvalidArgument("nft printed no nftables JSON document");
  }
  std::map<std::string, uint64_t> bytes;
  for (const Json& item : doc["nftables"]) {
    if (!item.is_object() || !item.contains("counter")) continue;
    const Json& c = item["counter"];
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string() || !c.contains("bytes") ||
        !c["bytes"].is_number_unsigned()) {
      return InvalidArgument("nft counter without a name or byte count");
    }
    bytes[c["name"].get<std::string>()] = c["bytes"].get<uint64_t>();
  }
  DeviceTraffic t;
  std::pair<const char*, uint64_t*> fields[] = {{"rx_origin", &t.rx_origin},
                                                {"rx_lan", &t.rx_lan},
                                                {"rx_wan_peers", &t.rx_wan_peers},
                                                {"tx_lan", &t.tx_lan},
                                                {"tx_wan", &t.tx_wan}};
  for (auto& [name, field] : fields) {
    auto it = bytes.find(name);
    if (it == bytes.end()) return NotFound(fmt::format("nft counter {} is missing", name));
    *field = it->second;
  }
  return t;
}

}  // namespace flotilla::sim
