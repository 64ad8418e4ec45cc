#include "runtime/runtime.h"

#include <sodium.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/file_io.h"

namespace flotilla::runtime {
namespace {

Result<std::vector<ResolvedDevice>> ResolveDevices(const appspec::AppSpec& spec) {
  std::vector<ResolvedDevice> out;
  for (const auto& d : spec.devices) {
    struct stat st;
    if (::stat(d.path.c_str(), &st) != 0) return IOErrorFromErrno("device " + d.path, errno);
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
      return InvalidArgument("device " + d.path + " is not a device node");
    }
    out.push_back({d.path, S_ISBLK(st.st_mode) ? 'b' : 'c', ::major(st.st_rdev),
                   ::minor(st.st_rdev), st.st_mode & 07777, d.access});
  }
  return out;
}

// 12 hex digits of the SHA-256 of `text`. libsodium's, not core's
// Sha256Hasher (OpenSSL): OpenSSL's start-up (its configuration file, its
// providers) costs milliseconds, and flotilla-node's `app` front end, which
// starts containers from the command line, then needs no OpenSSL at all.
std::string ShortSha256(std::string_view text) {
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return HexEncode(ByteSpan(digest, sizeof digest)).substr(0, 12);
}

}  // namespace

Result<std::string> CgroupParentFor(const std::string& state_dir) {
  std::error_code ec;
  auto canonical = std::filesystem::canonical(state_dir, ec);
  if (ec) return IOErrorFromErrno("resolve " + state_dir, ec.value());
  return "flotilla-" + ShortSha256(canonical.string());
}

Result<std::string> DefaultReleaseId(const appspec::AppSpec& spec,
                                     const std::vector<std::string>& lowers) {
  ASSIGN_OR_RETURN(std::string canonical,
                   CanonicalJson(Json{{"spec", appspec::AppSpecToJson(spec)}, {"lowers", lowers}}));
  return ShortSha256(canonical);
}

Runtime::Runtime(RuntimeOptions options, const Clock& clock, std::unique_ptr<CgroupDriver> cgroups)
    : options_(std::move(options)),
      clock_(clock),
      state_(options_.state_dir, *options_.env),
      cgroups_(std::move(cgroups)),
      containers_(std::make_unique<ContainerControl>(options_.monitor_path, *cgroups_)) {}

Result<std::unique_ptr<Runtime>> Runtime::Open(RuntimeOptions options, const Clock& clock) {
  if (options.state_dir.empty()) return InvalidArgument("no state directory given");
  RETURN_IF_ERROR(CreateDurableDirectories(*options.env, options.state_dir + "/apps", 0700));
  ::chmod(options.state_dir.c_str(), 0700);
  options.state_dir = std::filesystem::canonical(options.state_dir).string();
  if (::access(options.monitor_path.c_str(), X_OK) != 0) {
    return NotFound("the monitor binary '" + options.monitor_path + "' is not executable");
  }
  if (options.cgroup.parent.empty()) {
    ASSIGN_OR_RETURN(options.cgroup.parent, CgroupParentFor(options.state_dir));
  }
  ASSIGN_OR_RETURN(auto cgroups, MakeCgroupDriver(options.cgroup));
  return std::unique_ptr<Runtime>(new Runtime(std::move(options), clock, std::move(cgroups)));
}

Status Runtime::Persist(AppRecord& record, std::optional<SwitchStep> step) {
  if (step) record.switching->step = *step;
  return state_.SaveApp(record);
}

Result<LaunchPlan> Runtime::PlanFor(const appspec::AppSpec& spec, std::vector<std::string> lowers,
                                    const std::string& dir, const std::string& app) {
  LaunchPlan plan;
  plan.spec = spec;
  plan.lowers = std::move(lowers);
  plan.dir = dir;
  plan.seccomp_cache = state_.root() + "/cache";
  ASSIGN_OR_RETURN(plan.devices, ResolveDevices(plan.spec));
  for (const auto& m : plan.spec.mounts) {
    std::string source = m.source;
    if (m.type == "volume") {
      source = state_.VolumeDir(app, m.name);
      RETURN_IF_ERROR(CreateDirectories(source, 0755));
    }
    plan.mounts.push_back({source, m.destination, m.read_only});
  }
  return plan;
}

