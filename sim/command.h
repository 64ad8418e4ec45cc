// Running the network tools (ip, tc, nft, sysctl) as child processes.
//
// Commands are argv vectors run with posix_spawnp: no shell ever sees a
// name, so a scenario cannot inject shell syntax. Output is bounded.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::sim {

struct CommandOutput {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;     // stdout, at most kMaxCommandOutput bytes kept
  std::string err;     // stderr, likewise
};

inline constexpr size_t kMaxCommandOutput = 4 << 20;

// Runs argv[0] (looked up in PATH) with `input` on stdin; waits for it.
// Fails only if the process could not be started or waited for.
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 const std::string& input = {});

// Like RunCommand, but a non-zero exit is an error whose message holds the
// command line and its stderr. Returns stdout.
Result<std::string> RunChecked(const std::vector<std::string>& argv, const std::string& input = {});

// argv prefixed with `ip netns exec NS`.
std::vector<std::string> InNetns(const std::string& ns, std::vector<std::string> argv);

// "ip -n NS a b c" as one line, for error messages.
std::string JoinArgv(const std::vector<std::string>& argv);

}  // namespace flotilla::sim
