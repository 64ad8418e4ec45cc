#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

bool ChildProcess::Start(const std::vector<std::string>& argv, const std::string& stdout_path,
                         const std::string& stderr_path) {
  Kill();
  std::vector<std::string> args = argv;
  std::vector<char*> raw;
  for (auto& a : args) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = stderr_path.empty()
                  ? out
                  : ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  return pid_ > 0;
}

int ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int code = WaitExit(grace);
  return code >= 0 ? code : Kill();
}

int ChildProcess::Kill() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return ExitCode(status);
}

int ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  if (!WaitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout,
               std::chrono::milliseconds(20))) {
    return -1;
  }
  pid_ = -1;
  return ExitCode(status);
}

bool ChildProcess::Exited() { return pid_ <= 0 || WaitExit(std::chrono::milliseconds(0)) >= 0; }

}  // namespace flotilla::testing
