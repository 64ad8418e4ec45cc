#include "node/agent/agent_install.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/fd.h"
#include "core/file_io.h"
#include "node/agent/agent_update.h"

extern char** environ;

namespace flotilla::node::agent {
namespace {

constexpr size_t kMaxVersionOutput = 4096;

Status CopyBinary(const std::string& from, const std::string& to, Env& env) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return IOErrorFromErrno("open " + from, errno);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return IOErrorFromErrno("stat " + from, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(from + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxAgentBinaryBytes) {
    return ResourceExhausted(from + ": larger than " + std::to_string(kMaxAgentBinaryBytes) +
                             " bytes");
  }
  ASSIGN_OR_RETURN(auto out, env.OpenForWrite(to, OpenMode::kCreateNew, 0700));
  std::vector<uint8_t> buffer(1 << 20);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(in.get(), buffer));
    if (n == 0) break;
    RETURN_IF_ERROR(out->Append(ByteSpan(buffer.data(), n)).WithContext("write " + to));
  }
  if (::fchmod(out->fd(), 0755) != 0) return IOErrorFromErrno("chmod " + to, errno);
  RETURN_IF_ERROR(out->Sync().WithContext("fsync " + to));
  return out->Close();
}

struct Child {
  pid_t pid = -1;
  UniqueFd output;
};

Result<Child> Spawn(const std::string& binary) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return IOErrorFromErrno("pipe", errno);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  const std::string arg = "--version";
  std::array<char*, 3> argv = {const_cast<char*>(binary.c_str()), const_cast<char*>(arg.c_str()),
                               nullptr};
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return IOErrorFromErrno("run " + binary, err);
  return Child{pid, std::move(read_end)};
}

// An agent release holds the three binaries and nothing else
// (docs/agent-update.md, "The agent as a release"): anything more is
// refused before a byte is copied, naming the first entry found.
Status CheckHoldsOnlyTheBinaries(const std::string& source_dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(source_dir, ec);
  if (ec) return IOErrorFromErrno("list " + source_dir, ec.value());
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool known = std::any_of(std::begin(kAgentBinaries), std::end(kAgentBinaries),
                                   [&](const char* binary) { return name == binary; });
    if (!known) {
      return InvalidArgument("it holds '" + name +
                             "'; an agent release holds flotilla-node, flotilla-node-full and "
                             "flotilla-monitor, and nothing else");
    }
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) {
      return InvalidArgument("its '" + name + "' is not a regular file");
    }
  }
  if (ec) return IOErrorFromErrno("list " + source_dir, ec.value());
  return Status::Ok();
}

}  // namespace

Status InstallRelease(const AgentLayout& layout, uint64_t release, const std::string& source_dir,
                      Env& env) {
  if (release == 0) return InvalidArgument("agent release must be at least 1");
  RETURN_IF_ERROR(CheckHoldsOnlyTheBinaries(source_dir)
                      .WithContext("install agent release " + std::to_string(release)));
  RETURN_IF_ERROR(CreateDurableDirectories(env, layout.releases(), 0700));
  const std::string dir = layout.release_dir(release);
  const std::string tmp = dir + ".tmp";
  RETURN_IF_ERROR(env.RemoveTree(tmp));
  RETURN_IF_ERROR(env.MakeDir(tmp, 0700));
  for (const char* name : kAgentBinaries) {
    RETURN_IF_ERROR(CopyBinary(source_dir + "/" + name, tmp + "/" + name, env)
                        .WithContext("install agent release " + std::to_string(release)));
  }
  RETURN_IF_ERROR(env.SyncDir(tmp));
  RETURN_IF_ERROR(env.RemoveTree(dir));
  RETURN_IF_ERROR(env.Rename(tmp, dir));
  return env.SyncDir(layout.releases());
}

