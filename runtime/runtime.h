// flotilla's built-in container runtime: the one entry point the node (and
// `flotilla-node app ...`) uses. See docs/runtime.md for the design and
// docs/app-spec.md for what an app is.
//
// The runtime takes an app spec and a list of lower directories (unpacked,
// verified layers; it does not know the layer store), keeps its own state
// directory, and runs each app's current release in a container held by a
// per-container monitor process, so apps outlive the node.
//
// Thread-safety: one Runtime per state directory and process. Calls for
// different apps may run at the same time on different threads (the node
// deploys two apps at once while one's health check takes minutes); calls
// that change one app (Deploy, Rollback, Stop, PruneReleases, and a
// supervision pass over it) hold that app's lock (StateDir::LockApp, a flock
// per app: one holder across threads and processes): Deploy, Rollback, Stop
// and PruneReleases wait for it, Reconcile skips an app whose lock another
// holds and looks again at its next pass. Read-only calls (Inspect, List,
// Logs) may run at any time, beside any other call: the state files are
// replaced atomically. What the Runtime keeps in memory (the health
// rechecks) is guarded by a mutex. Several processes may open the same state
// directory only for read-only calls while one of them changes it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "appspec/app_spec.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/status.h"
#include "runtime/cgroup.h"
#include "runtime/container_control.h"
#include "runtime/state.h"

namespace flotilla::runtime {

struct RuntimeOptions {
  std::string state_dir;     // created 0700 if absent
  std::string monitor_path;  // the flotilla-monitor binary
  // root/version as found on the host; `parent` is derived from state_dir
  // when left empty.
  CgroupOptions cgroup;
  // Where the state records are written (a test passes a fault-injecting Env).
  Env* env = &Env::Default();
};

struct DeployOutcome {
  std::string app;
  std::string release;    // the release that runs now
  bool switched = false;  // false: rolled back (or nothing to do)
  std::string message;
};

struct AppStatus {
  std::string name;
  std::string current;
  std::string previous;
  bool desired_running = true;
  ContainerState state = ContainerState::kNone;
  pid_t init_pid = 0;  // host pid of the container's PID 1 while running
  uint32_t restarts = 0;
  std::string last_exit;
  std::optional<SwitchRecord> switching;
  std::vector<std::string> running_releases;  // every release whose container runs
};

// Where flotilla-monitor is: $FLOTILLA_MONITOR, else beside the running
// binary, else the build tree's layout, else /usr/libexec/flotilla/.
std::string DefaultMonitorPath();

// The cgroup parent for a state dir: "flotilla-" + 12 hex of SHA-256(realpath).
Result<std::string> CgroupParentFor(const std::string& state_dir);

// Release id for a spec and its lowers when the caller names none:
// 12 hex of SHA-256 over the canonical spec JSON and the lower paths.
Result<std::string> DefaultReleaseId(const appspec::AppSpec& spec,
                                     const std::vector<std::string>& lowers);

class Runtime {
 public:
  static Result<std::unique_ptr<Runtime>> Open(RuntimeOptions options, const Clock& clock);

  // Makes `release` (spec + lowers) the app's running release: starts it
  // beside the old one (or after stopping it, for switch mode stop-first),
  // waits until healthy, then stops the old one; when it is not healthy in
  // time, stops it and brings the old one back. Every step is persisted
  // before the next, and an interrupted switch is finished by the next
  // Reconcile or Deploy. An empty `release` is DefaultReleaseId.
  Result<DeployOutcome> Deploy(const appspec::AppSpec& spec, const std::vector<std::string>& lowers,
                               std::string release = "");

  // Switches back to the previous release, the same way.
  Result<DeployOutcome> Rollback(const std::string& app);

  // Runs `spec` once in the foreground, as `runc run` does: a throwaway
  // container (its own dir under <state>/run/), waits for it to exit, and
  // returns the exit record and the log ring. No app record is kept.
  struct RunOnceResult {
    ExitRecord exit;
    std::string logs;
  };
  Result<RunOnceResult> RunOnce(const appspec::AppSpec& spec,
                                const std::vector<std::string>& lowers);

  // Stops the app's containers and keeps it stopped until the next Deploy.
  Status Stop(const std::string& app);

