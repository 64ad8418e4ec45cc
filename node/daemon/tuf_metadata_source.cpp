#include "node/daemon/tuf_metadata_source.h"

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "http/http_client.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::node {
namespace {

// TUF metadata over HTTP(S) from the tracker or a neighbour's exchange endpoint.
class HttpMetadataRemote final : public metadata::RemoteRepository {
 public:
  HttpMetadataRemote(std::string base, http::ClientOptions options)
      : base_(std::move(base)), client_(std::move(options)) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(http::Response response,
                     client_.Fetch({.url = base_ + "/" + metadata::PercentEncode(name),
                                    .max_body_bytes = max_bytes}));
    return std::move(response.body);
  }
  Status FetchTarget(const std::string&, uint64_t, const std::string&) override {
    return FailedPrecondition("the daemon fetches artifacts through its fetcher, not as targets");
  }

 private:
  std::string base_;
  http::Client client_;
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
  HttpMetadataRemote remote(base_url, HttpOptionsFor(config_));
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
