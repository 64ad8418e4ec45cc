// Installing an agent release beside the running one, and the self-check
// before the switch (docs/agent-update.md, "The update, step by step", steps
// 2 to 4). Runs on a worker lane or in a command, never on the daemon's loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/clock.h"
#include "core/env.h"
#include "core/status.h"
#include "node/agent/agent_layout.h"
#include "node/agent/agent_slots.h"

namespace flotilla::node::agent {

// The largest agent binary copied (a static front end and the full node
// with its libraries linked dynamically stay far below it).
inline constexpr uint64_t kMaxAgentBinaryBytes = 256ull << 20;
inline constexpr std::chrono::seconds kSelfCheckTimeout{10};

// Refuses a `source_dir` holding anything but the three binaries (another
// name, a link, a directory, a special file) before copying anything. Then
// copies the three binaries of `source_dir` (regular files, no symlinks)
// to releases/<release>.tmp/ (mode 0755, each fsynced), renames it to
// releases/<release> and syncs releases/. An existing releases/<release>
// is replaced; a leftover .tmp is removed first.
Status InstallRelease(const AgentLayout& layout, uint64_t release, const std::string& source_dir,
                      Env& env = Env::Default());

// Runs `binary --version` (no shell, stdin /dev/null) and checks that it
// exits 0 within `timeout` and prints "flotilla-node ..." as its first
// word: it loads here (architecture, shared libraries) and is an agent. A
// binary that hangs is killed. Returns the line it printed.
Result<std::string> SelfCheck(const std::string& binary, const Clock& clock,
                              std::chrono::seconds timeout = kSelfCheckTimeout);

// Both binaries a unit start runs: the full node, and the front end.
Status SelfCheckRelease(const AgentLayout& layout, uint64_t release, const Clock& clock);

// Stages `release` in agent.json under the slots' lock (agent::Stage's
// rules against `packaged_release`); with `dry_run` it only checks, taking
// no lock and writing nothing.
Status StageRelease(const AgentLayout& layout, uint64_t release, uint64_t packaged_release,
                    bool dry_run);

// Records `floor`, the agent app's floor as the agent verified it in its
// signed metadata, in agent.json under the slots' lock, when it is above
// the one recorded (a floor only goes up). Whether it changed the file.
Result<bool> RecordFloor(const AgentLayout& layout, uint64_t floor);

// Sets rolled_back.reported in agent.json under the slots' lock, when the
// rollback recorded is still that of `release`.
Status MarkRollbackReported(const AgentLayout& layout, uint64_t release);

// Steps 2 to 4 of an update, as `agent install` and the daemon run them:
// refused before anything is copied when it could not be staged, then the
// binaries of `source_dir` installed, self-checked and staged. On a failure
// releases/<release> is removed again.
Status InstallAndStage(const AgentLayout& layout, uint64_t release, const std::string& source_dir,
                       uint64_t packaged_release, const Clock& clock);

// Removes releases/*.tmp (an install a kill interrupted) and every release
// directory but `keep` (each nonzero); syncs releases/.
Status PruneReleases(const AgentLayout& layout, const std::vector<uint64_t>& keep,
                     Env& env = Env::Default());

}  // namespace flotilla::node::agent
