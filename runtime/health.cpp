// Health checks (docs/app-spec.md, "health"): "running" (still running after
// N seconds), "exec" (a command inside the container exits 0) and "http"
// (GET on a port answers 2xx), polled every interval_ms until the switch's
// healthy_deadline_ms. Waiting is done on the monitor's pidfd, so a container
// that dies ends the wait at once.
#include <chrono>

#include "runtime/runtime.h"

namespace flotilla::runtime {
namespace {

using std::chrono::milliseconds;

std::vector<std::string> ProbeArgs(const appspec::HealthSpec& h, const std::string& dir) {
  if (h.type == appspec::HealthType::kHttp) {
    return {"http-get", dir, std::to_string(h.port), h.path, std::to_string(h.timeout_ms)};
  }
  std::vector<std::string> args = {"exec", dir, "--"};
  args.insert(args.end(), h.command.begin(), h.command.end());
  return args;
}

}  // namespace

Status Runtime::ProbeHealth(const appspec::HealthSpec& h, const std::string& dir) {
  ASSIGN_OR_RETURN(int code, containers_->RunHelper(ProbeArgs(h, dir), milliseconds(h.timeout_ms)));
  if (code == 0) return Status::Ok();
  return Unavailable("health check exit code " + std::to_string(code));
}

Status Runtime::WaitHealthy(const std::string& app, const std::string& release) {
  ASSIGN_OR_RETURN(appspec::AppSpec spec, state_.LoadReleaseSpec(app, release));
  const std::string dir = state_.ReleaseDir(app, release);
  const appspec::HealthSpec& h = spec.health;
  const MonoTime deadline =
      clock_.MonotonicNow() + milliseconds(spec.switch_mode.healthy_deadline_ms);
  auto died = [&]() -> Status {
    ContainerStatus c = containers_->Inspect(dir);
    std::string what = c.exit ? c.exit->Describe() : std::string(ContainerStateName(c.state));
    return FailedPrecondition(app + " release " + release + " stopped: " + what);
  };
  if (h.type == appspec::HealthType::kRunning) {
    if (containers_->WaitForExit(dir, std::chrono::seconds(h.running_seconds))) return died();
    return IsRunning(app, release) ? Status::Ok() : died();
  }
  int attempts = 0;
  for (;;) {
    if (!IsRunning(app, release)) return died();
    ++attempts;
    ASSIGN_OR_RETURN(int code,
                     containers_->RunHelper(ProbeArgs(h, dir), milliseconds(h.timeout_ms)));
    if (code == 0) return Status::Ok();
    if (clock_.MonotonicNow() >= deadline) {
      return DeadlineExceeded(app + " release " + release + " not healthy after " +
                              std::to_string(spec.switch_mode.healthy_deadline_ms) + " ms (" +
                              std::to_string(attempts) + " checks, last exit code " +
                              std::to_string(code) + ")");
    }
    if (containers_->WaitForExit(dir, milliseconds(h.interval_ms))) return died();
  }
}

}  // namespace flotilla::runtime
