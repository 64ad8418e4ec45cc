// The tracker client library: how a device, the simulator, an operator tool
// or a test talks to flotilla-tracker over HTTP (endpoints and formats:
// docs/tracker.md). Requests and replies are the typed structs of
// tracker/api/, whose JSON is built and read there only.
//
// Errors are http::Client's (401/403 PermissionDenied, 404 NotFound, other
// 4xx InvalidArgument, 5xx and unreachable Unavailable, timeouts
// DeadlineExceeded), with the tracker's reason in the message; secrets never
// appear in a message.
//
// Thread-safety: one thread at a time (the client keeps its connection open
// between calls).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/http_client.h"
#include "tracker/api/device_report.h"
#include "tracker/api/enrolment.h"
#include "tracker/api/fleet.h"

namespace flotilla::tracker {

class TrackerClient {
 public:
  // `base_url`: the tracker's URL, http(s)://host:port (a trailing '/' is fine).
  explicit TrackerClient(std::string base_url, http::ClientOptions options = {});

  // POST /api/v1/enroll: an enrolment token (and, signed, the device's key:
  // SignEnrolRequest) for the device's credentials. Refusals
  // (docs/identity.md): PermissionDenied (403) for a token refused, a bad
  // signature or a replay, InvalidArgument naming 409 for a name taken.
  Result<DeviceCredentials> Enrol(const EnrolRequest& request);
  // POST /api/v1/devices/ID/key, authorised by the device's credential:
  // binds the key of a device enrolled without one (docs/identity.md).
  // NotFound (404) from a tracker that predates it; InvalidArgument naming
  // 409 when another key is bound; PermissionDenied (403) for a bad or
  // stale signature or a decommissioned key.
  Status BindKey(const DeviceCredentials& device, const KeyBinding& binding);
  // POST /api/v1/devices/ID/report, authorised by the device's credential.
  // `newest_log_request` (when given) receives the newest log request open
  // for the device (the answer's X-Flotilla-Logs, docs/logs.md; 0: none).
  Status Report(const DeviceCredentials& device, const DeviceReport& report,
                uint64_t* newest_log_request = nullptr);
  // GET /api/v1/devices/ID/logs: the log requests open for the device.
  struct LogRequestInfo {
    int64_t id = 0;
    std::string app;
    int64_t since_s = 0;
  };
  Result<std::vector<LogRequestInfo>> PendingLogRequests(const DeviceCredentials& device);
  // POST /api/v1/devices/ID/logs/REQUEST_ID: the log answering a request.
  Status UploadLog(const DeviceCredentials& device, int64_t request_id, std::string_view log);
  // GET /api/v1/fleet: devices with their latest reports, releases, recent
  // failures. `max_bytes` bounds the answer.
  Result<FleetSnapshot> Fleet(size_t max_bytes = 64 << 20);

  // Where the tracker serves each thing.
  std::string MetadataUrl(std::string_view name) const;
  std::string ArtifactUrl(std::string_view sha256_hex) const;
  // With a passkey: the copy whose announce URL carries it.
  std::string TorrentUrl(std::string_view sha256_hex, std::string_view passkey = {}) const;
  std::string AnnounceUrl(std::string_view passkey) const;
  const std::string& base_url() const { return base_; }

 private:
  std::string base_;
  http::Client http_;
};

}  // namespace flotilla::tracker
