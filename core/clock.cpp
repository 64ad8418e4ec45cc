#include "core/clock.h"

#include <ctime>

namespace flotilla {

std::string UtcText(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

FakeClock::FakeClock(WallTime start) : wall_(start), mono_(MonoTime(std::chrono::hours(1))) {}

WallTime FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return wall_;
}

MonoTime FakeClock::MonotonicNow() const {
  std::lock_guard lock(mu_);
  return mono_;
}

void FakeClock::Advance(Duration d) {
  std::lock_guard lock(mu_);
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  mono_ += d;
}

void FakeClock::SetWallTime(WallTime t) {
  std::lock_guard lock(mu_);
  wall_ = t;
}

TimerId TimerQueue::Add(MonoTime due, Task task) {
  TimerId id = next_id_++;
  by_due_.emplace(std::make_pair(due, id), std::move(task));
  due_of_.emplace(id, due);
  return id;
}

bool TimerQueue::Cancel(TimerId id) {
  auto it = due_of_.find(id);
  if (it == due_of_.end()) return false;
  by_due_.erase({it->second, id});
  due_of_.erase(it);
  return true;
}

bool TimerQueue::PopDue(MonoTime now, Task& out) {
  if (by_due_.empty() || by_due_.begin()->first.first > now) return false;
  auto node = by_due_.extract(by_due_.begin());
  due_of_.erase(node.key().second);
  out = std::move(node.mapped());
  return true;
}

void ManualExecutor::Post(Task task) { queue_.Add(clock_.MonotonicNow(), std::move(task)); }

TimerId ManualExecutor::PostAfter(Duration delay, Task task) {
  return queue_.Add(clock_.MonotonicNow() + delay, std::move(task));
}

bool ManualExecutor::Cancel(TimerId id) { return queue_.Cancel(id); }

size_t ManualExecutor::RunUntilIdle() {
  size_t ran = 0;
  Task task;
  while (queue_.PopDue(clock_.MonotonicNow(), task)) {
    task();
    ++ran;
  }
  return ran;
}

size_t ManualExecutor::AdvanceBy(Duration d) {
  const MonoTime end = clock_.MonotonicNow() + d;
  size_t ran = RunUntilIdle();
  while (!queue_.empty() && queue_.next_due() <= end) {
    clock_.Advance(queue_.next_due() - clock_.MonotonicNow());
    ran += RunUntilIdle();
  }
  clock_.Advance(end - clock_.MonotonicNow());
  return ran + RunUntilIdle();
}

ThreadExecutor::ThreadExecutor() : worker_([this] { Loop(); }) {}

ThreadExecutor::~ThreadExecutor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void ThreadExecutor::Post(Task task) { PostAfter(Duration::zero(), std::move(task)); }

TimerId ThreadExecutor::PostAfter(Duration delay, Task task) {
  TimerId id;
  {
    std::lock_guard lock(mu_);
    id = queue_.Add(std::chrono::steady_clock::now() + delay, std::move(task));
  }
  wake_.notify_all();
  return id;
}

bool ThreadExecutor::Cancel(TimerId id) {
  std::lock_guard lock(mu_);
  return queue_.Cancel(id);
}

void ThreadExecutor::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    Task task;
    if (queue_.PopDue(std::chrono::steady_clock::now(), task)) {
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (queue_.empty()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, queue_.next_due());
    }
  }
}

void TimerSlot::Schedule(Duration delay, Task task) {
  Cancel();
  id_ = executor_.PostAfter(delay, [this, task = std::move(task)] {
    id_.reset();
    task();
  });
}

void TimerSlot::Cancel() {
  if (id_) executor_.Cancel(*id_);
  id_.reset();
}

}  // namespace flotilla