Result<RunningRecord> Runtime::StartRelease(const std::string& app, const std::string& release) {
  ASSIGN_OR_RETURN(appspec::AppSpec spec, state_.LoadReleaseSpec(app, release));
  ASSIGN_OR_RETURN(auto lowers, state_.LoadReleaseLowers(app, release));
  ASSIGN_OR_RETURN(LaunchPlan plan,
                   PlanFor(spec, std::move(lowers), state_.ReleaseDir(app, release), app));
  return containers_->Start(std::move(plan), CgroupName(app, release))
      .WithContext("start " + app + " release " + release);
}

Result<Runtime::RunOnceResult> Runtime::RunOnce(const appspec::AppSpec& spec,
                                                const std::vector<std::string>& lowers) {
  const std::string id = spec.name + "-" + std::to_string(::getpid());
  const std::string dir = state_.root() + "/run/" + id;
  RETURN_IF_ERROR(CreateDirectories(dir, 0700));
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  auto plan = PlanFor(spec, lowers, dir, spec.name);
  if (!plan.ok()) {
    cleanup();
    return plan.status();
  }
  auto started = containers_->Start(std::move(*plan), "run_" + id, /*attached=*/true);
  RunOnceResult result;
  if (started.ok()) {
    containers_->WaitForExit(dir, std::chrono::hours(24 * 365));
    ContainerControl::ReapAttached(*started);
    auto exit = LoadExitRecord(dir);
    if (exit.ok()) result.exit = *exit;
    result.logs = containers_->Logs(dir).value_or("");
  }
  cgroups_->Destroy("run_" + id).IgnoreError();
  cleanup();
  if (!started.ok()) return started.status();
  return result;
}

std::string DefaultMonitorPath() {
  if (const char* env = std::getenv("FLOTILLA_MONITOR")) return env;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate : {self / "flotilla-monitor", self / "../runtime/flotilla-monitor",
                                std::filesystem::path("/usr/libexec/flotilla/flotilla-monitor")}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal().string();
  }
  return "flotilla-monitor";
}

Status Runtime::StopRelease(const std::string& app, const std::string& release) {
  auto spec = state_.LoadReleaseSpec(app, release);
  Duration grace = std::chrono::milliseconds(spec.ok() ? spec->stop_grace_ms : 10000);
  return containers_->Stop(state_.ReleaseDir(app, release), CgroupName(app, release), grace);
}

bool Runtime::IsRunning(const std::string& app, const std::string& release) const {
  return !release.empty() &&
         containers_->Inspect(state_.ReleaseDir(app, release)).state == ContainerState::kRunning;
}

Result<DeployOutcome> Runtime::Deploy(const appspec::AppSpec& spec,
                                      const std::vector<std::string>& lowers, std::string release) {
  if (lowers.empty()) return InvalidArgument("deploy " + spec.name + ": no lower directories");
  for (const auto& l : lowers) {
    if (!appspec::IsCleanAbsolutePath(l) || !std::filesystem::is_directory(l)) {
      return InvalidArgument("deploy " + spec.name + ": lower '" + l + "' is not a directory");
    }
  }
  if (release.empty()) {
    ASSIGN_OR_RETURN(release, DefaultReleaseId(spec, lowers));
  }
  if (!appspec::IsValidName(release))
    return InvalidArgument("'" + release + "' is not a valid release id");
  ASSIGN_OR_RETURN(AppLock lock, state_.LockApp(spec.name, /*wait=*/true));
  AppRecord record;
  auto loaded = state_.LoadApp(spec.name);
  if (loaded.ok()) {
    record = *loaded;
    // An interrupted switch is finished first, so at most one is ever in flight.
    if (record.switching) {
      RETURN_IF_ERROR(RunSwitch(record).status());
      ASSIGN_OR_RETURN(record, state_.LoadApp(spec.name));
    }
  } else if (loaded.status().code() == StatusCode::kNotFound) {
    record.name = spec.name;
  } else {
    return loaded.status();
  }
  if (release != record.current) {
    RETURN_IF_ERROR(state_.SaveRelease(spec.name, release, spec, lowers));
  }
  record.desired_running = true;
  return SwitchTo(std::move(record), release);
}

Result<DeployOutcome> Runtime::Rollback(const std::string& app) {
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  ASSIGN_OR_RETURN(AppLock lock, state_.LockApp(app, /*wait=*/true));
  ASSIGN_OR_RETURN(record, state_.LoadApp(app));
  if (record.switching) RETURN_IF_ERROR(RunSwitch(record).status());
  ASSIGN_OR_RETURN(record, state_.LoadApp(app));
  if (record.previous.empty()) return FailedPrecondition(app + " has no previous release");
  record.desired_running = true;
  const std::string previous = record.previous;
  return SwitchTo(std::move(record), previous);
}

