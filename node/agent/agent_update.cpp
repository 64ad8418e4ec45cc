#include "node/agent/agent_update.h"

#include <algorithm>
#include <utility>

namespace flotilla::node::agent {
namespace {

std::string ReleaseText(uint64_t release) { return "release " + std::to_string(release); }

void RollBack(AgentSlots& slots, std::string reason, const Moment& now) {
  slots.rolled_back = RolledBack{slots.candidate->release, std::move(reason), now.unix_s, false};
  slots.candidate.reset();
}

// The agent that runs when no candidate is tried: the confirmed release
// when it is newer than the packaged agent, installed, and not below the
// floor (unless the packaged one is below it too); else the packaged one.
LaunchChoice SteadyChoice(const AgentSlots& slots, uint64_t packaged_release,
                          const std::function<bool(uint64_t)>& installed) {
  LaunchChoice packaged{true, packaged_release, false,
                        "running the packaged agent (" + ReleaseText(packaged_release) + ")"};
  if (slots.confirmed == 0) return packaged;
  if (slots.confirmed <= packaged_release) {
    packaged.why += "; installed " + ReleaseText(slots.confirmed) + " is not newer";
    return packaged;
  }
  if (!installed(slots.confirmed)) {
    packaged.why += "; installed " + ReleaseText(slots.confirmed) + " is missing";
    return packaged;
  }
  if (slots.confirmed < slots.floor && packaged_release >= slots.floor) {
    packaged.why += "; installed " + ReleaseText(slots.confirmed) + " is below the floor " +
                    std::to_string(slots.floor);
    return packaged;
  }
  std::string why = "running installed " + ReleaseText(slots.confirmed);
  if (packaged_release != 0) {
    why += "; the packaged agent (" + ReleaseText(packaged_release) + ") is older";
  }
  return LaunchChoice{false, slots.confirmed, false, std::move(why)};
}

}  // namespace

Moment MomentOf(const Clock& clock, std::string boot_id) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  return Moment{std::move(boot_id),
                duration_cast<seconds>(clock.MonotonicNow().time_since_epoch()).count(),
                duration_cast<seconds>(clock.Now().time_since_epoch()).count()};
}

Status Stage(AgentSlots& slots, uint64_t release, uint64_t packaged_release) {
  const std::string what = "agent " + ReleaseText(release);
  if (slots.candidate && slots.candidate->launched()) {
    return FailedPrecondition(what + ": " + ReleaseText(slots.candidate->release) +
                              " is on probation");
  }
  const uint64_t running = std::max(slots.confirmed, packaged_release);
  if (release <= running) {
    return FailedPrecondition(what + ": not newer than " + ReleaseText(running));
  }
  if (slots.rolled_back && release <= slots.rolled_back->release) {
    return FailedPrecondition(what + ": " + ReleaseText(slots.rolled_back->release) +
                              " was rolled back (" + slots.rolled_back->reason +
                              "); waiting for a newer one");
  }
  if (release < slots.floor) {
    return FailedPrecondition(what + ": below the floor " + std::to_string(slots.floor));
  }
  if (slots.candidate && slots.candidate->release >= release) {
    return FailedPrecondition(what + ": " + ReleaseText(slots.candidate->release) +
                              " is staged already");
  }
  slots.candidate = Candidate{release, 1, 0, "", 0};
  return Status::Ok();
}

LaunchChoice ChooseLaunch(AgentSlots& slots, uint64_t packaged_release, int64_t pid,
                          const Moment& now, const std::function<bool(uint64_t)>& installed) {
  std::string before;
  if (slots.candidate && slots.candidate->release <= packaged_release) {
    // A newer .deb was installed by hand since: it supersedes the candidate
    // (not a failure of the candidate, so not recorded as a rollback).
    before = "dropped " + ReleaseText(slots.candidate->release) + ": the packaged agent (" +
             ReleaseText(packaged_release) + ") is not older; ";
    slots.candidate.reset();
  } else if (slots.candidate && !slots.candidate->launched()) {
    Candidate& c = *slots.candidate;
    if (installed(c.release)) {
      c.tries_left = 0;
      c.pid = pid;
      c.boot_id = now.boot_id;
      c.started_mono_s = now.mono_s;
      return LaunchChoice{false, c.release, true,
                          "trying " + ReleaseText(c.release) + " (probation " +
                              std::to_string(kProbation.count()) + " s)"};
    }
    before = "dropped staged " + ReleaseText(c.release) + ": not installed; ";
    slots.candidate.reset();
  } else if (slots.candidate) {
    const uint64_t release = slots.candidate->release;
    RollBack(slots, "did not prove itself before it stopped", now);
    before = "rolled back " + ReleaseText(release) + ": " + slots.rolled_back->reason + "; ";
  }
  LaunchChoice choice = SteadyChoice(slots, packaged_release, installed);
  choice.why = before + choice.why;
  return choice;
}

CheckResult CheckProbation(AgentSlots& slots, const Proof& proof, const Moment& now,
                           std::chrono::seconds probation) {
  if (!slots.candidate || !slots.candidate->launched()) return {};
  const Candidate c = *slots.candidate;
  if (c.boot_id != now.boot_id) {
    RollBack(slots, "the device restarted during its probation", now);
    return {CheckAction::kRolledBack,
            "rolled back " + ReleaseText(c.release) + ": " + slots.rolled_back->reason};
  }
  if (proof.alive && proof.ready && proof.control_api && proof.metadata_verified &&
      proof.release == c.release) {
    if (slots.confirmed != c.release) slots.previous = slots.confirmed;
    slots.confirmed = c.release;
    slots.candidate.reset();
    return {CheckAction::kConfirmed, "confirmed " + ReleaseText(c.release)};
  }
  if (now.mono_s - c.started_mono_s < probation.count()) return {};
  std::string missing = !proof.alive                 ? "not running"
                        : !proof.control_api         ? "control API did not answer"
                        : !proof.ready               ? "not READY"
                        : proof.release != c.release ? "its status names another release"
                                                     : "metadata not verified";
  RollBack(slots, "not proven within " + std::to_string(probation.count()) + " s (" + missing + ")",
           now);
  return {proof.alive ? CheckAction::kRolledBackKill : CheckAction::kRolledBack,
          "rolled back " + ReleaseText(c.release) + ": " + slots.rolled_back->reason};
}

}  // namespace flotilla::node::agent
