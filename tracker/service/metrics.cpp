#include "tracker/service/metrics.h"

#include <fmt/format.h>

namespace flotilla::tracker {

void TrackerMetrics::CountRequest(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}

void TrackerMetrics::CountAnnounce(const std::string& result) {
  std::lock_guard lock(mu_);
  ++announces_[result];
}

std::shared_ptr<std::atomic<uint64_t>> TrackerMetrics::ArtifactBytesCounter(
    const std::string& hex) {
  std::lock_guard lock(mu_);
  auto& counter = artifact_bytes_[hex];
  if (!counter) counter = std::make_shared<std::atomic<uint64_t>>(0);
  return counter;
}

std::string TrackerMetrics::Render(const GaugeSnapshot& gauges) const {
  std::lock_guard lock(mu_);
  std::string text;
  auto emit = std::back_inserter(text);
  text +=
      "# HELP flotilla_http_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE flotilla_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    fmt::format_to(emit, "flotilla_http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", key.first,
                   key.second, n);
  }
  text +=
      "# HELP flotilla_announces_total Tracker announces, by result.\n"
      "# TYPE flotilla_announces_total counter\n";
  for (const auto& [result, n] : announces_) {
    fmt::format_to(emit, "flotilla_announces_total{{result=\"{}\"}} {}\n", result, n);
  }
  text +=
      "# HELP flotilla_artifact_bytes_served_total Artifact bytes sent, by artifact.\n"
      "# TYPE flotilla_artifact_bytes_served_total counter\n";
  for (const auto& [hex, n] : artifact_bytes_) {
    fmt::format_to(emit, "flotilla_artifact_bytes_served_total{{artifact=\"sha256:{}\"}} {}\n", hex,
                   n->load());
  }
  text +=
      "# HELP flotilla_devices Enrolled devices, by last reported state.\n"
      "# TYPE flotilla_devices gauge\n";
  for (const auto& [state, n] : gauges.devices_per_state) {
    fmt::format_to(emit, "flotilla_devices{{state=\"{}\"}} {}\n", state, n);
  }
  fmt::format_to(emit,
                 "# HELP flotilla_swarms Swarms with at least one live peer.\n"
                 "# TYPE flotilla_swarms gauge\nflotilla_swarms {}\n"
                 "# HELP flotilla_swarm_peers Live peers over all swarms.\n"
                 "# TYPE flotilla_swarm_peers gauge\nflotilla_swarm_peers {}\n",
                 gauges.swarms, gauges.peers);
  return text;
}

}  // namespace flotilla::tracker
