// A fixture for runtime end-to-end tests: a lower directory made of
// busybox-static and the probe, a fresh state dir, and helpers that run
// `flotilla-node app ...` and read its answers.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <map>
#include <string>

#include "core/canonical_json.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `flotilla-node app <args> --state-dir <state>`; `env` is prepended.
  CommandResult App(const std::string& args, const std::string& env = "");
  // Writes the spec to a file and deploys it as `release`.
  CommandResult Deploy(const Json& spec, const std::string& release, const std::string& env = "");
  // `app ls --json` as a map by app name.
  std::map<std::string, Json> Ls();
  std::string Logs(const std::string& app, const std::string& release = "");
  // Polls `pred` every 50 ms for up to `seconds`.
  bool WaitFor(const std::function<bool()>& pred, double seconds = 10);
  // Waits until the app's log holds `text`.
  bool WaitForLog(const std::string& app, const std::string& text, double seconds = 10,
                  const std::string& release = "");

  // "key=value" lines of a probe's "facts" output.
  static std::map<std::string, std::string> ParseFacts(const std::string& text);
  // A spec with the fields every test needs.
  static Json BaseSpec(const std::string& name, const Json& command);
  // The host pid of the app process (PID 2 in the container) under init `init_pid`.
  static pid_t AppPidUnder(pid_t init_pid);
  static bool Alive(pid_t pid);

  std::string dir_;
  std::string lower_;
  std::string state_;
  std::string sentinel_;  // a host file no container may see
};

}  // namespace flotilla::testing
