#include "runtime/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/canonical_json.h"
#include "core/enum_names.h"
#include "core/file_io.h"
#include "runtime/state_file.h"

namespace flotilla::runtime {
namespace {

constexpr EnumName<SwitchStep> kSwitchStepNames[] = {{SwitchStep::kPrepared, "prepared"},
                                                     {SwitchStep::kNewStarted, "new-started"},
                                                     {SwitchStep::kOldStopped, "old-stopped"},
                                                     {SwitchStep::kNewHealthy, "new-healthy"},
                                                     {SwitchStep::kRollingBack, "rolling-back"}};

}  // namespace

std::string_view SwitchStepName(SwitchStep step) { return NameOf(kSwitchStepNames, step); }

Result<AppLock> StateDir::LockApp(const std::string& app, bool wait) const {
  if (!appspec::IsValidName(app)) return InvalidArgument("'" + app + "' is not a valid app name");
  Status made = env_.MakeDir(AppDir(app), 0700);
  if (!made.ok() && made.code() != StatusCode::kAlreadyExists) return made;
  const std::string path = AppDir(app) + "/lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  while (::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return AppLock();
    return IOErrorFromErrno("lock " + path, errno);
  }
  // A new app's directory is made durable once it is locked. Supervision
  // can still meet it between the mkdir and the lock: it skips an app
  // without a record.
  if (made.ok()) RETURN_IF_ERROR(env_.SyncDir(root_ + "/apps"));
  return AppLock(std::move(fd));
}

Result<std::vector<std::string>> StateDir::ListApps() const {
  std::vector<std::string> apps;
  DIR* dir = ::opendir((root_ + "/apps").c_str());
  if (dir == nullptr) return apps;
  while (dirent* e = ::readdir(dir)) {
    if (appspec::IsValidName(e->d_name)) apps.push_back(e->d_name);
  }
  ::closedir(dir);
  std::sort(apps.begin(), apps.end());
  return apps;
}

Result<AppRecord> StateDir::LoadApp(const std::string& app) const {
  if (!appspec::IsValidName(app)) return InvalidArgument("'" + app + "' is not a valid app name");
  auto read = [](JsonObjectReader& r, AppRecord& rec) {
    r.Require({"name", "current", "previous", "desired_running", "restarts", "last_exit",
               "last_exit_unix_ms"});
    r.String("name", rec.name);
    r.String("current", rec.current);
    r.String("previous", rec.previous);
    r.Bool("desired_running", rec.desired_running);
    r.Unsigned("restarts", rec.restarts);
    r.String("last_exit", rec.last_exit);
    r.Int("last_exit_unix_ms", rec.last_exit_unix_ms);
    r.Object("switch", [&](JsonObjectReader& s) {  // null: no switch in flight
      SwitchRecord& sw = rec.switching.emplace();
      s.Require({"from", "to", "step", "reason"});
      s.String("from", sw.from);
      s.String("to", sw.to);
      s.Choice("step", kSwitchStepNames, sw.step);
      s.String("reason", sw.reason);
    });
  };
  return LoadStateRecord<AppRecord>(AppDir(app) + "/app.json", read);
}

Status StateDir::SaveApp(const AppRecord& r) const {
  Json j = {{"name", r.name},
            {"current", r.current},
            {"previous", r.previous},
            {"desired_running", r.desired_running},
            {"restarts", r.restarts},
            {"last_exit", r.last_exit},
            {"last_exit_unix_ms", r.last_exit_unix_ms},
            {"switch", nullptr}};
  if (r.switching) {
    j["switch"] = {{"from", r.switching->from},
                   {"to", r.switching->to},
                   {"step", SwitchStepName(r.switching->step)},
                   {"reason", r.switching->reason}};
  }
  RETURN_IF_ERROR(CreateDurableDirectories(env_, AppDir(r.name), 0700));
  return WriteFileAtomic(AppDir(r.name) + "/app.json", j.dump(2) + "\n", 0600, env_);
}

Status StateDir::SaveRelease(const std::string& app, const std::string& release,
                             const appspec::AppSpec& spec,
                             const std::vector<std::string>& lowers) const {
  const std::string dir = ReleaseDir(app, release);
  RETURN_IF_ERROR(CreateDurableDirectories(env_, dir, 0700));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/lowers.json", Json(lowers).dump() + "\n", 0600, env_));
  return WriteFileAtomic(dir + "/spec.json", appspec::AppSpecToJson(spec).dump(2) + "\n", 0600,
                         env_);
}

Result<appspec::AppSpec> StateDir::LoadReleaseSpec(const std::string& app,
                                                   const std::string& release) const {
  ASSIGN_OR_RETURN(Json j, LoadStateJson(ReleaseDir(app, release) + "/spec.json"));
  return appspec::ParseAppSpec(j);
}

Result<std::vector<std::string>> StateDir::LoadReleaseLowers(const std::string& app,
                                                             const std::string& release) const {
  ASSIGN_OR_RETURN(Json j, LoadStateJson(ReleaseDir(app, release) + "/lowers.json"));
  if (!j.is_array()) return Corruption("lowers.json is not an array");
  std::vector<std::string> lowers;
  for (const auto& l : j) {
    if (!l.is_string()) return Corruption("lowers.json holds a non-string");
    lowers.push_back(l.get<std::string>());
  }
  return lowers;
}

}  // namespace flotilla::runtime
