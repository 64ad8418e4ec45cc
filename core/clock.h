// The time and scheduling seam.
//
// Code that needs the time or wants something to happen later takes a Clock
// and an Executor instead of calling std::chrono::*::now(), sleeping or
// starting threads, so that tests and the simulation can drive time: with a
// FakeClock and a ManualExecutor a test runs an hour of retries and backoffs
// in microseconds, deterministically.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace flotilla {

using WallTime = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

// "2026-12-07T01:02:03Z": a Unix time in UTC, whole seconds, as the tracker's
// JSON and tables print the times it stores (TUF's own metadata times are
// metadata/tuf_time.h's).
std::string UtcText(int64_t unix_seconds);

class Clock {
 public:
  virtual ~Clock() = default;
  // Calendar time: what signed expiry dates are compared with. May jump.
  virtual WallTime Now() const = 0;
  // Never goes backwards: what timeouts and rates are measured with.
  virtual MonoTime MonotonicNow() const = 0;
};

// Whole seconds since the Unix epoch: how the tracker and the node store times.
inline int64_t UnixSeconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline int64_t UnixSeconds(const Clock& clock) { return UnixSeconds(clock.Now()); }

// The real clocks. Thread-safe.
class SystemClock final : public Clock {
 public:
  static SystemClock& Instance();
  WallTime Now() const override { return std::chrono::system_clock::now(); }
  MonoTime MonotonicNow() const override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime start = WallTime(std::chrono::seconds(1'800'000'000)));
  WallTime Now() const override;
  MonoTime MonotonicNow() const override;
  // Moves both clocks forward.
  void Advance(Duration d);
  // Sets the wall clock alone (it may go backwards, as a Pi's does without an RTC).
  void SetWallTime(WallTime t);

 private:
  mutable std::mutex mu_;
  WallTime wall_;
  MonoTime mono_;
};

using Task = std::function<void()>;
using TimerId = uint64_t;

// Runs tasks, now or after a delay, one at a time in the executor's own context.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void Post(Task task) = 0;
  virtual TimerId PostAfter(Duration delay, Task task) = 0;
  // Returns false if the timer already ran or was cancelled.
  virtual bool Cancel(TimerId id) = 0;
};

// Tasks ordered by due time, then by the order they were posted.
class TimerQueue {
 public:
  TimerId Add(MonoTime due, Task task);
  bool Cancel(TimerId id);
  // Removes and returns the earliest task due at or before `now`, if any.
  bool PopDue(MonoTime now, Task& out);
  bool empty() const { return by_due_.empty(); }
  MonoTime next_due() const { return by_due_.begin()->first.first; }

 private:
  std::map<std::pair<MonoTime, TimerId>, Task> by_due_;
  std::map<TimerId, MonoTime> due_of_;
  TimerId next_id_ = 1;
};

// An executor driven by the test: tasks run only inside RunUntilIdle/AdvanceBy,
// on the caller's thread. Not thread-safe.
class ManualExecutor final : public Executor {
 public:
  explicit ManualExecutor(FakeClock& clock) : clock_(clock) {}
  void Post(Task task) override;
  TimerId PostAfter(Duration delay, Task task) override;
  bool Cancel(TimerId id) override;

  // Runs every task that is due now, including ones they post for now.
  size_t RunUntilIdle();
  // Advances the clock in steps to each due timer up to `d`, running tasks as it goes.
  size_t AdvanceBy(Duration d);

 private:
  FakeClock& clock_;
  TimerQueue queue_;
};

// A real executor: one worker thread that runs tasks in due order. Thread-safe.
// The destructor stops the thread; tasks not yet run are dropped.
class ThreadExecutor final : public Executor {
 public:
  ThreadExecutor();
  ~ThreadExecutor() override;
  void Post(Task task) override;
  TimerId PostAfter(Duration delay, Task task) override;
  bool Cancel(TimerId id) override;

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable wake_;
  TimerQueue queue_;
  bool stopping_ = false;
  std::thread worker_;
};

// At most one pending task on an executor: Schedule replaces the pending
// one, as a daemon's "refresh again in N s" does. Cancelled on destruction.
// Thread-safety: none; use it on the executor's own context.
class TimerSlot {
 public:
  explicit TimerSlot(Executor& executor) : executor_(executor) {}
  ~TimerSlot() { Cancel(); }
  TimerSlot(const TimerSlot&) = delete;
  TimerSlot& operator=(const TimerSlot&) = delete;

  // Runs `task` once after `delay`, instead of the pending task if any.
  void Schedule(Duration delay, Task task);
  void Cancel();
  bool pending() const { return id_.has_value(); }

 private:
  Executor& executor_;
  std::optional<TimerId> id_;
};

// Blocking work off an event loop, as libtorrent's disk thread does it: the
// loop hands a job to a worker and gets the result back as a task of its
// own, so it keeps serving while the job runs.
//
// A Worker is one lane of such work over a `worker` executor: a
// ThreadExecutor of its own in production (several Workers may share one
// lane; its jobs then run one at a time in the order given); in tests a
// ManualExecutor, possibly the loop's own, so that a test decides when a job
// runs. Workers on different threads run their jobs at the same time.
//
// Thread-safety: Run() and Close() are called on the loop; `job` runs on the
// worker's thread and touches only what it was given (captured values, and
// objects documented as used from that lane alone); `done` runs on the loop.
class Worker {
 public:
  Worker(Executor& worker, Executor& loop) : worker_(worker), loop_(loop) {}
  ~Worker() { Close(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs job() on the worker, then done(result) on the loop. The result must
  // be copyable (it travels in a Task).
  template <typename Job, typename Done>
  void Run(Job job, Done done) {
    worker_.Post(
        [open = open_, &loop = loop_, job = std::move(job), done = std::move(done)]() mutable {
          if (!open->load()) return;
          auto result = job();
          loop.Post([open, done = std::move(done), result = std::move(result)]() mutable {
            if (open->load()) done(std::move(result));
          });
        });
  }

  // From now on no job starts and no `done` runs. A job already running
  // finishes: whoever owns the worker's thread waits for it (joins) before
  // destroying what jobs use.
  void Close() { open_->store(false); }

 private:
  Executor& worker_;
  Executor& loop_;
  std::shared_ptr<std::atomic<bool>> open_ = std::make_shared<std::atomic<bool>>(true);
};

// Worker lanes by name: a ThreadExecutor each in production (made on first
// use), one ManualExecutor for all in tests. Work on one lane is serialized.
using LaneOf = std::function<Executor&(const std::string& lane)>;

}  // namespace flotilla
