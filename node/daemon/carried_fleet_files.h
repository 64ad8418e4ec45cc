// Fleet files carried by a notice answer (docs/tracker.md, "Notice": the
// answer to a request with `files=1`).
//
// When a device's fleet repository moved, the tracker may put its new
// files in the answer itself: the timestamp, snapshot and targets metadata
// and the fleet document, each as the exact bytes the fleet route serves,
// and the newest fleet root version it offers. The fleet follower then runs
// its one TUF refresh against CarriedRemote, which answers from those
// bytes, so every file is verified by the same client code as a fetched one
// (signatures, thresholds, versions, expiry, the lengths and hashes each
// role names) and nothing is trusted because of the channel.
//
// The root version lets CarriedRemote answer "not found" for a root above
// it, as the fleet route itself would (it offers no root newer than the one
// the device's roles are signed under): the TUF client's N+1.root.json probe
// costs no exchange while the tracker signs under the root the node
// trusts, and a newer root is fetched over the network as before. A file
// the answer does not carry is fetched over the network too.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/canonical_json.h"
#include "core/status.h"
#include "metadata/remote_repository.h"

namespace flotilla::node {

struct CarriedFleetFiles {
  uint64_t root = 0;  // the newest fleet root version the tracker offers the device
  std::map<std::string, std::string> metadata;  // timestamp.json, N.snapshot.json, N.targets.json
  std::map<std::string, std::string> targets;   // <sha256>.device.json
};

// Bounds: files carried and their bytes together.
inline constexpr size_t kMaxCarriedFiles = 8;
inline constexpr uint64_t kMaxCarriedBytes = 32 << 10;

// The notice answer's `fleet_files` member: `root` (unsigned), `metadata`
// and `targets` (objects of strings) within the bounds given (a notice's
// above; an offline bundle's are wider: it may carry fleet root versions).
Result<CarriedFleetFiles> ParseCarriedFleetFiles(const Json& json,
                                                 size_t max_files = kMaxCarriedFiles,
                                                 uint64_t max_bytes = kMaxCarriedBytes);

// The device's fleet repository as `carried` and, for anything else,
// `network`. Both must outlive it.
class CarriedRemote final : public metadata::RemoteRepository {
 public:
  CarriedRemote(const CarriedFleetFiles& carried, metadata::RemoteRepository& network)
      : carried_(carried), network_(network) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override;

  // Requests that went to the network.
  int network_fetches() const { return network_fetches_; }

 private:
  const CarriedFleetFiles& carried_;
  metadata::RemoteRepository& network_;
  int network_fetches_ = 0;
};

// No network at all (an offline bundle's fleet files): every request
// answers Unavailable naming the file, which the bundle did not carry.
class NoNetworkRemote final : public metadata::RemoteRepository {
 public:
  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override;
};

}  // namespace flotilla::node
