// The runtime's state directory (docs/runtime.md, "State files"):
//
//   <state>/apps/<app>/app.json                  AppRecord, replaced atomically
//   <state>/apps/<app>/releases/<release>/       spec.json, lowers.json, and the
//                                                container files (launch_plan.h)
//   <state>/apps/<app>/volumes/<volume>/         app data kept across releases
//
// app.json is the single record of which release is current and of a switch
// in progress; each step of a switch is written before the next begins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appspec/app_spec.h"
#include "core/env.h"
#include "core/fd.h"
#include "core/status.h"

namespace flotilla::runtime {

// The steps of a release switch, in the order a parallel switch takes them
// (a stop-first switch takes kOldStopped before kNewStarted).
enum class SwitchStep { kPrepared, kNewStarted, kOldStopped, kNewHealthy, kRollingBack };
std::string_view SwitchStepName(SwitchStep step);

struct SwitchRecord {
  std::string from;  // may be empty: a first deploy
  std::string to;
  SwitchStep step = SwitchStep::kPrepared;
  std::string reason;  // why a rollback began
};

struct AppRecord {
  std::string name;
  std::string current;   // release id, empty before the first healthy deploy
  std::string previous;  // what `rollback` goes back to
  bool desired_running = true;
  uint32_t restarts = 0;  // of the current release, by policy
  std::string last_exit;  // description of the last exit seen
  int64_t last_exit_unix_ms = 0;
  std::optional<SwitchRecord> switching;
};

// An exclusive lock on one app (flock on <app dir>/lock): held by whoever
// changes the app (deploy, rollback, stop, a supervision pass), so a node and
// an operator's `app deploy` never drive the same switch at once. The kernel
// drops it when the holder dies, so a SIGKILLed node never leaves it held.
class AppLock {
 public:
  AppLock() = default;
  explicit AppLock(UniqueFd fd) : fd_(std::move(fd)) {}
  bool held() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

class StateDir {
 public:
  // The records are written through `env`.
  StateDir(std::string root, Env& env) : root_(std::move(root)), env_(env) {}
  const std::string& root() const { return root_; }

  std::string AppDir(const std::string& app) const { return root_ + "/apps/" + app; }
  std::string ReleaseDir(const std::string& app, const std::string& release) const {
    return AppDir(app) + "/releases/" + release;
  }
  std::string VolumeDir(const std::string& app, const std::string& volume) const {
    return AppDir(app) + "/volumes/" + volume;
  }

  Result<std::vector<std::string>> ListApps() const;
  Result<AppRecord> LoadApp(const std::string& app) const;  // NotFound if never deployed
  // `wait` false: returns an AppLock that is not held() when another holds it.
  Result<AppLock> LockApp(const std::string& app, bool wait) const;
  Status SaveApp(const AppRecord& record) const;  // atomic

  Status SaveRelease(const std::string& app, const std::string& release,
                     const appspec::AppSpec& spec, const std::vector<std::string>& lowers) const;
  Result<appspec::AppSpec> LoadReleaseSpec(const std::string& app,
                                           const std::string& release) const;
  Result<std::vector<std::string>> LoadReleaseLowers(const std::string& app,
                                                     const std::string& release) const;

 private:
  std::string root_;
  Env& env_;
};

}  // namespace flotilla::runtime
