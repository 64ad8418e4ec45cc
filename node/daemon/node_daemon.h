// flotilla-node's daemon: follows the signed releases of its apps and gets
// every layer they need into the layer store, verified (docs/node.md).
//
// Event loop: everything runs as tasks on one Executor (a ThreadExecutor in
// `run`, a ManualExecutor in tests), so no state here needs a lock:
//  - refresh (every refresh_interval_s +-10% jitter; after a failure an
//    exponential backoff from 5 s to max_backoff_s): enrol if not yet
//    enrolled, TUF refresh from the tracker, or from a LAN neighbour that
//    announces newer metadata when the tracker is unreachable; newer
//    releases of followed apps start a transfer;
//  - tick (1 s): polls the fetcher, rebuilds layers of finished releases,
//    notices stalls, persists state, sends due reports;
//  - lan (50 ms): runs the LAN exchange's sockets; beacon every interval;
//    serves the control API and metrics (polled, never blocking);
//  - supervise (as the runtime asks, at most 5 s): the runtime's
//    supervision pass (restarts by policy, health rechecks).
// A release whose layers are all verified is deployed through the runtime's
// health-gated switch (node_deploy.cpp); the previous one is kept until the
// next is healthy, older ones are collected.
// Blocking work (an HTTP range, a layer unpack) runs inside a task; the
// others wait for it. Documented as such: a Pi does one thing at a time.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "layerstore/layer_store.h"
#include "layerstore/update_planner.h"
#include "metadata/release.h"
#include "node/artifact_fetcher.h"
#include "node/control/node_control.h"
#include "node/daemon/enrolment.h"
#include "node/daemon/lan_exchange.h"
#include "node/daemon/node_config.h"
#include "node/daemon/node_state.h"
#include "runtime/runtime.h"

namespace flotilla::node {

class ControlServer;
class MetricsServer;

class NodeDaemon : public NodeControl {
 public:
  // Prepares the data directory (layout, lock, root of trust, store, fetcher,
  // LAN exchange). Fails with a message naming what is wrong.
  static Result<std::unique_ptr<NodeDaemon>> Create(const NodeConfig& config, const Clock& clock,
                                                    Executor& executor);
  ~NodeDaemon();

  // Schedules the first refresh, tick and LAN tasks.
  void Start();
  // Cancels every task this daemon scheduled; call on the executor's context.
  void Stop();

  // NodeControl (node_view.cpp): the control API and metrics.
  NodeView View() override;
  void UpdateNow() override;
  void Rollback(const std::string& app, ControlReply reply) override;
  void Logs(const std::string& app, size_t max_bytes, ControlReply reply) override;
  // The metrics endpoint's port (0: off).
  uint16_t metrics_port() const;

  // Called on the loop thread before a task that blocks the loop for up to
  // `expected` (a health-gated switch waits for the app's healthy deadline),
  // and with zero once it ended: `run` extends the systemd watchdog with it.
  void SetLongTaskHook(std::function<void(Duration expected)> hook) {
    long_task_hook_ = std::move(hook);
  }

 private:
  NodeDaemon(NodeConfig config, const Clock& clock, Executor& executor);
  Status Prepare();
  Status InstallRootOfTrust();
  Status OpenFetcher();
  Status OpenTorrentFetcher();
  // A new fetcher (after a late enrolment gave the announce URL), wanting
  // again what the old one fetched or seeded.
  Status ReopenFetcher();
  // The .torrent of `request`: from the tracker, else from a LAN neighbour.
  Result<std::string> FetchTorrent(const ArtifactRequest& request);

  enum TaskKind { kRefreshTask, kTickTask, kLanTask, kBeaconTask, kSuperviseTask, kTaskKinds };
  // Runs the task of `kind` after `delay`, replacing any pending one of that kind.
  void Schedule(TaskKind kind, Duration delay);
  void RefreshTask();
  void TickTask();
  void LanTask();
  void BeaconTask();
  void SuperviseTask();
  Result<std::string> RollbackNow(const std::string& app);
  // Updates the per-app transfer rates shown by View().
  void SampleRates();

  // Metadata (node_refresh.cpp).
  Status RefreshMetadata();
  Status RefreshFrom(const std::string& metadata_url);
  Duration NextRefreshDelay(bool succeeded);
  void OnReleases(const std::map<std::string, metadata::Release>& releases);
  void PublishServedVersions();

