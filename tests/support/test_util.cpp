#include "tests/support/test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace flotilla::testing {

CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string BinaryPath(const std::string& name) {
  for (const char* dir : {"/tracker/", "/node/", "/sim/", "/bench/"}) {
    std::string path = std::string(FLOTILLA_BINARY_DIR) + dir + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return name;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = ::testing::TempDir() + "/" + prefix + "XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  return made == nullptr ? std::string() : std::string(made);
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
             std::chrono::milliseconds period) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(period);
  }
  return done();
}

}  // namespace flotilla::testing
