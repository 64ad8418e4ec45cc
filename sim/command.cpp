#include "sim/command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"

extern char** environ;

namespace flotilla::sim {
namespace {

// Both ends of a pipe.
struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return IOErrorFromErrno("pipe", errno);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<pid_t> Spawn(const std::vector<std::string>& argv, const Pipe& in, const Pipe& out,
                    const Pipe& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return IOErrorFromErrno("spawn " + argv[0], rc);
  return pid;
}

// Feeds `input` to fd_in and drains fd_out/fd_err until both reach EOF;
// closes all three.
void Pump(int fd_in, int fd_out, int fd_err, const std::string& input, CommandOutput& result) {
  size_t written = 0;
  if (input.empty()) ::close(fd_in), fd_in = -1;
  if (fd_in >= 0) ::fcntl(fd_in, F_SETFL, O_NONBLOCK);
  char buf[16384];
  while (fd_out >= 0 || fd_err >= 0) {
    pollfd fds[3] = {{fd_out, POLLIN, 0}, {fd_err, POLLIN, 0}, {fd_in, POLLOUT, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (fd_in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(fd_in, input.data() + written, input.size() - written);
      if (n > 0) written += n;
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) ::close(fd_in), fd_in = -1;
    }
    for (int i = 0; i < 2; ++i) {
      int& fd = i == 0 ? fd_out : fd_err;
      std::string& sink = i == 0 ? result.out : result.err;
      if (fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0 && sink.size() < kMaxCommandOutput) {
        sink.append(buf, std::min<size_t>(n, kMaxCommandOutput - sink.size()));
      }
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) ::close(fd), fd = -1;
    }
  }
  if (fd_in >= 0) ::close(fd_in);
}

}  // namespace

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv, const std::string& input) {
  if (argv.empty()) return InvalidArgument("empty command");
  ASSIGN_OR_RETURN(Pipe in, MakePipe());
  ASSIGN_OR_RETURN(Pipe out, MakePipe());
  ASSIGN_OR_RETURN(Pipe err, MakePipe());
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, in, out, err));
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  CommandOutput result;
  {
    // A child that exits without reading its stdin must not kill us with
    // SIGPIPE: block it for this thread while feeding, and discard it.
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    Pump(in.write.Release(), out.read.Release(), err.read.Release(), input, result);
    timespec zero{0, 0};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return IOErrorFromErrno("wait for " + argv[0], errno);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Result<std::string> RunChecked(const std::vector<std::string>& argv, const std::string& input) {
  ASSIGN_OR_RETURN(CommandOutput r, RunCommand(argv, input));
  if (r.exit_code != 0) {
    std::string err = r.err.empty() ? r.out : r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Status(StatusCode::kIOError, "`" + JoinArgv(argv) + "` exited with " +
                                            std::to_string(r.exit_code) + ": " + err);
  }
  return std::move(r.out);
}

std::vector<std::string> InNetns(const std::string& ns, std::vector<std::string> argv) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  return fmt::format("{}", fmt::join(argv, " "));
}

}  // namespace flotilla::sim
