// The real flotilla-tracker binary serving a repository on loopback, for
// end-to-end tests: started on an ephemeral port (or a given one, to restart
// on the same address), stopped cleanly or killed as a crash would.
#pragma once

#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tracker/api/enrolment.h"

namespace flotilla::testing {

class TrackerProcess {
 public:
  // Starts `serve` with `repo` and a fleet token file in `dir`, listening on
  // 127.0.0.1:`port` (0: any), plus `extra_args`; its log is <dir>/tracker.log.
  // Returns false (see Log()) when it does not listen within 10 s.
  bool Start(const std::string& dir, const std::string& repo,
             const std::vector<std::string>& extra_args = {}, int port = 0);
  void Stop() { process_.Stop(std::chrono::seconds(5)); }
  void Kill() { process_.Kill(); }  // SIGKILL, as a crash or power cut would
  bool running() const { return process_.running(); }
  pid_t pid() const { return process_.pid(); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const;
  static std::string FleetToken() { return "fleet-token-for-tests-0123456789"; }

 private:
  ChildProcess process_;
  int port_ = 0;
  std::string log_path_;
};

using EnrolledDevice = tracker::DeviceCredentials;
// Enrols `name` with the client library; empty device_id on failure.
EnrolledDevice EnrolDevice(int port, const std::string& name, const std::string& site = "",
                           const std::vector<std::string>& tags = {});

}  // namespace flotilla::testing
