// The seam through which `serve` keeps signed metadata fresh.
//
// TUF timestamp metadata expires quickly (hours to a day), so a running
// tracker must re-sign it before it expires. The signing lives in the
// metadata module; `serve` only owns the timer: RefreshSchedule
// calls MetadataRefresher::Refresh through a core/clock.h Executor, first at
// Start() and then whenever the refresher asks to run again. The refresher
// writes files into <repo>/metadata/ atomically (core/file_io.h), and the
// server, which opens the file per request, serves the new bytes at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace flotilla::tracker {

class MetadataRefresher {
 public:
  virtual ~MetadataRefresher() = default;
  // Re-signs whatever expires within the implementation's window (at least
  // the timestamp role) and returns how long to wait before the next call.
  // Called on the executor's thread, never concurrently with itself.
  virtual Result<Duration> Refresh(WallTime now) = 0;
  // Refresh for a repository that several signers share through a database
  // of published versions: `published` holds the highest version recorded
  // for each role ("timestamp", "snapshot", "targets"), and every version
  // signed is above it (the files of this signer may be behind). The default
  // ignores it.
  virtual Result<Duration> RefreshAbove(WallTime now,
                                        const std::map<std::string, uint64_t>& published) {
    (void)published;
    return Refresh(now);
  }
};

// Calls a refresher on an executor's timer. After a failure it retries after
// `retry_delay`. Thread-safe; destroying it stops future calls (a call in
// progress finishes first).
class RefreshSchedule {
 public:
  RefreshSchedule(Executor& executor, const Clock& clock, MetadataRefresher& refresher,
                  Duration retry_delay = std::chrono::minutes(1));
  ~RefreshSchedule();
  RefreshSchedule(const RefreshSchedule&) = delete;
  RefreshSchedule& operator=(const RefreshSchedule&) = delete;

  // Posts the first refresh now.
  void Start();

  int64_t successes() const;
  int64_t failures() const;

 private:
  struct State {
    std::mutex mu;
    bool stopped = false;
    TimerId timer = 0;
    int64_t successes = 0;
    int64_t failures = 0;
  };
  static void RunOnce(const std::shared_ptr<State>& state, Executor& executor, const Clock& clock,
                      MetadataRefresher& refresher, Duration retry_delay);

  Executor& executor_;
  const Clock& clock_;
  MetadataRefresher& refresher_;
  const Duration retry_delay_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace flotilla::tracker