Result<DeployOutcome> Runtime::SwitchTo(AppRecord record, const std::string& release) {
  if (release == record.current) {
    DeployOutcome outcome{record.name, release, false, "already the current release"};
    if (IsRunning(record.name, release)) return outcome;
    RETURN_IF_ERROR(state_.SaveApp(record));
    RETURN_IF_ERROR(StartRelease(record.name, release).status());
    Status healthy = WaitHealthy(record.name, release);
    outcome.message = healthy.ok() ? "started" : "started, not healthy: " + healthy.message();
    return outcome;
  }
  record.switching = SwitchRecord{record.current, release, SwitchStep::kPrepared, ""};
  RETURN_IF_ERROR(Persist(record, SwitchStep::kPrepared));
  return RunSwitch(record);
}

namespace {

// What one switch step returns: the outcome once the switch ended, or an
// empty optional to take the next (already persisted) step.
using StepResult = Result<std::optional<DeployOutcome>>;

StepResult NextStep() { return std::optional<DeployOutcome>(); }

StepResult Ended(Result<DeployOutcome> outcome) {
  if (!outcome.ok()) return outcome.status();
  return std::optional<DeployOutcome>(std::move(outcome).value());
}

}  // namespace

// One step at a time from record.switching->step; each step's action is
// idempotent, so a resumed switch may repeat the action of the step it died in.
Result<DeployOutcome> Runtime::RunSwitch(AppRecord& record) {
  if (record.switching->step == SwitchStep::kRollingBack) return FinishRollback(record);
  auto spec = state_.LoadReleaseSpec(record.name, record.switching->to);
  if (!spec.ok()) return FailSwitch(record, spec.status());
  const bool stop_first = spec->switch_mode.mode == appspec::SwitchMode::kStopFirst;
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<DeployOutcome> outcome, TakeSwitchStep(record, stop_first));
    if (outcome) return *std::move(outcome);
  }
}

Result<std::optional<DeployOutcome>> Runtime::TakeSwitchStep(AppRecord& record, bool stop_first) {
  const SwitchRecord& sw = *record.switching;
  switch (sw.step) {
    case SwitchStep::kPrepared:
      if (!stop_first) return StartNewRelease(record);
      return StopOldRelease(record);
    case SwitchStep::kOldStopped:
      if (!stop_first) return Ended(CommitSwitch(record));
      return StartNewRelease(record);
    case SwitchStep::kNewStarted:
      return CheckNewRelease(record);
    case SwitchStep::kNewHealthy:
      if (!IsRunning(record.name, sw.to)) {  // died while no node watched: check it again
        RETURN_IF_ERROR(Persist(record, SwitchStep::kNewStarted));
        return NextStep();
      }
      if (stop_first) return Ended(CommitSwitch(record));
      return StopOldRelease(record);
    case SwitchStep::kRollingBack:
      return Ended(FinishRollback(record));
  }
  return Internal("unknown switch step");
}

Result<std::optional<DeployOutcome>> Runtime::StopOldRelease(AppRecord& record) {
  if (!record.switching->from.empty()) {
    RETURN_IF_ERROR(StopRelease(record.name, record.switching->from));
  }
  RETURN_IF_ERROR(Persist(record, SwitchStep::kOldStopped));
  return NextStep();
}

Result<std::optional<DeployOutcome>> Runtime::StartNewRelease(AppRecord& record) {
  if (Status st = EnsureStarted(record.name, record.switching->to); !st.ok()) {
    return Ended(FailSwitch(record, st));
  }
  RETURN_IF_ERROR(Persist(record, SwitchStep::kNewStarted));
  return NextStep();
}

Result<std::optional<DeployOutcome>> Runtime::CheckNewRelease(AppRecord& record) {
  const std::string& release = record.switching->to;
  Status st = EnsureStarted(record.name, release);
  if (st.ok()) st = WaitHealthy(record.name, release);
  if (!st.ok()) return Ended(FailSwitch(record, st));
  RETURN_IF_ERROR(Persist(record, SwitchStep::kNewHealthy));
  return NextStep();
}

Status Runtime::EnsureStarted(const std::string& app, const std::string& release) {
  if (IsRunning(app, release)) return Status::Ok();
  return StartRelease(app, release).status();
}

