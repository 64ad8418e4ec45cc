// Exponential backoff, as the node's retries use it: the first wait, doubled
// with each further failure, never past the cap.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/clock.h"

namespace flotilla::node {

// `first` * 2^(failures - 1), at most `cap`; `first` for failures <= 1.
inline Duration Backoff(Duration first, uint32_t failures, Duration cap) {
  const uint32_t doublings = std::min<uint32_t>(failures > 0 ? failures - 1 : 0, 20);
  return std::min<Duration>(first * (int64_t{1} << doublings), cap);
}

}  // namespace flotilla::node
