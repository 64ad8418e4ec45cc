// The log uploader: answers the operator's log requests (docs/logs.md).
//
// Told that a log request may be open (the report answer's X-Flotilla-Logs,
// or a notice answer naming a new one), it lists the device's open requests
// (GET <tracker>/api/v1/devices/<id>/logs) and answers each not yet
// answered: the app's log ring, read through the runtime, every secret value
// the node holds replaced (RedactSecrets), bounded to kMaxLogUploadBytes
// from the oldest side (BoundLog), posted to .../logs/<request id> with the
// device credential. An app the node does not run gets a one-line answer
// saying so, so the operator is not left waiting. A request's `since_s`
// asks for the lines of its last seconds (the ring keeps line times; a
// container started by an older monitor sends its whole ring).
//
// A failed upload is tried again at the next report or notice naming an
// open request.
//
// Thread-safety: none; the loop's only. The list and each upload hold the
// loop for their HTTP exchange (bounded by the client's timeouts), as a
// report round does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "http/http_client.h"
#include "node/control/node_control.h"
#include "node/daemon/enrolment.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::node {

struct LogUploaderEvents {
  // Reads the app's log ring, its lines since `since_unix_s` when > 0;
  // answers through `reply` on the loop.
  std::function<void(const std::string& app, int64_t since_unix_s, ControlReply reply)> read_log;
  // The secret values the node holds (every app's, the running and the
  // previous configuration's: node/daemon/secret_files.h).
  std::function<std::vector<std::string>()> secrets;
};

class LogUploader {
 public:
  LogUploader(std::string tracker_url, http::ClientOptions http, LogUploaderEvents events);

  void SetCredentials(DeviceCredentials credentials) { credentials_ = std::move(credentials); }
  // Request `newest` (or one before it) may be open: answers what is.
  void Requested(uint64_t newest);
  uint64_t uploads() const { return uploads_; }

 private:
  void Answer(const tracker::TrackerClient::LogRequestInfo& request, Result<std::string> log);

  tracker::TrackerClient client_;
  LogUploaderEvents events_;
  std::optional<DeviceCredentials> credentials_;
  std::set<int64_t> reading_;   // requests whose log is being read
  std::set<int64_t> answered_;  // uploaded (a bounded, recent set)
  uint64_t uploads_ = 0;
};

}  // namespace flotilla::node
