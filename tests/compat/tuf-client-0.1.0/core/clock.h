// The time and scheduling seam.
//
// Code that needs the time or wants something to happen later takes a Clock
// and an Executor instead of calling std::chrono::*::now(), sleeping or
// starting threads, so that tests and the simulation can drive time: with a
// FakeClock and a ManualExecutor a test runs an hour of retries and backoffs
// in microseconds, deterministically.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace flotilla {

using WallTime = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  // Calendar time: what signed expiry dates are compared with. May jump.
  virtual WallTime Now() const = 0;
  // Never goes backwards: what timeouts and rates are measured with.
  virtual MonoTime MonotonicNow() const = 0;
};

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

}  // namespace flotilla
