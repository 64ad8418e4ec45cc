// The daemon's metadata side: enrolment, TUF refresh from the tracker or a
// LAN neighbour, and the releases of followed apps it yields.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"
#include "node/daemon/http_call.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {
namespace {

// TUF metadata over HTTP(S) from the tracker or a neighbour's exchange endpoint.
class HttpMetadataRemote final : public metadata::RemoteRepository {
 public:
  HttpMetadataRemote(std::string base, std::string ca_file)
      : base_(std::move(base)), ca_file_(std::move(ca_file)) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    HttpCall call;
    call.url = base_ + "/" + metadata::PercentEncode(name);
    call.max_body_bytes = max_bytes;
    call.ca_file = ca_file_;
    call.connect_timeout = std::chrono::seconds(5);
    call.read_timeout = std::chrono::seconds(15);
    return HttpCallText(call);
  }
  Status FetchTarget(const std::string&, uint64_t, const std::string&) override {
    return FailedPrecondition("the daemon fetches artifacts through its fetcher, not as targets");
  }

 private:
  std::string base_;
  std::string ca_file_;
};

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

bool IsUnreachable(const Status& st) {
  return st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace

Status NodeDaemon::RefreshFrom(const std::string& metadata_url) {
  HttpMetadataRemote remote(metadata_url, config_.tls_ca_file);
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), remote, clock_));
  RETURN_IF_ERROR(client->Refresh());
  ASSIGN_OR_RETURN(auto releases, metadata::LatestReleases(*client->targets()));
  PublishServedVersions();
  OnReleases(releases);
  return Status::Ok();
}

Status NodeDaemon::RefreshMetadata() {
  if (!credentials_) {
    auto creds = EnsureEnrolled(config_, layout_);
    if (creds.ok()) {
      credentials_ = *creds;
      spdlog::info("enrolled as {} ({})", config_.device_name, creds->device_id);
      if (config_.transfer_mode == TransferMode::kP2p) {
        // The fetcher started without the tracker (it was unreachable at
        // start): reopen it with the announce URL; verified pieces and
        // resume data stay on disk, so transfers continue where they were.
        Status reopened = ReopenFetcher();
        if (!reopened.ok()) spdlog::warn("{}", reopened.ToString());
      }
    } else {
      AddError("enrolment: " + creds.status().ToString());
    }
  }
  Status from_tracker = RefreshFrom(config_.tracker_url + "/metadata");
  if (from_tracker.ok() || !lan_ || !IsUnreachable(from_tracker)) {
    return from_tracker.WithContext("from the tracker");
  }
  const uint64_t ours = TrustedVersion(layout_.tuf() + "/timestamp.json");
  for (const Neighbour& n : lan_->Neighbours()) {
    if (n.timestamp_version <= ours) continue;
    Status from_neighbour = RefreshFrom(n.http_base + "/metadata");
    if (from_neighbour.ok()) {
      spdlog::info("tracker unreachable; metadata timestamp v{} taken from neighbour {}",
                   n.timestamp_version, n.device);
      return Status::Ok();
    }
    spdlog::warn("neighbour {}: {}", n.device, from_neighbour.ToString());
  }
  return from_tracker.WithContext("from the tracker (and no LAN neighbour had newer metadata)");
}

Duration NodeDaemon::NextRefreshDelay(bool succeeded) {
  using std::chrono::milliseconds;
  double base_ms;
  if (succeeded) {
    refresh_failures_ = 0;
    base_ms = config_.refresh_interval_s * 1000.0;
  } else {
    refresh_failures_ = std::min<uint32_t>(refresh_failures_ + 1, 30);
    base_ms = std::min(5000.0 * (1u << std::min<uint32_t>(refresh_failures_ - 1, 20)),
                       config_.max_backoff_s * 1000.0);
  }
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  return std::chrono::duration_cast<Duration>(
      milliseconds(static_cast<int64_t>(base_ms * jitter(random_))));
}

void NodeDaemon::PublishServedVersions() {
  if (!lan_) return;
  ServedMetadata served;
  served.root_version = TrustedVersion(layout_.tuf() + "/root.json");
  served.timestamp_version = TrustedVersion(layout_.tuf() + "/timestamp.json");
  served.snapshot_version = TrustedVersion(layout_.tuf() + "/snapshot.json");
  served.targets_version = TrustedVersion(layout_.tuf() + "/targets.json");
  lan_->SetServed(served);
}

void NodeDaemon::OnReleases(const std::map<std::string, metadata::Release>& releases) {
  for (const auto& app : config_.apps) {
    auto it = releases.find(app);
    if (it == releases.end()) continue;
    const AppState& a = state_.apps[app];
    const uint64_t version = it->second.version;
    if (version == a.failed_release) continue;
    if (version == a.ready_release && runtime_ && a.running_release != version &&
        !transfers_.count(app)) {
      // Ready but not running: a crash came between the fetch and the switch.
      releases_[app] = it->second;
      DeployReady(app);
      continue;
    }
    if (version <= a.ready_release) continue;
    auto known = releases_.find(app);
    if (known != releases_.end() && known->second.version == version && transfers_.count(app)) {
      continue;  // already being fetched
    }
    if (!RetryDue(app, version)) continue;  // failed lately for a passing reason
    spdlog::info("app {}: release {} is newer than {}", app, version, a.ready_release);
    StartRelease(app, it->second);
  }
}

}  // namespace flotilla::node