Result<DeployOutcome> Runtime::CommitSwitch(AppRecord& record) {
  record.previous = record.switching->from;
  record.current = record.switching->to;
  record.restarts = 0;
  record.switching.reset();
  RETURN_IF_ERROR(Persist(record, std::nullopt));
  return DeployOutcome{record.name, record.current, true, "switched"};
}

Result<DeployOutcome> Runtime::FailSwitch(AppRecord& record, const Status& why) {
  record.switching->reason = why.ToString();
  RETURN_IF_ERROR(Persist(record, SwitchStep::kRollingBack));
  return FinishRollback(record);
}

Result<DeployOutcome> Runtime::FinishRollback(AppRecord& record) {
  const std::string app = record.name;
  SwitchRecord sw = *record.switching;
  RETURN_IF_ERROR(StopRelease(app, sw.to));
  std::string message = "rolled back: " + sw.reason;
  if (!sw.from.empty() && record.desired_running && !IsRunning(app, sw.from)) {
    if (Status st = StartRelease(app, sw.from).status(); !st.ok()) {
      message += "; restarting " + sw.from + " failed: " + st.ToString();
    } else if (Status healthy = WaitHealthy(app, sw.from); !healthy.ok()) {
      message += "; " + sw.from + " is not healthy either: " + healthy.message();
    }
  }
  record.switching.reset();
  RETURN_IF_ERROR(Persist(record, std::nullopt));
  return DeployOutcome{app, record.current, false, message};
}

Status Runtime::Stop(const std::string& app) {
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  ASSIGN_OR_RETURN(AppLock lock, state_.LockApp(app, /*wait=*/true));
  ASSIGN_OR_RETURN(record, state_.LoadApp(app));
  record.desired_running = false;
  record.switching.reset();  // a stop wins over a switch in flight
  RETURN_IF_ERROR(state_.SaveApp(record));
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(state_.AppDir(app) + "/releases", ec)) {
    RETURN_IF_ERROR(StopRelease(app, entry.path().filename().string()));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> Runtime::PruneReleases(const std::string& app) {
  ASSIGN_OR_RETURN(AppLock lock, state_.LockApp(app, /*wait=*/true));
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  std::set<std::string> keep = {record.current, record.previous};
  if (record.switching) {
    keep.insert(record.switching->from);
    keep.insert(record.switching->to);
  }
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(state_.AppDir(app) + "/releases", ec)) {
    const std::string release = entry.path().filename().string();
    if (keep.count(release)) continue;
    RETURN_IF_ERROR(StopRelease(app, release));
    removed.push_back(release);
  }
  if (ec) return IOErrorFromErrno("list releases of " + app, ec.value());
  for (const auto& release : removed) {
    std::filesystem::remove_all(state_.ReleaseDir(app, release), ec);
    if (ec) return IOErrorFromErrno("remove release " + release + " of " + app, ec.value());
  }
  return removed;
}

Result<AppStatus> Runtime::Inspect(const std::string& app) const {
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  AppStatus s;
  s.name = record.name;
  s.current = record.current;
  s.previous = record.previous;
  s.desired_running = record.desired_running;
  s.restarts = record.restarts;
  s.last_exit = record.last_exit;
  s.switching = record.switching;
  if (!record.current.empty()) {
    ContainerStatus c = containers_->Inspect(state_.ReleaseDir(app, record.current));
    s.state = c.state;
    if (c.state == ContainerState::kRunning) s.init_pid = c.running->init_pid;
    if (c.state == ContainerState::kExited) s.last_exit = c.exit->Describe();
  }
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(state_.AppDir(app) + "/releases", ec)) {
    std::string release = entry.path().filename().string();
    if (IsRunning(app, release)) s.running_releases.push_back(release);
  }
  std::sort(s.running_releases.begin(), s.running_releases.end());
  return s;
}

Result<std::vector<AppStatus>> Runtime::List() const {
  ASSIGN_OR_RETURN(auto apps, state_.ListApps());
  std::vector<AppStatus> out;
  for (const auto& app : apps) {
    ASSIGN_OR_RETURN(AppStatus s, Inspect(app));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::string> Runtime::Logs(const std::string& app, const std::string& release,
                                  int64_t since_unix_s) const {
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  std::string which = release;
  if (which.empty()) which = record.current;
  if (which.empty() && record.switching) which = record.switching->to;
  if (which.empty() || !appspec::IsValidName(which))
    return NotFound(app + " has no release to show");
  return containers_->Logs(state_.ReleaseDir(app, which), since_unix_s);
}

}  // namespace flotilla::runtime
