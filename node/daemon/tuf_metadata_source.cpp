#include "node/daemon/tuf_metadata_source.h"

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"
#include "node/daemon/http_call.h"

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

}  // namespace

Result<std::map<std::string, metadata::Release>> TufMetadataSource::Refresh(
    const std::string& base_url) {
  HttpMetadataRemote remote(base_url, config_.tls_ca_file);
  ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(layout_.tuf(), remote, clock_));
  RETURN_IF_ERROR(client->Refresh());
  ASSIGN_OR_RETURN(auto releases, metadata::LatestReleases(*client->targets()));
  PublishServedVersions();
  return releases;
}

uint64_t TufMetadataSource::TrustedTimestampVersion() {
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
