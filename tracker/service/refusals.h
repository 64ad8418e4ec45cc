// What the tracker refuses, counted and logged without flooding: every
// refusal adds to flotilla_refusals_total{kind} at /metrics; the log gets the
// first refusal of each kind at once and then at most one line per kind and
// `period`, with how many were refused since. Not thread-safe: the server's
// network thread owns it.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "tracker/service/metrics.h"

namespace flotilla::tracker {

class RefusalLog {
 public:
  RefusalLog(const Clock& clock, TrackerMetrics& metrics,
             Duration period = std::chrono::seconds(10));

  // `kind` is a fixed label ("announce_device_peers", ...); `detail` says
  // who and why, never a secret.
  void Refuse(std::string_view kind, std::string_view detail);

 private:
  struct Kind {
    MonoTime last_logged;
    bool logged = false;
    uint64_t suppressed = 0;
  };
  const Clock& clock_;
  TrackerMetrics& metrics_;
  const Duration period_;
  std::map<std::string, Kind, std::less<>> kinds_;
};

// A token bucket: `burst` tokens, refilled at `per_second`.
class TokenBucket {
 public:
  TokenBucket(double burst, double per_second, MonoTime now)
      : burst_(burst), rate_(per_second), tokens_(burst), last_(now) {}
  bool Take(MonoTime now);

 private:
  double burst_, rate_, tokens_;
  MonoTime last_;
};

}  // namespace flotilla::tracker
