#include "sim/run_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/canonical_json.h"
#include "core/enum_names.h"
#include "core/file_io.h"
#include "sim/names.h"
#include "sim/netns.h"
#include "sim/run_containers.h"

namespace flotilla::sim {
namespace {

std::string RunDir(const std::string& run_id) { return std::string(kStateRoot) + "/" + run_id; }

// Liveness of a run that has a directory: try its lock without waiting.
RunLiveness ProbeLiveness(const std::string& run_id, bool detached) {
  if (detached) return RunLiveness::kDetached;
  std::string path = RunDir(run_id) + "/lock";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return RunLiveness::kDead;
  bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held ? RunLiveness::kAlive : RunLiveness::kDead;
}

void ReadState(const std::string& run_id, RunInfo& info, bool& detached) {
  auto text = ReadTextFileBounded(RunDir(run_id) + "/state.json", 1 << 20);
  if (!text.ok()) return;
  auto doc = ParseJsonStrict(*text);
  if (!doc.ok() || !doc->is_object()) return;
  detached = doc->value("detached", false);
  info.description = doc->value("description", "");
}

// Mount points at or under `dir`, deepest first.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // Field 5 is the mount point (octal escapes only for odd characters we never create).
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field)
      pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    size_t end = line.find(' ', pos + 1);
    std::string point = line.substr(pos + 1, end - pos - 1);
    if (point == dir || point.starts_with(dir + "/")) found.push_back(point);
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return found;
}

}  // namespace

constexpr EnumName<RunLiveness> kRunLivenessNames[] = {{RunLiveness::kAlive, "alive"},
                                                       {RunLiveness::kDetached, "detached"},
                                                       {RunLiveness::kDead, "dead"},
                                                       {RunLiveness::kOrphan, "orphan"}};

std::string_view RunLivenessName(RunLiveness l) { return NameOf(kRunLivenessNames, l); }

namespace {

Json StateJson(const std::string& run_id, bool detached, const std::string& description) {
  return {{"run_id", run_id},
          {"owner_pid", detached ? 0 : static_cast<int64_t>(::getpid())},
          {"detached", detached},
          {"description", description}};
}

}  // namespace

Result<RunClaim> RunClaim::Create(const std::string& run_id, const std::string& description) {
  RETURN_IF_ERROR(ValidateRunId(run_id));
  // Built under a temporary name and renamed into place, so that `clean`
  // never sees the run's directory without its lock held.
  const std::string dir = RunDir(run_id);
  const std::string temp = std::string(kStateRoot) + "/." + run_id + ".new";
  RETURN_IF_ERROR(CreateDirectories(kStateRoot, 0700));
  if (::access(dir.c_str(), F_OK) == 0) return AlreadyExists("run " + run_id + " exists");
  std::error_code ec;
  std::filesystem::remove_all(temp, ec);
  if (::mkdir(temp.c_str(), 0700) != 0) return IOErrorFromErrno("mkdir " + temp, errno);
  UniqueFd lock(::open((temp + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return IOErrorFromErrno("create lock", errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return IOErrorFromErrno("lock run " + run_id, errno);
  }
  RunClaim claim(run_id, std::move(lock), description);
  RETURN_IF_ERROR(WriteFileAtomic(temp + "/state.json",
                                  StateJson(run_id, false, description).dump(2) + "\n", 0600));
  if (::rename(temp.c_str(), dir.c_str()) != 0) return IOErrorFromErrno("rename " + temp, errno);
  RETURN_IF_ERROR(FsyncDirectory(kStateRoot));
  return claim;
}

Status RunClaim::MarkDetached() {
  return WriteFileAtomic(dir() + "/state.json",
                         StateJson(run_id_, true, description_).dump(2) + "\n", 0600);
}

std::string RunClaim::dir() const { return RunDir(run_id_); }

Status RunClaim::Finish() {
  for (const std::string& point : MountsUnder(dir())) ::umount2(point.c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove_all(dir(), ec);
  lock_.Reset();
  if (ec) return IOErrorFromErrno("remove " + dir(), ec.value());
  return Status::Ok();
}

Result<std::vector<RunInfo>> ListRuns() {
  std::map<std::string, RunInfo> runs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kStateRoot, ec)) {
    std::string id = entry.path().filename();
    if (ValidateRunId(id).ok()) runs[id].run_id = id;
  }
  ASSIGN_OR_RETURN(auto names, ListNetns());
  for (const std::string& ns : names) {
    if (auto id = RunIdOfNetns(ns)) {
      runs[*id].run_id = *id;
      runs[*id].netns.push_back(ns);
    }
  }
  std::vector<RunInfo> out;
  for (auto& [id, info] : runs) {
    if (std::filesystem::exists(RunDir(id))) {
      bool detached = false;
      ReadState(id, info, detached);
      info.liveness = ProbeLiveness(id, detached);
    }
    std::sort(info.netns.begin(), info.netns.end());
    out.push_back(std::move(info));
  }
  return out;
}

Status RemoveRun(const std::string& run_id) {
  RETURN_IF_ERROR(ValidateRunId(run_id));
  ASSIGN_OR_RETURN(auto runs, ListRuns());
  for (const RunInfo& run : runs) {
    if (run.run_id != run_id) continue;
    if (run.liveness == RunLiveness::kAlive) {
      return FailedPrecondition("run " + run_id + " is alive; stop its flotilla-sim first");
    }
    const std::string dir = RunDir(run_id);
    // The apps the run's nodes deployed first: their monitors and cgroups
    // are not the namespaces' (docs/sim.md, "Runs, liveness and cleanup").
    RETURN_IF_ERROR(SweepRunContainers(dir).status());
    for (const std::string& ns : run.netns) RETURN_IF_ERROR(DestroyNetns(ns));
    for (const std::string& point : MountsUnder(dir)) {
      if (::umount2(point.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
        return IOErrorFromErrno("unmount " + point, errno);
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) return IOErrorFromErrno("remove " + dir, ec.value());
    return Status::Ok();
  }
  return NotFound("no run " + run_id);
}

namespace {

// Directories ".<run>.new" of a RunClaim::Create that died half-way.
void RemoveAbandonedClaims() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kStateRoot, ec)) {
    std::string name = entry.path().filename();
    if (!name.starts_with(".") || !name.ends_with(".new")) continue;
    int fd = ::open((entry.path() / "lock").c_str(), O_RDONLY | O_CLOEXEC);
    bool held = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    if (fd >= 0) ::close(fd);
    if (!held) std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace

Result<std::vector<std::string>> CleanRuns(bool include_detached) {
  RemoveAbandonedClaims();
  ASSIGN_OR_RETURN(auto runs, ListRuns());
  std::vector<std::string> removed;
  for (const RunInfo& run : runs) {
    bool remove = run.liveness == RunLiveness::kDead || run.liveness == RunLiveness::kOrphan ||
                  (include_detached && run.liveness == RunLiveness::kDetached);
    if (!remove) continue;
    RETURN_IF_ERROR(RemoveRun(run.run_id).WithContext("clean run " + run.run_id));
    removed.push_back(run.run_id);
  }
  return removed;
}

}  // namespace flotilla::sim
