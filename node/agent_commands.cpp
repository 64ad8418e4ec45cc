// `flotilla-node agent launch|check|install|status`: the agent updating
// itself (docs/agent-update.md). `launch` is the unit's ExecStart= and
// `check` the probation timer's: both are the packaged binary, so they work
// whatever an installed agent does.
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "core/version.h"
#include "node/agent/agent_install.h"
#include "node/agent/agent_layout.h"
#include "node/agent/agent_slots.h"
#include "node/agent/agent_update.h"
#include "node/commands.h"
#include "node/control/control_protocol.h"
#include "node/control/control_server.h"

namespace flotilla::node {
namespace {

using agent::AgentLayout;
using agent::AgentSlots;

constexpr auto kStatusTimeout = std::chrono::seconds(3);

// Runs `binary` with `args` in this process; returns only when it cannot.
void Exec(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(binary.c_str(), argv.data());
  fmt::print(stderr, "agent launch: cannot run {}: {}\n", binary, std::strerror(errno));
}

[[noreturn]] void ExecOrDie(const std::string& binary, const std::vector<std::string>& args) {
  Exec(binary, args);
  std::_Exit(127);
}

// Whether an agent release was ever installed (agent/ exists).
bool AnyAgentInstalled(const AgentLayout& layout) {
  std::error_code ec;
  return std::filesystem::exists(layout.root, ec) || ec;  // unreadable: look inside, say why
}

// The marker that lets the probation timer's unit run: created before a
// probation is recorded, removed after its end is (so it is there whenever
// one may be under way; after a power cut the launcher ends it anyway).
void MarkProbation(const AgentLayout& layout, bool on) {
  const std::string marker = layout.probation_marker();
  if (on) {
    UniqueFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid())
      fmt::print(stderr, "agent: cannot create {}: {}\n", marker, std::strerror(errno));
  } else if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
    fmt::print(stderr, "agent: cannot remove {}: {}\n", marker, std::strerror(errno));
  }
}

Status SaveSlots(const AgentLayout& layout, const AgentSlots& slots) {
  RETURN_IF_ERROR(CreateDurableDirectories(Env::Default(), layout.root, 0700));
  return agent::SaveAgentSlots(layout.slots(), slots);
}

int Launch(const std::string& data_dir, const std::vector<std::string>& args) {
  const AgentLayout layout(data_dir);
  const std::string packaged = agent::ExecutableOf(0);
  // Nothing was ever installed: run the packaged agent, write nothing.
  if (!AnyAgentInstalled(layout)) ExecOrDie(packaged, args);
  auto lock = agent::SlotsLock::Acquire(layout.lock());
  auto slots =
      lock.ok() ? agent::LoadAgentSlots(layout.slots()) : Result<AgentSlots>(lock.status());
  auto boot = agent::BootId();
  if (!slots.ok() || !boot.ok()) {
    fmt::print(stderr, "agent launch: running the packaged agent: {}\n",
               (!slots.ok() ? slots.status() : boot.status()).ToString());
    ExecOrDie(packaged, args);
  }
  const AgentSlots before = *slots;
  agent::LaunchChoice choice = agent::ChooseLaunch(
      *slots, kAgentRelease, ::getpid(), agent::MomentOf(SystemClock::Instance(), *boot),
      [&](uint64_t release) { return agent::IsInstalled(layout, release); });
  if (choice.on_probation) MarkProbation(layout, true);
  if (!(*slots == before)) {
    if (Status saved = SaveSlots(layout, *slots); !saved.ok()) {
      // A try that is not recorded could be retried forever: run what is safe.
      fmt::print(stderr, "agent launch: running the packaged agent: {}\n", saved.ToString());
      ExecOrDie(packaged, args);
    }
  }
  if (!choice.on_probation) MarkProbation(layout, false);
  fmt::print(stderr, "agent launch: {}\n", choice.why);
  // The lock's descriptor is close-on-exec: the exec releases it.
  if (!choice.packaged) {
    // One that cannot even be executed is rolled back at the next start
    // when it was on probation; a confirmed one gives way to the packaged.
    Exec(layout.full_binary(choice.release), args);
    if (choice.on_probation) std::_Exit(127);
  }
  ExecOrDie(packaged, args);
}

