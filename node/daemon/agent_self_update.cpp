// The daemon updating its own agent (docs/agent-update.md, "The update,
// step by step"): with "agent_update" on, the release of
// flotilla-agent-<arch> newer than the running agent is fetched by the
// release pipeline like any app's (verified layers in the store), installed
// from its layer's tree by the same code as `flotilla-node agent install` on
// the "agent" lane, staged, and the daemon asks to be restarted (exit 3): the
// launcher then starts it on probation. The agent's release is never given
// to the deployer: it is not a container.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/version.h"
#include "node/agent/agent_install.h"
#include "node/agent/agent_layout.h"
#include "node/agent/agent_slots.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {

std::string AgentAppFor(const layerstore::Platform& platform) {
  if (platform.architecture == "arm") return "flotilla-agent-armhf";
  return "flotilla-agent-" + platform.architecture;
}

bool IsAgentApp(const std::string& app) { return app.rfind("flotilla-agent-", 0) == 0; }

uint64_t NodeDaemon::RunningAgentRelease() const {
  const agent::AgentLayout layout(layout_.root);
  auto installed = agent::InstalledReleaseOf(layout, agent::ExecutableOf(0));
  return installed ? *installed : kAgentRelease;
}

// Whether `release` of the agent app should be installed: newer than what
// runs, and one agent::Stage would take (not rolled back, not below the
// floor, no candidate on probation).
bool NodeDaemon::WantsAgentRelease(const metadata::Release& release) const {
  if (!config_.agent_update || release.app != agent_app_) return false;
  if (release.version <= RunningAgentRelease() || agent_refused_.count(release.version) != 0) {
    return false;
  }
  if (agent_installing_ != 0) return false;
  const agent::AgentLayout layout(layout_.root);
  return agent::StageRelease(layout, release.version, kAgentRelease, /*dry_run=*/true).ok();
}

Worker& NodeDaemon::AgentWorker() {
  if (!agent_worker_) agent_worker_ = std::make_unique<Worker>(Lane("agent"), loop_);
  return *agent_worker_;
}

void NodeDaemon::OfferAgent(const metadata::Release& release, bool chosen) {
  if (!config_.agent_update || release.app != agent_app_) return;
  // The floor the agent's signers set, as verified here: the launcher never
  // runs a release below it (docs/agent-update.md, "agent.json").
  AgentWorker().Run(
      [this] {
        auto floor = source_->TrustedFloorOnDisk(agent_app_);
        if (!floor.ok()) return floor.status();
        auto recorded = agent::RecordFloor(agent::AgentLayout(layout_.root), *floor);
        if (recorded.ok() && *recorded) spdlog::info("agent floor: release {}", *floor);
        return recorded.status();
      },
      [](Status recorded) {
        if (!recorded.ok()) spdlog::warn("agent floor not recorded: {}", recorded.ToString());
      });
  if (!WantsAgentRelease(release)) return;
  const AppState& a = state_->app(agent_app_);
  if (a.ready_release == release.version && !pipeline_->Fetching(agent_app_)) {
    // Fetched before a restart that came before its install.
    InstallAgent(release);
  } else if (chosen) {
    pipeline_->OfferChosen(agent_app_, release);
  } else {
    pipeline_->Offer(agent_app_, release);
  }
}

// The release's one layer (its three binaries) from the store's unpacked
// tree into agent/releases/<N>, self-checked and staged, on the "agent"
// lane; then the restart.
void NodeDaemon::InstallAgent(const metadata::Release& release) {
  if (!WantsAgentRelease(release)) return;
  const uint64_t version = release.version;
  if (release.image.layers.size() != 1) {
    RefuseAgent(version, "its image has " + std::to_string(release.image.layers.size()) +
                             " layers; an agent release has one (docs/agent-update.md)");
    return;
  }
  agent_installing_ = version;
  spdlog::info("agent release {}: ready, installing it beside the running agent (release {})",
               version, RunningAgentRelease());
  store_->ResolveTrees(
      {release.image.layers.front().diff_id},
      [this, version](Result<std::vector<std::string>> trees) {
        if (!trees.ok()) {
          agent_installing_ = 0;
          RefuseAgent(version, trees.status().ToString());
          return;
        }
        AgentWorker().Run(
            [this, version, tree = trees->front()] {
              return agent::InstallAndStage(agent::AgentLayout(layout_.root), version, tree,
                                            kAgentRelease, clock_);
            },
            [this, version](Status installed) { AgentInstalled(version, installed); });
      });
}

void NodeDaemon::AgentInstalled(uint64_t version, const Status& installed) {
  agent_installing_ = 0;
  if (!installed.ok()) {
    RefuseAgent(version, installed.ToString());
    return;
  }
  spdlog::info("agent release {}: installed and staged; restarting into it (exit {})", version,
               kAgentRestartExitCode);
  if (restart_) restart_();
}

void NodeDaemon::RefuseAgent(uint64_t version, const std::string& why) {
  agent_refused_.insert(version);
  const std::string error = "agent release " + std::to_string(version) + ": " + why;
  spdlog::warn("{}", error);
  reporter_->AddError(error);
}

std::optional<AppReport> NodeDaemon::AgentReport() const {
  auto slots = agent::LoadAgentSlots(agent::AgentLayout(layout_.root).slots());
  const uint64_t running = RunningAgentRelease();
  AppReport r;
  r.app = agent_app_;
  r.release = running;
  r.health = "unknown";
  if (slots.ok() && slots->rolled_back && slots->rolled_back->release > running) {
    r.state = "rolled_back";
    r.failure = "agent-probation";
    return r;
  }
  // A node that does not follow its agent app says nothing of it.
  if (!config_.agent_update) return std::nullopt;
  if (pipeline_->Fetching(agent_app_)) {
    auto transfer = pipeline_->Transfer(agent_app_);
    return ReportOf(agent_app_, state_->app(agent_app_), transfer ? transfer->done : 0,
                    transfer ? transfer->total : 0);
  }
  if (!slots.ok()) return std::nullopt;  // said in the log by the launcher and the check
  // On probation (the candidate is this process): no verdict until the
  // check confirms it; then healthy, as the agent that runs.
  const bool on_probation = slots->candidate && slots->candidate->release == running &&
                            slots->candidate->pid == static_cast<int64_t>(::getpid());
  r.state = on_probation ? "deploying" : "running";
  r.health = on_probation ? "unknown" : "healthy";
  return r;
}

void NodeDaemon::ReportAgentRollback() {
  const agent::AgentLayout layout(layout_.root);
  auto slots = agent::LoadAgentSlots(layout.slots());
  if (!slots.ok() || !slots->rolled_back || slots->rolled_back->reported) return;
  const auto& back = *slots->rolled_back;
  // Marked said once the tracker took it: a restart before then says it
  // again; after, the next start does not (the agent app's report keeps
  // saying rolled_back while no newer agent runs).
  reporter_->AddError("agent release " + std::to_string(back.release) +
                          " rolled back (agent-probation): " + back.reason + "; runs release " +
                          std::to_string(RunningAgentRelease()),
                      [root = layout_.root, release = back.release] {
                        auto marked =
                            agent::MarkRollbackReported(agent::AgentLayout(root), release);
                        if (!marked.ok()) spdlog::warn("agent.json: {}", marked.ToString());
                      });
}

}  // namespace flotilla::node
