#include "node/daemon/tuf_metadata_source.h"

#include <spdlog/spdlog.h>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::node {
namespace {

// signed.version of a trusted metadata file (verified when it was stored), 0 if absent.
uint64_t TrustedVersion(const std::string& path) {
  auto text = ReadTextFileBounded(path, 8 << 20);
  if (!text.ok()) return 0;
  auto json = ParseJsonStrict(*text);
  if (!json.ok()) return 0;
  try {
    return json->at("signed").at("version").get<uint64_t>();
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

Result<std::string> HttpRemote::FetchMetadata(const std::string& name, uint64_t max_bytes) {
  ASSIGN_OR_RETURN(
      http::Response response,
      client_.Fetch({.url = http::JoinUrl(metadata_url_, metadata::PercentEncode(name)),
                     .max_body_bytes = max_bytes}));
  return std::move(response.body);
}

Status HttpRemote::FetchTarget(const std::string& url_path, uint64_t max_bytes,
                               const std::string& dest_path) {
  if (target_base_url_.empty()) return InvalidArgument("no target base URL given");
  return client_.FetchToFile(
      {.url = http::JoinUrl(target_base_url_, url_path), .max_body_bytes = max_bytes}, dest_path);
}

Result<std::map<std::string, metadata::Release>> TufMetadataSource::Refresh(
    const std::string& base_url) {
  // The content origin through the configured proxy; a LAN neighbour directly.
  const bool origin = base_url.rfind(config_.content_url + "/", 0) == 0;
  HttpRemote remote(base_url, "", origin ? HttpOptionsFor(config_) : LanHttpOptionsFor(config_));
  std::unique_lock<std::mutex> lock(trusted_dir_lock_);
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), remote, clock_));
  RETURN_IF_ERROR(client->Refresh());
  std::vector<Status> refused;
  ASSIGN_OR_RETURN(auto releases, metadata::TrustedReleases(*client, &refused));
  lock.unlock();
  for (const Status& role : refused) spdlog::warn("metadata refresh: {}", role.ToString());
  PublishServedVersions();
  return releases;
}

Result<std::map<std::string, metadata::Release>> TufMetadataSource::VerifyTrustedOnDisk() {
  metadata::DirectoryRemote remote(layout_.tuf(), "");
  std::lock_guard<std::mutex> lock(trusted_dir_lock_);
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), remote, clock_));
  RETURN_IF_ERROR(client->Refresh());
  return metadata::TrustedReleases(*client);
}

Result<uint64_t> TufMetadataSource::TrustedFloorOnDisk(const std::string& app) {
  metadata::DirectoryRemote remote(layout_.tuf(), "");
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), remote, clock_));
  RETURN_IF_ERROR(client->Refresh());
  return metadata::TrustedFloor(*client, app);
}

uint64_t TufMetadataSource::TrustedTimestampVersion() {
  // Each file is replaced by a rename: a read sees the old or the new one.
  return TrustedVersion(layout_.tuf() + "/timestamp.json");
}

std::vector<Neighbour> TufMetadataSource::Neighbours() {
  return lan_ ? lan_->Neighbours() : std::vector<Neighbour>{};
}

void TufMetadataSource::PublishServedVersions() {
  if (!lan_) return;
  ServedMetadata served;
  served.root_version = TrustedVersion(layout_.tuf() + "/root.json");
  served.timestamp_version = TrustedTimestampVersion();
  served.snapshot_version = TrustedVersion(layout_.tuf() + "/snapshot.json");
  served.targets_version = TrustedVersion(layout_.tuf() + "/targets.json");
  lan_->SetServed(served);
}

}  // namespace flotilla::node
