// OCI runtime bundle export (config.json + rootfs/) of an app's current
// release, so an operator can run the same app under runc and compare.
// The rootfs is the lowers copied bottom-up, overlay whiteouts applied.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>

#include "core/file_io.h"
#include "runtime/device_filter.h"
#include "runtime/privileges.h"
#include "runtime/runtime.h"

namespace flotilla::runtime {
namespace {

namespace fs = std::filesystem;

bool IsWhiteout(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// Copies one lower over `root`, overlayfs-style: a 0:0 character device
// deletes what lies below it.
Status CopyLayer(const fs::path& lower, const fs::path& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(lower, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    fs::path target = root / it->path().lexically_relative(lower);
    if (IsWhiteout(it->path())) {
      fs::remove_all(target, ec);
      continue;
    }
    if (it->is_directory() && !it->is_symlink()) {
      if (fs::is_symlink(fs::symlink_status(target))) fs::remove(target, ec);
      fs::create_directories(target, ec);
      struct stat st;
      if (::lstat(it->path().c_str(), &st) == 0) ::chmod(target.c_str(), st.st_mode & 07777);
      continue;
    }
    fs::remove_all(target, ec);
    fs::copy(it->path(), target, fs::copy_options::copy_symlinks, ec);
    if (ec) return IOErrorFromErrno("copy " + it->path().string(), ec.value());
  }
  if (ec) return IOErrorFromErrno("walk " + lower.string(), ec.value());
  return Status::Ok();
}

Json CapabilityJson(const appspec::AppSpec& spec) {
  Json caps = spec.capabilities;
  return {{"bounding", caps},
          {"effective", caps},
          {"inheritable", caps},
          {"permitted", caps},
          {"ambient", caps}};
}

Json MountsJson(const appspec::AppSpec& spec, const std::vector<std::string>& volume_sources) {
  Json mounts =
      Json::array({{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                   {{"destination", "/dev"},
                    {"type", "tmpfs"},
                    {"source", "tmpfs"},
                    {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
                   {{"destination", "/dev/pts"},
                    {"type", "devpts"},
                    {"source", "devpts"},
                    {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
                   {{"destination", "/dev/shm"},
                    {"type", "tmpfs"},
                    {"source", "shm"},
                    {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
                   {{"destination", "/dev/mqueue"},
                    {"type", "mqueue"},
                    {"source", "mqueue"},
                    {"options", {"nosuid", "noexec", "nodev"}}},
                   {{"destination", "/sys"},
                    {"type", "sysfs"},
                    {"source", "sysfs"},
                    {"options", {"nosuid", "noexec", "nodev", "ro"}}}});
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    Json options = {"rbind"};
    if (spec.mounts[i].read_only) options.push_back("ro");
    mounts.push_back({{"destination", spec.mounts[i].destination},
                      {"type", "bind"},
                      {"source", volume_sources[i]},
                      {"options", options}});
  }
  return mounts;
}

Json LinuxJson(const appspec::AppSpec& spec) {
  Json ns =
      Json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}});
  if (spec.network == "none") ns.push_back({{"type", "network"}});
  Json devices = Json::array({{{"allow", false}, {"access", "rwm"}}});
  for (const auto& rule : DefaultDeviceRules()) {
    Json d = {{"allow", true}, {"type", std::string(1, rule.type)}, {"access", rule.access}};
    if (rule.major >= 0) d["major"] = rule.major;
    if (rule.minor >= 0) d["minor"] = rule.minor;
    devices.push_back(d);
  }
  Json resources = {{"devices", devices}};
  if (spec.resources.memory_bytes) resources["memory"] = {{"limit", spec.resources.memory_bytes}};
  if (spec.resources.pids) resources["pids"] = {{"limit", spec.resources.pids}};
  if (spec.resources.cpu_millis) {
    resources["cpu"] = {{"quota", spec.resources.cpu_millis * 100}, {"period", 100000}};
  }
  return {{"namespaces", ns},
          {"seccomp", DefaultSeccompOciJson()},
          {"resources", resources},
          {"maskedPaths",
           {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
            "/sys/firmware", "/sys/devices/virtual/powercap"}},
          {"readonlyPaths",
           {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}};
}

}  // namespace

Status Runtime::ExportBundle(const std::string& app, const std::string& out_dir) const {
  ASSIGN_OR_RETURN(AppRecord record, state_.LoadApp(app));
  if (record.current.empty()) return FailedPrecondition(app + " has no current release");
  ASSIGN_OR_RETURN(appspec::AppSpec spec, state_.LoadReleaseSpec(app, record.current));
  ASSIGN_OR_RETURN(auto lowers, state_.LoadReleaseLowers(app, record.current));
  const fs::path rootfs = fs::path(out_dir) / "rootfs";
  std::error_code ec;
  if (fs::exists(rootfs, ec)) return AlreadyExists(rootfs.string() + " exists already");
  RETURN_IF_ERROR(CreateDirectories(rootfs.string(), 0755));
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) {
    RETURN_IF_ERROR(CopyLayer(*it, rootfs));
  }
  std::vector<std::string> sources;
  for (const auto& m : spec.mounts) {
    sources.push_back(m.type == "volume" ? state_.VolumeDir(app, m.name) : m.source);
  }
  Json rlimits = Json::array();
  for (const auto& l : spec.rlimits) {
    rlimits.push_back({{"type", l.type}, {"soft", l.soft}, {"hard", l.hard}});
  }
  Json config = {{"ociVersion", "1.0.2"},
                 {"process",
                  {{"terminal", false},
                   {"user",
                    {{"uid", spec.user.uid},
                     {"gid", spec.user.gid},
                     {"additionalGids", spec.user.additional_gids}}},
                   {"args", spec.command},
                   {"env", spec.env},
                   {"cwd", spec.cwd},
                   {"capabilities", CapabilityJson(spec)},
                   {"rlimits", rlimits},
                   {"noNewPrivileges", true},
                   {"oomScoreAdj", spec.oom_score_adj}}},
                 {"root", {{"path", "rootfs"}, {"readonly", spec.read_only_rootfs}}},
                 {"hostname", spec.hostname},
                 {"mounts", MountsJson(spec, sources)},
                 {"linux", LinuxJson(spec)}};
  return WriteFileAtomic(out_dir + "/config.json", config.dump(2) + "\n", 0644);
}

}  // namespace flotilla::runtime
