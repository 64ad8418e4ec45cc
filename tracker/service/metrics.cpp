#include "tracker/service/metrics.h"

#include "core/prometheus_text.h"

namespace flotilla::tracker {

void TrackerMetrics::CountRequest(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}

void TrackerMetrics::CountAnnounce(const std::string& result) {
  std::lock_guard lock(mu_);
  ++announces_[result];
}

void TrackerMetrics::CountRefusal(const std::string& kind) {
  std::lock_guard lock(mu_);
  ++refusals_[kind];
}

void TrackerMetrics::CountWebhookSend(const std::string& result) {
  std::lock_guard lock(mu_);
  ++webhook_sends_[result];
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
  MetricFamily requests(text, "flotilla_http_requests_total", "counter",
                        "HTTP requests answered, by route and status.");
  for (const auto& [key, n] : requests_) {
    requests.Sample({{"route", key.first}, {"code", std::to_string(key.second)}}, n);
  }
  MetricFamily announces(text, "flotilla_announces_total", "counter",
                         "Tracker announces, by result.");
  for (const auto& [result, n] : announces_) announces.Sample({{"result", result}}, n);
  MetricFamily refusals(text, "flotilla_refusals_total", "counter",
                        "Requests and connections refused by a limit or a check, by kind.");
  for (const auto& [kind, n] : refusals_) refusals.Sample({{"kind", kind}}, n);
  MetricFamily webhooks(text, "flotilla_webhook_sends_total", "counter",
                        "Webhook notifications: delivered, failed attempts (retried), and "
                        "abandoned past their maximum age.");
  for (const auto& [result, n] : webhook_sends_) webhooks.Sample({{"result", result}}, n);
  MetricFamily bytes(text, "flotilla_artifact_bytes_served_total", "counter",
                     "Artifact bytes sent, by artifact.");
  for (const auto& [hex, n] : artifact_bytes_) {
    bytes.Sample({{"artifact", "sha256:" + hex}}, n->load());
  }
  MetricFamily devices(text, "flotilla_devices", "gauge",
                       "Enrolled devices, by last reported state.");
  for (const auto& [state, n] : gauges.devices_per_state) devices.Sample({{"state", state}}, n);
  MetricFamily(text, "flotilla_swarms", "gauge", "Swarms with at least one live peer.")
      .Sample({}, gauges.swarms);
  MetricFamily(text, "flotilla_swarm_peers", "gauge", "Live peers over all swarms.")
      .Sample({}, gauges.peers);
  MetricFamily(text, "flotilla_notice_requests_held", "gauge",
               "Notice requests this replica holds open.")
      .Sample({}, gauges.notices_held);
  MetricFamily(text, "flotilla_signing_lease_held", "gauge",
               "1 while this replica holds the signing lease and does the online signing.")
      .Sample({}, lease_held_.load());
  MetricFamily(text, "flotilla_signing_lease_epoch", "gauge",
               "The signing lease's epoch this replica last held (0: never).")
      .Sample({}, lease_epoch_.load());
  return text;
}

}  // namespace flotilla::tracker