agent::Proof ProbeCandidate(const AgentLayout& layout, const agent::Candidate& candidate,
                            const std::string& socket) {
  agent::Proof proof;
  proof.alive = agent::ProcessRuns(candidate.pid, layout.full_binary(candidate.release));
  if (!proof.alive) return proof;
  auto answer = ControlRequest(socket, Json{{"op", "status"}}, kStatusTimeout);
  if (!answer.ok()) return proof;
  auto view = ViewFromJson(*answer);
  if (!view.ok()) return proof;
  proof.control_api = true;
  proof.ready = view->agent.ready;
  proof.metadata_verified = view->agent.metadata_verified;
  proof.release = view->agent.release;
  return proof;
}

int Check(const std::string& data_dir, std::string socket, int probation_s) {
  const AgentLayout layout(data_dir);
  if (socket.empty()) socket = data_dir + "/control.sock";
  if (!AnyAgentInstalled(layout)) {
    fmt::print("agent check: no agent on probation\n");
    return 0;
  }
  // Held for one check (the status request is bounded: 3 s).
  auto lock = agent::SlotsLock::Acquire(layout.lock());
  if (!lock.ok()) {
    fmt::print(stderr, "agent check: {}\n", lock.status().ToString());
    return 1;
  }
  auto slots = agent::LoadAgentSlots(layout.slots());
  auto boot = agent::BootId();
  if (!slots.ok() || !boot.ok()) {
    fmt::print(stderr, "agent check: {}\n",
               (!slots.ok() ? slots.status() : boot.status()).ToString());
    return 1;
  }
  if (!slots->candidate || !slots->candidate->launched()) {
    MarkProbation(layout, false);
    fmt::print("agent check: no agent on probation\n");
    return 0;
  }
  const agent::Candidate candidate = *slots->candidate;
  const agent::Proof proof = ProbeCandidate(layout, candidate, socket);
  agent::CheckResult result =
      agent::CheckProbation(*slots, proof, agent::MomentOf(SystemClock::Instance(), *boot),
                            std::chrono::seconds(probation_s));
  if (result.action == agent::CheckAction::kNothing) {
    fmt::print("agent check: release {} on probation\n", candidate.release);
    return 0;
  }
  Status saved = SaveSlots(layout, *slots);
  if (result.action == agent::CheckAction::kRolledBackKill &&
      agent::ProcessRuns(candidate.pid, layout.full_binary(candidate.release))) {
    // systemd restarts the unit; the launcher runs the confirmed agent (and
    // would roll the candidate back even if the save above failed).
    ::kill(static_cast<pid_t>(candidate.pid), SIGKILL);
  }
  if (!saved.ok()) {
    fmt::print(stderr, "agent check: {}: {}\n", result.why, saved.ToString());
    return 1;
  }
  MarkProbation(layout, false);
  if (result.action == agent::CheckAction::kConfirmed) {
    if (Status pruned = agent::PruneReleases(layout, {slots->confirmed, slots->previous});
        !pruned.ok()) {
      fmt::print(stderr, "agent check: {}\n", pruned.ToString());
    }
  }
  fmt::print("agent check: {}\n", result.why);
  return 0;
}

int Install(const std::string& data_dir, uint64_t release, const std::string& source_dir) {
  const AgentLayout layout(data_dir);
  Status installed =
      agent::InstallAndStage(layout, release, source_dir, kAgentRelease, SystemClock::Instance());
  if (!installed.ok()) {
    fmt::print(stderr, "agent install: {}\n", installed.ToString());
    return 1;
  }
  fmt::print(
      "agent install: release {} staged; the next start of the unit runs it on probation "
      "(systemctl restart flotilla-node)\n",
      release);
  return 0;
}

