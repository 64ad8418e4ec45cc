// End-to-end test support: runs the real flotilla-tracker binary on an
// ephemeral loopback port and talks to it over real sockets.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tracker/api/enrolment.h"

namespace flotilla::testing {

struct HttpResponse {
  int status = 0;                              // 0: no parsable response (connection dropped)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string raw;
};

// Sends `request` bytes to 127.0.0.1:port and reads until the server closes
// or `timeout` passes. Returns everything read.
std::string SendRaw(int port, const std::string& request,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
HttpResponse ParseResponse(const std::string& raw);

// One HTTP/1.1 request with Connection: close.
HttpResponse HttpRequestTo(int port, const std::string& method, const std::string& target,
                           const std::vector<std::string>& headers = {},
                           const std::string& body = "");

// A flotilla-tracker serve process. Stops (SIGTERM, then SIGKILL) on destruction.
class TrackerProcess {
 public:
  TrackerProcess() = default;
  ~TrackerProcess() { Stop(); }
  TrackerProcess(const TrackerProcess&) = delete;
  TrackerProcess& operator=(const TrackerProcess&) = delete;

  // Starts `serve` with `repo` and a fleet token file in `dir`, listening on
  // 127.0.0.1:0, plus `extra_args`. Returns false (with the log) on failure.
  bool Start(const std::string& dir, const std::string& repo,
             const std::vector<std::string>& extra_args = {});
  void Stop();
  void Kill();  // SIGKILL, as a crash or power cut would
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const;
  static std::string FleetToken() { return "fleet-token-for-tests-0123456789"; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

using EnrolledDevice = tracker::DeviceCredentials;
// Enrols `name` with the client library; empty device_id on failure.
EnrolledDevice EnrolDevice(int port, const std::string& name, const std::string& site = "");

// Percent-encodes every byte.
std::string PercentEncodeAll(const std::string& bytes);

}  // namespace flotilla::testing
