// Counters exported at /metrics in the Prometheus text format (0.0.4).
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace flotilla::tracker {

struct GaugeSnapshot {
  std::map<std::string, int64_t> devices_per_state;
  int64_t swarms = 0;
  int64_t peers = 0;
  int64_t notices_held = 0;  // notice requests this replica holds
};

class TrackerMetrics {
 public:
  // `route` is a fixed label ("announce", "artifact", ...), never a raw path.
  void CountRequest(const std::string& route, int status);
  // `result`: "ok", "refused", "malformed", "full", "device_limit",
  // "rate_limited".
  void CountAnnounce(const std::string& result);
  // `kind`: a fixed label of what was refused (RefusalLog).
  void CountRefusal(const std::string& kind);
  // `result`: "delivered", "failed" (an attempt; retried) or "abandoned".
  void CountWebhookSend(const std::string& result);
  // The counter the artifact body writer increments as bytes leave.
  std::shared_ptr<std::atomic<uint64_t>> ArtifactBytesCounter(const std::string& hex);
  // The signing lease as this replica last saw it (SigningDuty).
  void SetSigningLease(bool held, int64_t epoch) {
    lease_held_ = held ? 1 : 0;
    lease_epoch_ = epoch;
  }

  // The exposition text, gauges included.
  std::string Render(const GaugeSnapshot& gauges) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> announces_;
  std::map<std::string, uint64_t> refusals_;
  std::map<std::string, uint64_t> webhook_sends_;
  std::map<std::string, std::shared_ptr<std::atomic<uint64_t>>> artifact_bytes_;
  std::atomic<int64_t> lease_held_{0};
  std::atomic<int64_t> lease_epoch_{0};
};

}  // namespace flotilla::tracker
