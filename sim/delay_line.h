// The harness's user-space delay line (this kernel has no netem).
//
// A delay-line process sits in a link namespace between two TAP devices
// (see sim/link.h). Every frame read from one TAP is written to the other
// after the direction's delay plus a uniform jitter sample in
// [-jitter, +jitter]. Frames keep their order (a frame never leaves before
// the one ahead of it, as on one physical link), so with jitter a frame's
// delay is max(its sample, the previous frame's release). Queue memory is
// bounded: a frame that would take a direction's queue over `max_queue_bytes`
// is dropped (tail drop), and the drop is counted.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <random>
#include <string>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/status.h"

namespace flotilla::sim {

struct DelaySpec {
  uint32_t delay_us = 0;
  uint32_t jitter_us = 0;
  size_t max_queue_bytes = 4 << 20;
};

// One direction's queue. Pure: time is passed in. Not thread-safe.
class DelayQueue {
 public:
  DelayQueue(DelaySpec spec, uint64_t seed);

  // Queues a frame that arrived at `now`; false if it was dropped (queue full).
  bool Push(MonoTime now, ByteSpan frame);
  // True if a frame is due at or before `now`; moves it into `out`.
  bool PopDue(MonoTime now, Bytes& out);
  bool empty() const { return frames_.empty(); }
  // REQUIRES: !empty()
  MonoTime next_due() const { return frames_.front().due; }

  size_t queued_bytes() const { return queued_bytes_; }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Frame {
    MonoTime due;
    Bytes data;
  };
  DelaySpec spec_;
  std::mt19937_64 random_;
  std::deque<Frame> frames_;
  MonoTime last_due_{};
  size_t queued_bytes_ = 0;
  uint64_t dropped_ = 0;
};

struct DelayLineConfig {
  std::string netns;  // where the TAP devices are
  std::string tap_a;  // frames read here go to tap_b after a_to_b
  std::string tap_b;
  DelaySpec a_to_b;
  DelaySpec b_to_a;
  uint64_t seed = 1;
  int ready_fd = -1;  // if >= 0, one byte is written and it is closed once attached
};

// Forks a delay-line process (no exec: it runs RunDelayLine in the child,
// in its own session, with stdio on /dev/null and no other inherited fds).
// The TAP devices must exist (persistent) in `netns`. The child runs until
// it gets SIGTERM or SIGKILL; the caller reaps it. Returns once the child has
// attached both TAP devices (so no frame is lost to a detached TAP).
Result<pid_t> SpawnDelayLine(const DelayLineConfig& config);

// The delay-line loop; attaches to the TAP devices in the current network
// namespace and returns only on a fatal error or SIGTERM.
Status RunDelayLine(const DelayLineConfig& config);

}  // namespace flotilla::sim
