// The agent update's state machine (docs/agent-update.md): staging a new
// release, the launcher's choice at each start of the unit, and the
// probation check the timer runs. Each step is a pure function of the slot
// file, the moment and what the caller observed; the caller saves the slots
// (durably) before it acts on the result, so a kill at any point leaves
// exactly one agent that the next start chooses.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "node/agent/agent_slots.h"

namespace flotilla::node::agent {

inline constexpr std::chrono::seconds kProbation{120};

// The moment as the launcher and the check see it: the boot, the kernel's
// monotonic clock in that boot (comparable between processes, does not
// jump), and the wall clock (only to stamp a rollback).
struct Moment {
  std::string boot_id;
  int64_t mono_s = 0;
  int64_t unix_s = 0;
};
Moment MomentOf(const Clock& clock, std::string boot_id);

// Makes `release` the candidate, to be tried at the next start. Refused
// (FailedPrecondition, saying why) when it is not newer than what runs
// (the confirmed and the packaged release), when it is at or below the
// release rolled back, below the floor, or while a candidate is on
// probation. A staged candidate not yet launched is replaced by a newer one.
Status Stage(AgentSlots& slots, uint64_t release, uint64_t packaged_release);

// What the launcher runs.
struct LaunchChoice {
  bool packaged = true;  // the .deb's agent in /usr/bin
  uint64_t release = 0;  // the release it runs (the packaged one's when packaged)
  bool on_probation = false;
  // What the launcher logs: "trying release 6 (probation 120 s)",
  // "rolled back release 6: did not prove itself before it stopped; running
  // release 5".
  std::string why;
};

// The launcher's choice at a start of the unit, as process `pid` (the one it
// then execs into). A candidate at or below the packaged release (a newer
// .deb installed by hand since it was staged) is dropped. `installed(N)` says whether releases/N
// holds an executable agent. Changes `slots`: the candidate's try is taken, or the candidate is
// rolled back.
LaunchChoice ChooseLaunch(AgentSlots& slots, uint64_t packaged_release, int64_t pid,
                          const Moment& now, const std::function<bool(uint64_t)>& installed);

// What the check observed of the candidate's process.
struct Proof {
  bool alive = false;              // `pid` runs, and it is the candidate's binary
  bool ready = false;              // it sent READY=1 (its status says so)
  bool control_api = false;        // its control API answered `status`
  bool metadata_verified = false;  // it verified its trusted metadata in this process
  uint64_t release = 0;            // the agent release its status names
};

enum class CheckAction {
  kNothing,         // no candidate on probation, or still within it
  kConfirmed,       // the candidate is now the confirmed release
  kRolledBack,      // rolled back; its process is gone (nothing to kill)
  kRolledBackKill,  // rolled back; the caller kills the candidate's pid
};

struct CheckResult {
  CheckAction action = CheckAction::kNothing;
  std::string why;
};

// One probation check. Confirms a candidate that proved itself (alive,
// READY, its control API answers with its own release, metadata verified);
// rolls back one that did not within `probation` or whose boot is over.
CheckResult CheckProbation(AgentSlots& slots, const Proof& proof, const Moment& now,
                           std::chrono::seconds probation = kProbation);

}  // namespace flotilla::node::agent
