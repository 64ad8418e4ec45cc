// Helpers for the namespace tests of the simulation harness.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"
#include "sim/topology.h"

namespace flotilla::sim::testing {

// A process started in the background with stdout+stderr going to a file.
class Background {
 public:
  Background() = default;
  Background(Background&& o) noexcept : pid_(o.pid_), log_(std::move(o.log_)) { o.pid_ = -1; }
  Background& operator=(Background&& o) noexcept {
    std::swap(pid_, o.pid_);
    std::swap(log_, o.log_);
    return *this;
  }
  ~Background();  // SIGKILLs and reaps a process still running

  static Background Start(const std::vector<std::string>& argv, const std::string& log_path);
  pid_t pid() const { return pid_; }
  // Waits for exit; returns the exit code (128 + signal if killed).
  int Wait();
  std::string Output() const;
  // Polls the log until it contains `text` or `seconds` pass.
  bool WaitForOutput(const std::string& text, double seconds) const;

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// argv running flotilla-sim inside namespace `ns`.
std::vector<std::string> SimIn(const std::string& ns, std::vector<std::string> args);

// The last line of `output` that parses as a JSON object.
Json LastJson(const std::string& output);

// Every namespace under /run/netns whose name contains `run_id`.
std::vector<std::string> NetnsOf(const std::string& run_id);

struct UdpProbeResult {
  int sender_exit = -1;
  Json sink;  // ProbeStats JSON (sim/probe.h)
};

// Runs `probe udp-sink` in `to_ns` and `probe udp-send` from `from_ns` to
// `to_address`; logs go under `log_dir`.
UdpProbeResult RunUdpProbe(const std::string& from_ns, const std::string& to_ns,
                           const std::string& to_address, int count, int interval_us, int size,
                           const std::string& log_dir, double timeout_s = 20);

// A topology with one site and `devices` devices; WAN shaped as given.
TopologySpec OneSite(LinkShape wan_down, LinkShape wan_up, bool nat = false, int devices = 1);

}  // namespace flotilla::sim::testing
