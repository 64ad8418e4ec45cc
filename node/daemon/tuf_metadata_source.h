// The daemon's MetadataSource: the TUF client over HTTP(S), from the tracker
// or a LAN neighbour's exchange endpoint, trusting <data_dir>/tuf. After
// every refresh the LAN exchange serves (and beacons) the versions now trusted.
#pragma once

#include "core/clock.h"
#include "node/daemon/lan_exchange.h"
#include "node/daemon/metadata_follower.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {

class TufMetadataSource final : public MetadataSource {
 public:
  // `lan` may be null (LAN exchange off); it must outlive this source.
  TufMetadataSource(const NodeConfig& config, const Clock& clock, LanExchange* lan)
      : config_(config), layout_(config.data_dir), clock_(clock), lan_(lan) {}

  Result<DeviceCredentials> Enrol() override { return EnsureEnrolled(config_, layout_); }
  Result<std::map<std::string, metadata::Release>> Refresh(const std::string& base_url) override;
  uint64_t TrustedTimestampVersion() override;
  std::vector<Neighbour> Neighbours() override;
  // Tells the LAN exchange which trusted versions it serves.
  void PublishServedVersions();

 private:
  const NodeConfig& config_;
  DataLayout layout_;
  const Clock& clock_;
  LanExchange* lan_;
};

}  // namespace flotilla::node
