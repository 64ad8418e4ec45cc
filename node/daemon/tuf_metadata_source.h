// The daemon's MetadataSource: the TUF client over HTTP(S), from the tracker
// or a LAN neighbour's exchange endpoint, trusting <data_dir>/tuf. After
// every refresh the LAN exchange serves (and beacons) the versions now trusted.
// Releases come from the top-level targets and the roles it delegates
// (metadata::TrustedReleases: each path-checked by the target search).
#pragma once

#include <mutex>

#include "core/clock.h"
#include "http/http_client.h"
#include "metadata/offline_window.h"
#include "metadata/remote_repository.h"
#include "node/daemon/lan_exchange.h"
#include "node/daemon/metadata_follower.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {

// A TUF repository over HTTP(S): metadata under `metadata_url` (the tracker's
// or a neighbour's), targets under `target_base_url` ("": none; the daemon
// fetches artifacts through its fetchers, not as targets).
class HttpRemote final : public metadata::RemoteRepository {
 public:
  HttpRemote(std::string metadata_url, std::string target_base_url,
             http::ClientOptions options = {})
      : metadata_url_(std::move(metadata_url)),
        target_base_url_(std::move(target_base_url)),
        client_(std::move(options)) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override;

 private:
  std::string metadata_url_;
  std::string target_base_url_;
  http::Client client_;
};

class TufMetadataSource final : public MetadataSource {
 public:
  // `lan` may be null (LAN exchange off); it must outlive this source.
  // `trusted_dir_lock` is held for every use of <data_dir>/tuf here, from
  // reading the trusted state to storing what was verified; the import takes
  // it to commit a bundle's metadata (bundle_import.h), so the two never
  // interleave and each refresh starts from what the last one stored.
  TufMetadataSource(const NodeConfig& config, const Clock& clock, LanExchange* lan,
                    std::mutex& trusted_dir_lock)
      : config_(config),
        layout_(config.data_dir),
        clock_(clock),
        lan_(lan),
        trusted_dir_lock_(trusted_dir_lock) {}

  Result<DeviceCredentials> Enrol() override { return EnsureEnrolled(config_, layout_); }
  Result<std::map<std::string, metadata::Release>> Refresh(const std::string& base_url) override;
  uint64_t TrustedTimestampVersion() override;
  // The releases the trusted metadata on disk names, verified again by the
  // TUF client with the trusted directory as its remote: no network, expiry
  // and the time floor still apply (docs/bundle.md). With `offline` allowed
  // (the tracker unreachable), expired metadata gives the releases whose
  // offline validity window covers now (docs/metadata.md).
  Result<std::map<std::string, metadata::Release>> VerifyTrustedOnDisk(
      metadata::OfflineWindowUse offline = metadata::OfflineWindowUse::kIgnored);
  // The floor of `app` its signers set (metadata::TrustedFloor; 0: none), in
  // the trusted metadata on disk, verified again as VerifyTrustedOnDisk does.
  // Reads only; safe on a worker lane.
  Result<uint64_t> TrustedFloorOnDisk(const std::string& app);
  std::vector<Neighbour> Neighbours() override;
  // Tells the LAN exchange which trusted versions it serves.
  void PublishServedVersions();

 private:
  // Refresh() from a LAN neighbour's exchange endpoint: offline validity
  // windows count, checked on a copy of tuf/ before tuf/ takes the bytes.
  Result<std::map<std::string, metadata::Release>> RefreshFromNeighbour(
      const std::string& base_url);

  const NodeConfig& config_;
  DataLayout layout_;
  const Clock& clock_;
  LanExchange* lan_;
  std::mutex& trusted_dir_lock_;
};

}  // namespace flotilla::node
