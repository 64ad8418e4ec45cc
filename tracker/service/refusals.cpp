#include "tracker/service/refusals.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace flotilla::tracker {

RefusalLog::RefusalLog(const Clock& clock, TrackerMetrics& metrics, Duration period)
    : clock_(clock), metrics_(metrics), period_(period) {}

void RefusalLog::Refuse(std::string_view kind, std::string_view detail) {
  metrics_.CountRefusal(std::string(kind));
  const MonoTime now = clock_.MonotonicNow();
  auto it = kinds_.find(kind);
  if (it == kinds_.end()) it = kinds_.emplace(std::string(kind), Kind{}).first;
  Kind& k = it->second;
  if (k.logged && now - k.last_logged < period_) {
    ++k.suppressed;
    return;
  }
  if (k.suppressed > 0) {
    spdlog::warn("refused ({}): {} ({} more since the last line)", kind, detail, k.suppressed);
  } else {
    spdlog::warn("refused ({}): {}", kind, detail);
  }
  k.logged = true;
  k.last_logged = now;
  k.suppressed = 0;
}

bool TokenBucket::Take(MonoTime now) {
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace flotilla::tracker