  // Releases (node_pipeline.cpp).
  void StartRelease(const std::string& app, const metadata::Release& release);
  Status CheckFreeSpace(const std::vector<metadata::Artifact>& artifacts,
                        const metadata::Release& release);
  Result<layerstore::UpdatePlan> PlanRelease(const metadata::Release& release);
  // The artifacts of each layer's current path (best, or fallback once switched).
  std::vector<metadata::Artifact> CurrentArtifacts(const std::string& app);
  Status WantCurrentArtifacts(const std::string& app);
  // Moves layer plan `index` to its fallback path; false if it has none left.
  bool SwitchToFallback(const std::string& app, size_t index, const std::string& why);
  void FinishRelease(const std::string& app);
  void DriveApp(const std::string& app);
  // Rebuilds every planned layer; on failure `failed_layer` is the plan's index.
  Status Rebuild(const std::string& app, size_t& failed_layer);
  Status RebuildStep(const layerstore::PlannerArtifact& step, const metadata::Release& release);
  void FailRelease(const std::string& app, const Status& why, bool permanent);
  // Backoff of a release that failed for a passing reason (retry_waits_).
  void DelayRetry(const std::string& app, uint64_t version);
  bool RetryDue(const std::string& app, uint64_t version) const;
  void CountBytes(const std::string& app, const Digest& artifact, const FetchProgress& p);

  // Reports (node_report.cpp).
  void AddError(const std::string& error);
  void SendReports();
  Status SendReport(const std::string& app);

  // Deployment (node_deploy.cpp).
  Status OpenRuntime();
  Status OpenControl();
  // Hands app's ready release to the runtime's health-gated switch.
  void DeployReady(const std::string& app);
  // At start: deploys what a crash left ready or half-deployed.
  void ResumeDeployments();
  // Copies the runtime's current/previous release into the app's state.
  void SyncRunning(const std::string& app);
  // Keeps keep_releases releases per app; drops other layers, artifacts and
  // runtime release directories.
  void CollectGarbage();
  // Bytes of layers in the store (for the disk budget and the view).
  uint64_t StoreBytes();
  // Frees what a failed transfer of `app` left on disk.
  void ReclaimTransfer(const std::string& app);

  void SaveState();

  NodeConfig config_;
  DataLayout layout_;
  const Clock& clock_;
  Executor& executor_;
  int lock_fd_ = -1;
  std::optional<DeviceCredentials> credentials_;
  std::unique_ptr<layerstore::LayerStore> store_;
  std::unique_ptr<ArtifactFetcher> fetcher_;
  std::unique_ptr<LanExchange> lan_;
  std::unique_ptr<runtime::Runtime> runtime_;  // null when deploy is off
  std::unique_ptr<ControlServer> control_;
  std::function<void(Duration)> long_task_hook_;
  std::unique_ptr<MetricsServer> metrics_;
  NodeState state_;
  std::map<std::string, metadata::Release> releases_;  // newest verified, per followed app
  struct Transfer {
    std::vector<layerstore::LayerPlan> plans;   // one per layer the store lacks
    std::vector<bool> on_fallback;              // per plan
    std::vector<metadata::Artifact> artifacts;  // current paths' artifacts
    uint64_t done = 0, total = 0;
    MonoTime last_progress{};
    bool stall_reported = false;
    std::string last_fetch_error;  // logged once per distinct message
  };
  std::map<std::string, Transfer> transfers_;
  // A release that failed for a reason that may pass (a full disk, a fetch
  // error) is retried no sooner than `not_before`: the wait starts at the
  // refresh interval and doubles with each failure of the same release, up
  // to max_backoff_s, so a full SD card is not rewritten (state, logs) every
  // refresh. `update --now` retries at once.
  struct RetryWait {
    uint64_t version = 0;
    uint32_t failures = 0;
    MonoTime not_before{};
  };
  std::map<std::string, RetryWait> retry_waits_;
  std::map<Digest, std::pair<uint64_t, uint64_t>> counted_;  // peers, origin seen per artifact
  std::deque<std::string> pending_errors_;  // sent with the next report, at most 16
  std::string last_refresh_error_;
  uint32_t refresh_failures_ = 0;
  bool report_due_ = true;
  MonoTime next_report_{};
  std::optional<TimerId> timers_[kTaskKinds];
  bool stopped_ = false;
  struct Counters {
    uint64_t refreshes_ok = 0, refreshes_failed = 0, deploys_ok = 0, deploys_failed = 0;
    int64_t last_refresh_unix = 0;
  } counters_;
  struct RateSample {
    MonoTime at{};
    uint64_t done = 0;
    double rate = 0;  // bytes/s, smoothed
  };
  std::map<std::string, RateSample> rates_;         // per app, for the view
  std::mt19937_64 random_{std::random_device{}()};  // refresh jitter
};

}  // namespace flotilla::node
