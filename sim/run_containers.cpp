#include "sim/run_containers.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "runtime/runtime.h"

namespace flotilla::sim {
namespace {

namespace fs = std::filesystem;

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string out;
  char buffer[4096];
  while (in && out.size() < (1 << 16)) {
    in.read(buffer, sizeof buffer);
    out.append(buffer, static_cast<size_t>(in.gcount()));
  }
  return out;
}

bool Under(const std::string& path, const std::string& dir) {
  return path == dir || path.starts_with(dir + "/");
}

// /proc/<pid>/cgroup lines are "id:controllers:/path"; true if any path is
// a cgroup of `parents` (the parent itself or below it).
bool InCgroupOf(pid_t pid, const std::vector<std::string>& parents) {
  std::istringstream in(ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup"));
  for (std::string line; std::getline(in, line);) {
    size_t colon = line.find(':', line.find(':') + 1);
    if (colon == std::string::npos) continue;
    std::string path = line.substr(colon + 1);
    for (const std::string& parent : parents) {
      // The parent sits at the hierarchy's root, or deeper when the
      // runtime itself ran inside a cgroup (a systemd unit).
      if (path.find("/" + parent) == std::string::npos) continue;
      size_t at = path.find("/" + parent);
      size_t end = at + 1 + parent.size();
      if (end == path.size() || path[end] == '/') return true;
    }
  }
  return false;
}

bool NamesRunDir(pid_t pid, const std::string& run_dir) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string cmdline = ReadSmallFile(proc + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  if (cmdline.find(run_dir + "/") != std::string::npos) return true;
  std::error_code ec;
  fs::path cwd = fs::read_symlink(proc + "/cwd", ec);
  return !ec && Under(cwd.string(), run_dir);
}

// Running, not a zombie waiting to be reaped.
bool Alive(pid_t pid) {
  std::string stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

std::vector<std::string> NodeRuntimeDirs(const std::string& run_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir + "/nodes", ec)) {
    std::string dir = (entry.path() / "data" / "runtime").string();
    if (fs::is_directory(dir, ec)) out.push_back(dir);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> RunCgroupParents(const std::string& run_dir) {
  std::vector<std::string> out;
  for (const std::string& dir : NodeRuntimeDirs(run_dir)) {
    ASSIGN_OR_RETURN(std::string parent, runtime::CgroupParentFor(dir));
    out.push_back(std::move(parent));
  }
  return out;
}

std::vector<std::string> CgroupDirsOf(const std::string& parent, const std::string& cgroup_root) {
  std::vector<std::string> hierarchies;
  std::error_code ec;
  if (fs::exists(cgroup_root + "/cgroup.controllers", ec)) {
    hierarchies.push_back(cgroup_root);
  } else {
    for (const auto& entry : fs::directory_iterator(cgroup_root, ec)) {
      // Symlinks (cpu -> cpu,cpuacct) name a hierarchy listed anyway.
      if (entry.is_directory(ec) && !entry.is_symlink(ec)) hierarchies.push_back(entry.path());
    }
  }
  std::vector<std::string> out;
  for (const std::string& hierarchy : hierarchies) {
    const std::string top = hierarchy + "/" + parent;
    if (!fs::is_directory(top, ec)) continue;
    // Children first (a cgroup directory is removed only once empty).
    std::vector<std::string> below;
    for (auto it = fs::recursive_directory_iterator(top, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec)) below.push_back(it->path());
    }
    std::sort(below.begin(), below.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
    out.insert(out.end(), below.begin(), below.end());
    out.push_back(top);
  }
  return out;
}

std::vector<pid_t> RunProcessesOutside(const std::string& run_dir,
                                       const std::vector<std::string>& parents) {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = std::stoi(name);
    if (pid == self || !Alive(pid)) continue;
    if (InCgroupOf(pid, parents) || NamesRunDir(pid, run_dir)) out.push_back(pid);
  }
  return out;
}

Result<SweepResult> SweepRunContainers(const std::string& run_dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> parents, RunCgroupParents(run_dir));
  return SweepContainers(run_dir, parents);
}

Result<SweepResult> SweepContainers(const std::string& run_dir,
                                    const std::vector<std::string>& parents) {
  SweepResult result;
  std::set<pid_t> killed;
  std::vector<std::string> dirs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    // Kill again on every pass: a container being started may add a process.
    for (pid_t pid : RunProcessesOutside(run_dir, parents)) {
      if (::kill(pid, SIGKILL) == 0) killed.insert(pid);
    }
    dirs.clear();
    for (const std::string& parent : parents) {
      for (std::string& dir : CgroupDirsOf(parent)) dirs.push_back(std::move(dir));
    }
    std::vector<std::string> left;
    for (const std::string& dir : dirs) {
      if (::rmdir(dir.c_str()) == 0) {
        ++result.cgroups_removed;
      } else if (errno != ENOENT) {
        left.push_back(dir + ": " + std::strerror(errno));
      }
    }
    bool alive = std::any_of(killed.begin(), killed.end(), Alive);
    if (left.empty() && !alive) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable("run " + run_dir + ": could not remove cgroup " +
                         (left.empty() ? std::string("(processes still alive)") : left.front()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  result.processes_killed = killed.size();
  return result;
}

}  // namespace flotilla::sim
