#include "node/daemon/bundle_fleet.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <memory>

#include "core/file_io.h"
#include "metadata/release_floor.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "node/daemon/enrolment.h"
#include "node/daemon/fleet_follower.h"

namespace flotilla::node {
namespace {

namespace fs = std::filesystem;

// A copy of the trusted fleet metadata to verify the carried files on, so
// nothing of <data_dir>/fleet changes before the import decides.
Status CopyFleetTrust(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(CreateDirectories(to, 0700));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(from, ec)) {
    if (e.is_symlink() || !e.is_regular_file()) continue;
    fs::copy_file(e.path(), to + "/" + e.path().filename().string(), ec);
    if (ec) return Internal("copy " + e.path().string() + ": " + ec.message());
  }
  if (ec) return Internal("read " + from + ": " + ec.message());
  return Status::Ok();
}

Result<CarriedFleetFiles> ReadCarried(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxBundleFleetBytes + (64 << 10)));
  ASSIGN_OR_RETURN(Json json, ParseJsonStrict(text));
  return ParseCarriedFleetFiles(json, kMaxBundleFleetFiles, kMaxBundleFleetBytes);
}

std::string Refusal(const FleetDocument& document, uint64_t document_version,
                    const metadata::Release& release) {
  auto chosen = document.apps.find(release.app);
  if (chosen == document.apps.end()) {
    return fmt::format(
        "this device's fleet document (v{}) assigns it no release of {}: release {} is not "
        "deployed",
        document_version, release.app, release.version);
  }
  return fmt::format(
      "the fleet holds this device at {} release {} (its fleet document v{}: a pin, a recall or "
      "a rollout wave), not release {}: release {} is not deployed",
      release.app, chosen->second.release, document_version, release.version, release.version);
}

}  // namespace

bool IsBundleFleetFileName(std::string_view name) {
  if (!name.ends_with(".json")) return false;
  const std::string_view id = name.substr(0, name.size() - 5);
  return !id.empty() && id.size() <= 64 && id[0] != '.' &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

Result<std::optional<BundleFleetVerdict>> CheckBundleFleet(
    const NodeConfig& config, const std::string& staging, const std::string& staged_image_tuf,
    const metadata::Release& release, const Clock& clock, const metadata::Release* offline_release,
    std::string& why_not) {
  const DataLayout layout(config.data_dir);
  auto credentials = LoadCredentials(layout.credentials());
  if (!credentials.ok()) {
    why_not = "this node is not enrolled: no fleet document of the bundle is its own";
    return std::optional<BundleFleetVerdict>();
  }
  const std::string carried_path = staging + "/fleet/" + credentials->device_id + ".json";
  if (!IsBundleFleetFileName(credentials->device_id + ".json") || !PathExists(carried_path)) {
    why_not =
        "the bundle carries no fleet document for this device (" + credentials->device_id + ")";
    return std::optional<BundleFleetVerdict>();
  }
  const std::string fleet_dir = layout.root + "/fleet";
  if (!PathExists(fleet_dir + "/tuf/root.json")) {
    why_not = "this node trusts no fleet root yet: the bundle's fleet document is not used";
    return std::optional<BundleFleetVerdict>();
  }
  constexpr std::string_view kDoesNotVerify =
      "this device's fleet files in the bundle do not verify against its trusted fleet metadata";
  ASSIGN_OR_RETURN(CarriedFleetFiles carried,
                   ReadCarried(carried_path).WithContext(std::string(kDoesNotVerify)));
  const std::string staged_fleet = staging + "/fleet-tuf";
  RETURN_IF_ERROR(CopyFleetTrust(fleet_dir + "/tuf", staged_fleet));
  metadata::DirectoryRemote image_remote(staged_image_tuf, "");
  ASSIGN_OR_RETURN(auto image,
                   TrustedImageMetadata(staged_image_tuf, image_remote, clock, offline_release));
  NoNetworkRemote no_network;
  CarriedRemote remote(carried, no_network);
  const FleetCheckContext context{.device_id = credentials->device_id,
                                  .floor = &metadata::TrustedFloor,
                                  .device_key_path = layout.device_key()};
  ASSIGN_OR_RETURN(VerifiedFleet verified,
                   VerifyFleetRepository(staged_fleet, staging + "/fleet-targets", remote, *image,
                                         context, clock, "fleet repository", offline_release)
                       .WithContext(std::string(kDoesNotVerify)));
  BundleFleetVerdict verdict{.carried = std::move(carried),
                             .document_version = verified.accepted.targets_version};
  auto chosen = verified.releases.find(release.app);
  if (chosen == verified.releases.end() || chosen->second.version != release.version) {
    verdict.refusal = Refusal(verified.accepted.document, verdict.document_version, release);
  }
  return std::optional(std::move(verdict));
}

Status CommitBundleFleet(const NodeConfig& config, const CarriedFleetFiles& carried,
                         const Clock& clock, const metadata::Release* offline_release) {
  const DataLayout layout(config.data_dir);
  ASSIGN_OR_RETURN(DeviceCredentials credentials, LoadCredentials(layout.credentials()));
  metadata::DirectoryRemote image_remote(layout.tuf(), "");
  ASSIGN_OR_RETURN(auto image,
                   TrustedImageMetadata(layout.tuf(), image_remote, clock, offline_release));
  NoNetworkRemote no_network;
  CarriedRemote remote(carried, no_network);
  const std::string fleet_dir = layout.root + "/fleet";
  const FleetCheckContext context{.device_id = credentials.device_id,
                                  .floor = &metadata::TrustedFloor,
                                  .device_key_path = layout.device_key()};
  ASSIGN_OR_RETURN(
      VerifiedFleet verified,
      VerifyFleetRepository(fleet_dir + "/tuf", fleet_dir + "/targets", remote, *image, context,
                            clock, "fleet repository (files the bundle carried)", offline_release));
  verified.accepted.accepted_unix =
      std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
  return SaveAcceptedFleet(fleet_dir, verified.accepted);
}

}  // namespace flotilla::node