  // Removes the release directories (spec, container files, log) of every
  // release of `app` other than the current and the previous one and those a
  // switch in flight names, stopping any container still running there.
  // Returns the release ids removed. Volumes are kept.
  Result<std::vector<std::string>> PruneReleases(const std::string& app);

  Result<std::vector<AppStatus>> List() const;
  Result<AppStatus> Inspect(const std::string& app) const;

  // The log ring of `release` (default: the current one, else the one a
  // switch is bringing up); with `since_unix_s` > 0, its lines since then
  // (ContainerControl::Logs).
  Result<std::string> Logs(const std::string& app, const std::string& release = "",
                           int64_t since_unix_s = 0) const;

  // Writes an OCI runtime bundle (config.json + rootfs/) of the app's
  // current release into `out_dir`, for comparison with runc.
  Status ExportBundle(const std::string& app, const std::string& out_dir) const;

  // One supervision pass: finishes interrupted switches, records exits
  // (including ones that happened while no node ran), restarts by policy
  // with exponential backoff, stops strays. Returns how soon the next pass
  // is wanted.
  Result<Duration> Reconcile();

 private:
  Runtime(RuntimeOptions options, const Clock& clock, std::unique_ptr<CgroupDriver> cgroups);

  Result<DeployOutcome> SwitchTo(AppRecord record, const std::string& release);
  // The release switch (docs/runtime.md, "Release switch"): RunSwitch takes
  // steps until the switch ends; each step persists the next before returning
  // an empty optional, or returns the outcome once the switch ended.
  Result<DeployOutcome> RunSwitch(AppRecord& record);
  Result<std::optional<DeployOutcome>> TakeSwitchStep(AppRecord& record, bool stop_first);
  Result<std::optional<DeployOutcome>> StopOldRelease(AppRecord& record);
  Result<std::optional<DeployOutcome>> StartNewRelease(AppRecord& record);
  Result<std::optional<DeployOutcome>> CheckNewRelease(AppRecord& record);
  Result<DeployOutcome> CommitSwitch(AppRecord& record);
  Result<DeployOutcome> FailSwitch(AppRecord& record, const Status& why);
  Result<DeployOutcome> FinishRollback(AppRecord& record);
  Status EnsureStarted(const std::string& app, const std::string& release);
  Status Persist(AppRecord& record, std::optional<SwitchStep> step);
  Result<RunningRecord> StartRelease(const std::string& app, const std::string& release);
  Result<LaunchPlan> PlanFor(const appspec::AppSpec& spec, std::vector<std::string> lowers,
                             const std::string& dir, const std::string& app);
  Status StopRelease(const std::string& app, const std::string& release);
  bool IsRunning(const std::string& app, const std::string& release) const;
  // OK when healthy; otherwise why not.
  Status WaitHealthy(const std::string& app, const std::string& release);
  Result<Duration> SuperviseApp(const std::string& app);
  Result<Duration> RestartByPolicy(AppRecord& record, ContainerStatus c);
  Status RecordLost(const std::string& app, const std::string& release);
  // Health rechecks of the running current release (docs/runtime.md,
  // "Supervision"); the count of failures in a row lives in rechecks_.
  Result<Duration> RecheckHealth(const std::string& app, const std::string& release,
                                 const RunningRecord& running);
  Status StopUnhealthy(const std::string& app, const std::string& release,
                       const std::string& reason);
  // One probe of an exec or http check: OK when healthy, else why not.
  Status ProbeHealth(const appspec::HealthSpec& health, const std::string& dir);
  Status StopStrays(const AppRecord& record);
  struct HealthRecheck;
  HealthRecheck& RecheckOf(const std::string& app);
  std::string CgroupName(const std::string& app, const std::string& release) const {
    return app + "_" + release;
  }

  RuntimeOptions options_;
  const Clock& clock_;
  StateDir state_;
  std::unique_ptr<CgroupDriver> cgroups_;
  std::unique_ptr<ContainerControl> containers_;

  // Per app, kept in memory: a node restart starts the count afresh, and a
  // new container (another PID 1) resets it.
  struct HealthRecheck {
    pid_t init_pid = 0;
    uint64_t init_start_ticks = 0;
    MonoTime due{};
    uint32_t failures = 0;
  };
  std::mutex rechecks_mu_;  // guards the map, not its entries (see RecheckOf)
  std::map<std::string, HealthRecheck> rechecks_;
};

}  // namespace flotilla::runtime
