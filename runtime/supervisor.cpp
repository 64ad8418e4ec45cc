// Supervision (Runtime::Reconcile): the node calls it on start (re-adoption)
// and then periodically. All it knows comes from the state dir and the
// monitors' files, so a pass after a node restart sees exactly what a pass
// before it would have; the one exception is the count of failed health
// rechecks in a row, kept in memory (a restarted node counts afresh).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/file_io.h"
#include "runtime/runtime.h"

namespace flotilla::runtime {
namespace {

using std::chrono::milliseconds;

int64_t UnixMillis(WallTime t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// initial * 2^restarts, capped.
uint64_t BackoffMillis(const appspec::RestartSpec& r, uint32_t restarts) {
  uint64_t delay = r.backoff_initial_ms;
  for (uint32_t i = 0; i < restarts && delay < r.backoff_max_ms; ++i) delay *= 2;
  return std::min(delay, r.backoff_max_ms);
}

bool WantsRestart(const appspec::RestartSpec& r, const ContainerStatus& c, uint32_t restarts) {
  if (r.policy == appspec::RestartPolicy::kNo) return false;
  bool failed = c.state != ContainerState::kExited || !c.exit->Success();
  if (r.policy == appspec::RestartPolicy::kOnFailure) {
    return failed && (r.max_retries == 0 || restarts < r.max_retries);
  }
  return true;
}

constexpr Duration kIdlePass = std::chrono::seconds(1);

}  // namespace

Status Runtime::StopStrays(const AppRecord& record) {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(state_.AppDir(record.name) + "/releases", ec)) {
    std::string release = entry.path().filename().string();
    bool wanted = release == record.current && record.desired_running;
    if (!wanted && IsRunning(record.name, release)) {
      RETURN_IF_ERROR(StopRelease(record.name, release));
    }
  }
  return Status::Ok();
}

Result<Duration> Runtime::SuperviseApp(const std::string& app) {
  // Busy (a deploy, rollback or stop runs): look again at the next pass.
  ASSIGN_OR_RETURN(AppLock lock, state_.LockApp(app, /*wait=*/false));
  if (!lock.held()) return kIdlePass;
  auto loaded = state_.LoadApp(app);
  // No record yet: the app's first deploy made its directory and has not
  // locked it yet, or stopped before its first record. Nothing runs for it.
  if (loaded.status().code() == StatusCode::kNotFound) return kIdlePass;
  ASSIGN_OR_RETURN(AppRecord record, std::move(loaded));
  if (record.switching) {
    RETURN_IF_ERROR(RunSwitch(record).status());
    ASSIGN_OR_RETURN(record, state_.LoadApp(app));
  }
  RETURN_IF_ERROR(StopStrays(record));
  if (!record.desired_running || record.current.empty()) return kIdlePass;
  const std::string dir = state_.ReleaseDir(app, record.current);
  ContainerStatus c = containers_->Inspect(dir);
  if (c.state == ContainerState::kRunning) return RecheckHealth(app, record.current, *c.running);
  if (c.state == ContainerState::kLost) {
    RETURN_IF_ERROR(RecordLost(app, record.current));
    c = containers_->Inspect(dir);
  }
  return RestartByPolicy(record, std::move(c));
}

// The monitor was killed: end what is left and write the exit record it
// could not, so the exit is recorded and timed like any other.
Status Runtime::RecordLost(const std::string& app, const std::string& release) {
  RETURN_IF_ERROR(cgroups_->Destroy(CgroupName(app, release)));
  ExitRecord lost;
  lost.start_error = "lost: its monitor died, the exit status is unknown";
  lost.finished_unix_ms = UnixMillis(clock_.Now());
  return WriteFileReplace(ExitFile(state_.ReleaseDir(app, release)), Json(lost).dump());
}

Result<Duration> Runtime::RestartByPolicy(AppRecord& record, ContainerStatus c) {
  const std::string& app = record.name;
  // Record the exit once, even when it happened while no node was running.
  if (c.state == ContainerState::kExited && record.last_exit_unix_ms != c.exit->finished_unix_ms) {
    record.last_exit = c.exit->Describe();
    record.last_exit_unix_ms = c.exit->finished_unix_ms;
    RETURN_IF_ERROR(state_.SaveApp(record));
  }
  ASSIGN_OR_RETURN(appspec::AppSpec spec, state_.LoadReleaseSpec(app, record.current));
  if (!WantsRestart(spec.restart, c, record.restarts)) return kIdlePass;
  int64_t due = c.state != ContainerState::kExited
                    ? 0
                    : record.last_exit_unix_ms +
                          static_cast<int64_t>(BackoffMillis(spec.restart, record.restarts));
  int64_t now = UnixMillis(clock_.Now());
  if (now < due) return std::min<Duration>(kIdlePass, milliseconds(due - now));
  ++record.restarts;
  RETURN_IF_ERROR(state_.SaveApp(record));
  auto started = StartRelease(app, record.current);
  if (!started.ok()) {
    // Counted as a failed run: the backoff grows and on-failure gives up in time.
    record.last_exit = started.status().ToString();
    record.last_exit_unix_ms = UnixMillis(clock_.Now());
    RETURN_IF_ERROR(state_.SaveApp(record));
  }
  return kIdlePass;
}

// An exec or http check, every recheck_interval_ms while the release runs;
// failure_threshold failures in a row stop the container as unhealthy (the
// next pass then records the exit and applies the restart policy). The
// first recheck of a container comes one interval after this process first
// sees it running.
Result<Duration> Runtime::RecheckHealth(const std::string& app, const std::string& release,
                                        const RunningRecord& running) {
  const std::string dir = state_.ReleaseDir(app, release);
  // A stop decided by a node that died before finishing it.
  if (::access(UnhealthyFile(dir).c_str(), F_OK) == 0) {
    RETURN_IF_ERROR(StopRelease(app, release));
    return Duration::zero();
  }
  ASSIGN_OR_RETURN(appspec::AppSpec spec, state_.LoadReleaseSpec(app, release));
  const appspec::HealthSpec& h = spec.health;
  if (h.type == appspec::HealthType::kRunning || h.recheck_interval_ms == 0) return kIdlePass;
  const Duration interval = milliseconds(h.recheck_interval_ms);
  HealthRecheck& recheck = RecheckOf(app);
  if (recheck.init_pid != running.init_pid ||
      recheck.init_start_ticks != running.init_start_ticks) {
    recheck = {running.init_pid, running.init_start_ticks, clock_.MonotonicNow() + interval, 0};
  }
  const MonoTime now = clock_.MonotonicNow();
  if (now < recheck.due) return std::min<Duration>(kIdlePass, recheck.due - now);
  Status healthy = ProbeHealth(h, dir);
  recheck.due = clock_.MonotonicNow() + interval;
  // A container that died meanwhile is the restart policy's, not unhealthy.
  if (!healthy.ok() && !IsRunning(app, release)) return Duration::zero();
  recheck.failures = healthy.ok() ? 0 : recheck.failures + 1;
  if (recheck.failures < h.failure_threshold) {
    return std::min<Duration>(kIdlePass, recheck.due - clock_.MonotonicNow());
  }
  std::string reason = "unhealthy: " + std::to_string(recheck.failures) +
                       " failed health checks in a row, the last: " + healthy.message();
  {
    std::lock_guard lock(rechecks_mu_);
    rechecks_.erase(app);
  }
  RETURN_IF_ERROR(StopUnhealthy(app, release, reason));
  return Duration::zero();
}

// The map is shared by every app; an entry only by the holder of its app's lock.
Runtime::HealthRecheck& Runtime::RecheckOf(const std::string& app) {
  std::lock_guard lock(rechecks_mu_);
  return rechecks_[app];
}

Status Runtime::StopUnhealthy(const std::string& app, const std::string& release,
                              const std::string& reason) {
  // The decision is written first: a node killed during the stop finishes it
  // at its next pass, and the exit is a failure either way.
  RETURN_IF_ERROR(WriteFileReplace(UnhealthyFile(state_.ReleaseDir(app, release)), reason));
  return StopRelease(app, release);
}

Result<Duration> Runtime::Reconcile() {
  ASSIGN_OR_RETURN(auto apps, state_.ListApps());
  Duration next = kIdlePass;
  Status first_error;
  for (const auto& app : apps) {
    auto wait = SuperviseApp(app);
    if (!wait.ok()) {
      if (first_error.ok()) first_error = wait.status().WithContext("supervise " + app);
      continue;
    }
    next = std::min(next, *wait);
  }
  if (!first_error.ok()) return first_error;
  return next;
}

}  // namespace flotilla::runtime