int PrintStatus(const std::string& data_dir, bool json) {
  const AgentLayout layout(data_dir);
  auto slots = agent::LoadAgentSlots(layout.slots());
  if (!slots.ok()) {
    fmt::print(stderr, "agent status: {}\n", slots.status().ToString());
    return 1;
  }
  if (json) {
    fmt::print("{}", agent::AgentSlotsToJson(*slots));
    return 0;
  }
  fmt::print("packaged agent: release {} ({})\n", kAgentRelease, agent::ExecutableOf(0));
  fmt::print("confirmed: {}\n", slots->confirmed == 0
                                    ? std::string("none (the packaged agent runs)")
                                    : "release " + std::to_string(slots->confirmed));
  if (slots->previous != 0) fmt::print("previous: release {}\n", slots->previous);
  if (slots->floor != 0) fmt::print("floor: release {}\n", slots->floor);
  if (const auto& c = slots->candidate) {
    fmt::print("candidate: release {} ({})\n", c->release,
               c->launched() ? "on probation, pid " + std::to_string(c->pid) : "staged");
  }
  if (const auto& b = slots->rolled_back) {
    fmt::print("rolled back: release {} at {}: {}\n", b->release, UtcText(b->at_unix), b->reason);
  }
  return 0;
}

}  // namespace

CommandAction RegisterAgentCommands(CLI::App& app) {
  auto* group = app.add_subcommand(
      "agent",
      "The agent updating itself (docs/agent-update.md): installed agent releases live in "
      "DATA_DIR/agent/releases/N; `launch` (the unit's ExecStart=) chooses which one runs, "
      "`check` (the probation timer's) confirms a new one or rolls it back.");
  group->require_subcommand(1);
  auto data_dir = std::make_shared<std::string>("/var/lib/flotilla");
  auto args = std::make_shared<std::vector<std::string>>();
  auto socket = std::make_shared<std::string>();
  auto probation_s = std::make_shared<int>(static_cast<int>(agent::kProbation.count()));
  auto release = std::make_shared<uint64_t>(0);
  auto source = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);

  auto* launch = group->add_subcommand(
      "launch",
      "Run the agent this device should run, in this process: a staged release once, on "
      "probation; after that try, the confirmed one (the staged one is rolled back unless "
      "`check` confirmed it); never an installed release at or below the packaged one's "
      "(a newer .deb wins, an older one does not downgrade). Example (the unit's "
      "ExecStart=): flotilla-node agent launch --data-dir /var/lib/flotilla -- run --config "
      "/etc/flotilla/node.json");
  launch->add_option("--data-dir", *data_dir, "the node's data_dir")->capture_default_str();
  launch->add_option("args", *args, "the agent's arguments, after --")->required();

  auto* check = group->add_subcommand(
      "check",
      "One probation check (run every 10 s by flotilla-node-agent-check.timer): confirms the "
      "agent on probation once it is READY, its control API answers and it verified its "
      "trusted metadata; past the probation, rolls it back and kills it (systemd restarts the "
      "unit into the previous agent).");
  check->add_option("--data-dir", *data_dir, "the node's data_dir")->capture_default_str();
  check->add_option("--socket", *socket, "the control socket (default DATA_DIR/control.sock)");
  check->add_option("--probation-s", *probation_s, "how long a new agent has to prove itself")
      ->check(CLI::Range(1, 120))
      ->capture_default_str();

  auto* install = group->add_subcommand(
      "install",
      "Install the agent binaries of DIR (flotilla-node, flotilla-node-full, "
      "flotilla-monitor) as release N and stage it: each binary must run `--version` here. "
      "The next start of the unit tries it on probation (systemctl restart flotilla-node). "
      "Example: flotilla-node agent install --release 6 /tmp/agent-6/");
  install->add_option("--data-dir", *data_dir, "the node's data_dir")->capture_default_str();
  install->add_option("--release", *release, "its agent release number")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 53));
  install->add_option("DIR", *source, "directory holding the three binaries")
      ->required()
      ->check(CLI::ExistingDirectory);

  auto* status = group->add_subcommand(
      "status", "What agent.json says: the confirmed, previous, staged and rolled back releases.");
  status->add_option("--data-dir", *data_dir, "the node's data_dir")->capture_default_str();
  status->add_flag("--json", *json, "print agent.json (docs/agent-update.md)");

  return [=]() -> int {
    if (!*group) return -1;
    if (*launch) return Launch(*data_dir, *args);
    if (*check) return Check(*data_dir, *socket, *probation_s);
    if (*install) return Install(*data_dir, *release, *source);
    return PrintStatus(*data_dir, *json);
  };
}

}  // namespace flotilla::node