Result<std::string> SelfCheck(const std::string& binary, const Clock& clock,
                              std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(Child child, Spawn(binary));
  const MonoTime deadline = clock.MonotonicNow() + timeout;
  std::string output;
  bool open = true;
  while (open && output.size() < kMaxVersionOutput) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.MonotonicNow());
    if (left.count() <= 0) break;
    pollfd p{child.output.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    std::array<uint8_t, 512> chunk;
    auto n = ReadSome(child.output.get(), chunk);
    if (!n.ok() || *n == 0) {
      open = false;
      break;
    }
    output.append(reinterpret_cast<const char*>(chunk.data()), *n);
  }
  int wstatus = 0;
  pid_t waited = 0;
  if (open) {
    // Still writing or hanging past the deadline: it does not pass.
    ::kill(child.pid, SIGKILL);
  }
  do {
    waited = ::waitpid(child.pid, &wstatus, 0);
  } while (waited < 0 && errno == EINTR);
  const std::string line = output.substr(0, output.find('\n'));
  if (open) {
    return DeadlineExceeded(binary + " --version did not finish within " +
                            std::to_string(timeout.count()) + " s");
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return FailedPrecondition(binary + " --version failed (" +
                              (WIFEXITED(wstatus) ? "exit " + std::to_string(WEXITSTATUS(wstatus))
                                                  : "signal " + std::to_string(WTERMSIG(wstatus))) +
                              "): " + line);
  }
  if (line.rfind("flotilla-node ", 0) != 0) {
    return FailedPrecondition(binary + " --version printed '" + line +
                              "', not flotilla-node's version");
  }
  return line;
}

Status SelfCheckRelease(const AgentLayout& layout, uint64_t release, const Clock& clock) {
  const std::string dir = layout.release_dir(release);
  for (const char* name : {"flotilla-node-full", "flotilla-node"}) {
    auto checked = SelfCheck(dir + "/" + name, clock);
    if (!checked.ok()) {
      return checked.status().WithContext("agent release " + std::to_string(release) +
                                          " cannot run here");
    }
  }
  return Status::Ok();
}

Status StageRelease(const AgentLayout& layout, uint64_t release, uint64_t packaged_release,
                    bool dry_run) {
  std::optional<SlotsLock> lock;
  if (!dry_run) {
    RETURN_IF_ERROR(CreateDurableDirectories(Env::Default(), layout.root, 0700));
    ASSIGN_OR_RETURN(SlotsLock held, SlotsLock::Acquire(layout.lock()));
    lock.emplace(std::move(held));
  }
  ASSIGN_OR_RETURN(AgentSlots slots, LoadAgentSlots(layout.slots()));
  RETURN_IF_ERROR(Stage(slots, release, packaged_release));
  return dry_run ? Status::Ok() : SaveAgentSlots(layout.slots(), slots);
}

Result<bool> RecordFloor(const AgentLayout& layout, uint64_t floor) {
  if (floor == 0) return false;  // none set: nothing to keep, agent/ not created
  RETURN_IF_ERROR(CreateDurableDirectories(Env::Default(), layout.root, 0700));
  ASSIGN_OR_RETURN(SlotsLock lock, SlotsLock::Acquire(layout.lock()));
  ASSIGN_OR_RETURN(AgentSlots slots, LoadAgentSlots(layout.slots()));
  if (floor <= slots.floor) return false;
  slots.floor = floor;
  RETURN_IF_ERROR(SaveAgentSlots(layout.slots(), slots));
  return true;
}

Status MarkRollbackReported(const AgentLayout& layout, uint64_t release) {
  ASSIGN_OR_RETURN(SlotsLock lock, SlotsLock::Acquire(layout.lock()));
  ASSIGN_OR_RETURN(AgentSlots slots, LoadAgentSlots(layout.slots()));
  if (!slots.rolled_back || slots.rolled_back->release != release || slots.rolled_back->reported) {
    return Status::Ok();
  }
  slots.rolled_back->reported = true;
  return SaveAgentSlots(layout.slots(), slots);
}

Status InstallAndStage(const AgentLayout& layout, uint64_t release, const std::string& source_dir,
                       uint64_t packaged_release, const Clock& clock) {
  RETURN_IF_ERROR(StageRelease(layout, release, packaged_release, /*dry_run=*/true));
  Status installed = InstallRelease(layout, release, source_dir);
  if (installed.ok()) installed = SelfCheckRelease(layout, release, clock);
  if (installed.ok())
    installed = StageRelease(layout, release, packaged_release, /*dry_run=*/false);
  if (!installed.ok()) Env::Default().RemoveTree(layout.release_dir(release)).IgnoreError();
  return installed;
}

Status PruneReleases(const AgentLayout& layout, const std::vector<uint64_t>& keep, Env& env) {
  std::error_code ec;
  std::filesystem::directory_iterator it(layout.releases(), ec);
  if (ec) return Status::Ok();  // nothing installed
  bool removed = false;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    const bool kept = std::any_of(keep.begin(), keep.end(),
                                  [&](uint64_t r) { return r != 0 && name == std::to_string(r); });
    if (kept) continue;
    RETURN_IF_ERROR(env.RemoveTree(entry.path().string()));
    removed = true;
  }
  return removed ? env.SyncDir(layout.releases()) : Status::Ok();
}

}  // namespace flotilla::node::agent
