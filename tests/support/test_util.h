// Helpers for end-to-end tests that run flotilla's binaries.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace flotilla::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Runs `command` with /bin/sh and collects its output.
CommandResult RunShell(const std::string& command);

// Path of a binary built by this tree, e.g. BinaryPath("flotilla-node").
std::string BinaryPath(const std::string& name);

// A fresh empty directory under the test temp dir, removed by the caller's TearDown.
std::string MakeTempDir(const std::string& prefix);

// Polls `done` every `period` until it holds or `timeout` passes; checks once
// more at the end, so a zero timeout is one check.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
             std::chrono::milliseconds period = std::chrono::milliseconds(100));

}  // namespace flotilla::testing
