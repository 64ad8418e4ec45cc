// agent.json: which installed agent release the launcher runs, which one is
// on probation, and which one was rolled back (docs/agent-update.md,
// "agent.json (format 1)").
//
// The file is read by the launcher and the check, both the packaged (.deb)
// binary, which may be older than the agent that wrote it: readers ignore
// members they do not know, and a format above 1 is refused with a message
// (the launcher then runs the packaged agent).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/env.h"
#include "core/status.h"

namespace flotilla::node::agent {

inline constexpr uint64_t kAgentSlotsFormat = 1;

// A release installed and waiting for, or in, its probation.
struct Candidate {
  uint64_t release = 0;
  // 1 when staged, 0 once the launcher started it.
  uint64_t tries_left = 1;
  // The process on probation and since when (the kernel's monotonic clock of
  // boot `boot_id`, seconds); 0 / "" before the launcher started it.
  int64_t pid = 0;
  std::string boot_id;
  int64_t started_mono_s = 0;

  bool launched() const { return tries_left == 0; }
  friend bool operator==(const Candidate&, const Candidate&) = default;
};

// The highest release rolled back, and why: no release at or below it is
// staged again.
struct RolledBack {
  uint64_t release = 0;
  std::string reason;
  int64_t at_unix = 0;
  // The tracker acknowledged the report of it.
  bool reported = false;
  friend bool operator==(const RolledBack&, const RolledBack&) = default;
};

struct AgentSlots {
  uint64_t confirmed = 0;  // 0: none installed; the packaged agent runs
  uint64_t previous = 0;   // confirmed before `confirmed`, kept on disk
  uint64_t floor = 0;      // the agent app's floor as last verified (0: none)
  std::optional<Candidate> candidate;
  std::optional<RolledBack> rolled_back;
  friend bool operator==(const AgentSlots&, const AgentSlots&) = default;
};

// Parses the file's text; `where` names it in messages.
Result<AgentSlots> ParseAgentSlots(std::string_view text, std::string_view where);
std::string AgentSlotsToJson(const AgentSlots& slots);

// Reads `path`; an absent file is an empty AgentSlots (nothing installed).
Result<AgentSlots> LoadAgentSlots(const std::string& path);
// Replaces `path` atomically and durably (mode 0600).
Status SaveAgentSlots(const std::string& path, const AgentSlots& slots, Env& env = Env::Default());

// Held while a process reads, changes and saves agent.json (the launcher,
// the check, an install's staging): an flock on `lock_path` beside it,
// released on destruction or when the process dies. Each holder keeps it
// for one read-change-save, never across a copy or a wait.
class SlotsLock {
 public:
  static Result<SlotsLock> Acquire(const std::string& lock_path);
  SlotsLock(SlotsLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  SlotsLock& operator=(SlotsLock&&) = delete;
  SlotsLock(const SlotsLock&) = delete;
  ~SlotsLock();

 private:
  explicit SlotsLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace flotilla::node::agent
