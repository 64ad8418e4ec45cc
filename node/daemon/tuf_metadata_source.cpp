#include "node/daemon/tuf_metadata_source.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <vector>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "metadata/offline_window.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/trusted_store.h"
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

// The releases of `releases` that the client may use: all when nothing had
// expired; else those whose offline validity window covers the refresh's
// start (each refused one logged), the time floor raised to the earliest
// start of theirs (metadata::ApplyOfflineWindow). None: the first refusal.
Result<std::map<std::string, metadata::Release>> UsableOffline(
    metadata::TufClient& client, std::map<std::string, metadata::Release> releases) {
  if (!client.stale_since()) return releases;
  std::vector<const metadata::Release*> usable;
  std::optional<Status> first_refusal;
  for (auto it = releases.begin(); it != releases.end();) {
    Status window = metadata::CheckOfflineWindow(it->second, client.root(), client.update_start());
    if (window.ok()) {
      usable.push_back(&it->second);
      ++it;
      continue;
    }
    spdlog::info("expired metadata: {}", window.ToString());
    if (!first_refusal) first_refusal = window;
    it = releases.erase(it);
  }
  if (usable.empty()) {
    return first_refusal ? *first_refusal
                         : FailedPrecondition("the metadata expired and names no release");
  }
  RETURN_IF_ERROR(metadata::ApplyOfflineWindow(client, usable));
  return releases;
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
  if (!origin) return RefreshFromNeighbour(base_url);
  HttpRemote remote(base_url, "", HttpOptionsFor(config_));
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

Result<std::map<std::string, metadata::Release>> TufMetadataSource::RefreshFromNeighbour(
    const std::string& base_url) {
  // The follower asks a neighbour only when the tracker is unreachable, so
  // offline validity windows count; what needed one is verified on a copy of
  // tuf/ first and becomes trusted only once a window covers it.
  HttpRemote neighbour(base_url, "", LanHttpOptionsFor(config_));
  metadata::RecordingRemote recording(neighbour);
  const std::string staging = layout_.root + "/tmp/lan-tuf";
  std::unique_lock<std::mutex> lock(trusted_dir_lock_);
  std::error_code ec;
  std::filesystem::remove_all(staging, ec);
  RETURN_IF_ERROR(metadata::CopyTrustedDirectory(layout_.tuf(), staging));
  {
    ASSIGN_OR_RETURN(auto copy, metadata::TufClient::Open(staging, recording, clock_));
    copy->AllowOfflineWindow();
    RETURN_IF_ERROR(copy->Refresh());
    ASSIGN_OR_RETURN(auto releases, metadata::TrustedReleases(*copy));
    RETURN_IF_ERROR(UsableOffline(*copy, std::move(releases)).status());
  }
  std::filesystem::remove_all(staging, ec);
  // The same bytes, now into tuf/.
  metadata::MemoryRemote verified(recording.files());
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), verified, clock_));
  client->AllowOfflineWindow();
  RETURN_IF_ERROR(client->Refresh());
  std::vector<Status> refused;
  ASSIGN_OR_RETURN(auto releases, metadata::TrustedReleases(*client, &refused));
  ASSIGN_OR_RETURN(releases, UsableOffline(*client, std::move(releases)));
  lock.unlock();
  for (const Status& role : refused) spdlog::warn("metadata from a neighbour: {}", role.ToString());
  PublishServedVersions();
  return releases;
}

Result<std::map<std::string, metadata::Release>> TufMetadataSource::VerifyTrustedOnDisk(
    metadata::OfflineWindowUse offline) {
  metadata::DirectoryRemote remote(layout_.tuf(), "");
  std::lock_guard<std::mutex> lock(trusted_dir_lock_);
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), remote, clock_));
  if (offline == metadata::OfflineWindowUse::kAllowed) client->AllowOfflineWindow();
  RETURN_IF_ERROR(client->Refresh());
  ASSIGN_OR_RETURN(auto releases, metadata::TrustedReleases(*client));
  return UsableOffline(*client, std::move(releases));
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
