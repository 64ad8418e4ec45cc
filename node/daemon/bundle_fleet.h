// Fleet documents in an offline bundle (docs/bundle.md, "Fleet documents in
// a bundle"): the bundle may carry, per device, the files of the device's
// fleet repository (`fleet/<device-id>.json`, the form a notice answer
// carries them in). On import, a node that trusts a fleet root reads its own
// device's files, verifies them with the fleet follower's workflow
// (VerifyFleetRepository: the TUF refresh from its trusted fleet metadata, no
// rollback, expiry as online, then every check of the document against the
// bundle's verified image metadata) and finds whether the document names the
// bundle's release of the app:
//   - it does: the release is imported and deployed (through the
//     health-gated switch), the tracker not needed;
//   - it names another release, or none: the release is not deployed and
//     nothing is written to the store; the document is still accepted (it is
//     newer signed truth), so the node follows it;
//   - the bundle carries nothing for this device: as without fleet files.
// This file verifies on copies (under the import's staging directory); the
// commit of the fleet files to <data_dir>/fleet is the fleet follower's
// (FleetFollower::AcceptFromBundle on the running daemon's loop) or, on a
// stopped node, CommitBundleFleet under the data directory's lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "metadata/release.h"
#include "node/daemon/carried_fleet_files.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {

// Bounds of one device's fleet file in a bundle: its four files and the
// fleet root versions a node may have to walk.
inline constexpr size_t kMaxBundleFleetFiles = 64;
inline constexpr uint64_t kMaxBundleFleetBytes = 1 << 20;

// Whether `name` (after "fleet/") names a device's fleet file: "<id>.json",
// the id 1-64 characters of [A-Za-z0-9._-], not starting with '.'.
bool IsBundleFleetFileName(std::string_view name);

// What this device's carried fleet document says about the bundle's release.
struct BundleFleetVerdict {
  CarriedFleetFiles carried;      // to commit (the document is accepted either way)
  uint64_t document_version = 0;  // the fleet targets version that lists it
  // Empty: the document names the bundle's release. Else why the release is
  // not deployed (the import is refused with it).
  std::string refusal;
};

// Reads `<staging>/fleet/<this device's id>.json` and verifies it on a copy
// of <data_dir>/fleet/tuf (made under `staging`) against the image metadata
// trusted in `staged_image_tuf` (the bundle's, verified). nullopt with
// `why_not` set when the bundle's fleet files do not apply here: none for
// this device, the node not enrolled, or no fleet root trusted yet. An error
// when this device's files do not verify (the bundle is refused).
// `offline_release`: the import allows that release's offline window, and so
// does the check of the image metadata the document is checked against.
Result<std::optional<BundleFleetVerdict>> CheckBundleFleet(
    const NodeConfig& config, const std::string& staging, const std::string& staged_image_tuf,
    const metadata::Release& release, const Clock& clock, const metadata::Release* offline_release,
    std::string& why_not);

// On a stopped node, whose data directory's lock the caller holds: the
// carried files into <data_dir>/fleet/tuf through the same workflow, checked
// against <data_dir>/tuf, and the document stored as accepted.json, which the
// next `run` follows.
Status CommitBundleFleet(const NodeConfig& config, const CarriedFleetFiles& carried,
                         const Clock& clock, const metadata::Release* offline_release);

}  // namespace flotilla::node
