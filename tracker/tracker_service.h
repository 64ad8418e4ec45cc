// The tracker's HTTP endpoints (docs/tracker.md lists each with examples):
//
//   GET  /metadata/<name>                 signed metadata, as stored
//   GET  /artifacts/<hex>[/<hex>]         artifact bytes, Range supported (web seed)
//   GET  /torrents/<hex>.torrent[?passkey=P]  the artifact's torrent (personalised with P)
//   GET  /announce/<passkey>?...          BitTorrent HTTP tracker (BEP 3/23/52)
//   POST /api/v1/enroll                   fleet token -> device id, credential, passkey
//   POST /api/v1/devices/<id>/report      device status (Authorization: Bearer <credential>)
//   GET  /  (or /dashboard)               the fleet dashboard (HTML)
//   GET  /metrics                         Prometheus metrics
//   GET  /healthz                         "ok"
//
// Not thread-safe: Handle runs on the server's one network thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "tracker/announce_response.h"
#include "tracker/device_db.h"
#include "tracker/http_server.h"
#include "tracker/metrics.h"
#include "tracker/repository.h"
#include "tracker/swarm_registry.h"

namespace flotilla::tracker {

struct TrackerServiceOptions {
  RepositoryLayout repo;
  std::string public_url;          // base of announce URLs handed to devices
  std::string fleet_token_sha256;  // hex; empty: enrolment disabled
  AnnounceTiming timing;
  SwarmLimits swarm;
};

class TrackerService {
 public:
  TrackerService(TrackerServiceOptions options, DeviceDb& db, const Clock& clock);

  HttpReply Handle(const HttpRequest& request, const RequestContext& context);

  const SwarmRegistry& swarms() const { return swarms_; }
  TrackerMetrics& metrics() { return metrics_; }

 private:
  struct RequestTarget {
    std::string_view path;
    std::string_view query;
    std::vector<std::string_view> parts;  // path split at '/', not decoded
  };
  // `route` receives the metrics label of the endpoint.
  HttpReply Route(const HttpRequest& request, const RequestContext& context, std::string& route);
  std::optional<HttpReply> RouteContent(const HttpRequest& request, const RequestContext& context,
                                        const RequestTarget& target, std::string& route);
  HttpReply RouteApiAndPages(const HttpRequest& request, const RequestTarget& target,
                             std::string& route);
  HttpReply ServeMetadata(std::string_view name);
  HttpReply ServeArtifact(std::string_view hex, const HttpRequest& request);
  HttpReply ServeTorrent(std::string_view file, std::string_view query);
  HttpReply Announce(std::string_view passkey, std::string_view query,
                     const RequestContext& context);
  HttpReply Enroll(const HttpRequest& request);
  HttpReply Report(std::string_view device_id, const HttpRequest& request);
  HttpReply Dashboard();
  HttpReply Metrics();

  const TrackerServiceOptions options_;
  DeviceDb& db_;
  const Clock& clock_;
  SwarmRegistry swarms_;
  TrackerMetrics metrics_;
};

}  // namespace flotilla::tracker
