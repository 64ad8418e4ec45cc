// Supervision (Runtime::Reconcile): the node calls it on start (re-adoption)
// and then periodically. All it knows comes from the state dir and the
// monitors' files, so a pass after a node restart sees exactly what a pass
// before it would have.
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
uint64_t BackoffMillis(const RestartSpec& r, uint32_t restarts) {
  uint64_t delay = r.backoff_initial_ms;
  for (uint32_t i = 0; i < restarts && delay < r.backoff_max_ms; ++i) delay *= 2;
  return std::min(delay, r.backoff_max_ms);
}

bool WantsRestart(const RestartSpec& r, const ContainerStatus& c, uint32_t restarts) {
  if (r.policy == RestartPolicy::kNo) return false;
  bool failed = c.state != ContainerState::kExited || !c.exit->Success();
  if (r.policy == RestartPolicy::kOnFailure) {
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
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  if (record.switching) {
    RETURN_IF_ERROR(RunSwitch(record).status());
    ASSIGN_OR_RETURN(record, state_.LoadApp(app));
  }
  RETURN_IF_ERROR(StopStrays(record));
  if (!record.desired_running || record.current.empty()) return kIdlePass;
  const std::string dir = state_.ReleaseDir(app, record.current);
  ContainerStatus c = containers_->Inspect(dir);
  if (c.state == ContainerState::kRunning) return kIdlePass;
  if (c.state == ContainerState::kLost) {
    // The monitor was killed: end what is left and write the exit record it
    // could not, so the exit is recorded and timed like any other.
    RETURN_IF_ERROR(cgroups_->Destroy(CgroupName(app, record.current)));
    ExitRecord lost;
    lost.start_error = "lost: its monitor died, the exit status is unknown";
    lost.finished_unix_ms = UnixMillis(clock_.Now());
    RETURN_IF_ERROR(WriteFileReplace(ExitFile(dir), ExitRecordToJson(lost).dump()));
    c = containers_->Inspect(dir);
  }
  // Record the exit once, even when it happened while no node was running.
  if (c.state == ContainerState::kExited && record.last_exit_unix_ms != c.exit->finished_unix_ms) {
    record.last_exit = c.exit->Describe();
    record.last_exit_unix_ms = c.exit->finished_unix_ms;
    RETURN_IF_ERROR(state_.SaveApp(record));
  }
  ASSIGN_OR_RETURN(AppSpec spec, state_.LoadReleaseSpec(app, record.current));
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
