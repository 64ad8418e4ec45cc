// flotilla-node's daemon: follows the signed releases of its apps, gets
// every layer they need into the layer store, verified, and runs them in the
// built-in runtime (docs/node.md).
//
// The daemon is wiring: small parts on one event loop (the Executor given to
// Create, a ThreadExecutor in `run`), each owning its state and talking to
// the others through the events this class connects:
//  - MetadataFollower: refresh schedule, enrolment, LAN fallback; emits the
//    verified releases;
//  - ReleasePipeline: plan, fetch (ArtifactFetcher), stalls and fallback
//    paths, retries, rebuild; emits ready releases;
//  - Deployer (with the GarbageCollector): health-gated switch, rollback,
//    supervision, collection;
//  - FleetFollower: the device's signed fleet document; once one is
//    accepted, it (not the local apps list) says which apps run and which
//    release of each;
//  - Reporter: reports to the tracker, pending errors;
//  - NoticeWatcher: one held request at the tracker (a thread of its own);
//    a published change refreshes the follower and the fleet follower now;
//  - BundleImporter: offline bundles asked for through the control API or
//    found in the import directory, imported on the store's lane;
//  - LanExchange, the control API and /metrics, pumped every 50 ms.
// Blocking work runs on worker lanes (ThreadExecutors made here): the layer
// store's on "store", each app's switch on "app/<name>", the supervision
// pass on "supervise", logs on "logs"; results come back to the loop, so the
// control API, /metrics and the watchdog's ping keep answering meanwhile.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "node/control/node_control.h"
#include "node/daemon/bundle_importer.h"
#include "node/daemon/deployer.h"
#include "node/daemon/enrolment.h"
#include "node/daemon/fleet_follower.h"
#include "node/daemon/garbage_collector.h"
#include "node/daemon/lan_exchange.h"
#include "node/daemon/log_uploader.h"
#include "node/daemon/metadata_follower.h"
#include "node/daemon/node_config.h"
#include "node/daemon/notice_watcher.h"
#include "node/daemon/origin_relay.h"
#include "node/daemon/release_pipeline.h"
#include "node/daemon/reporter.h"
#include "node/daemon/switch_window.h"
#include "node/daemon/torrent_source.h"
#include "node/daemon/tuf_metadata_source.h"

namespace flotilla::node {

class ControlServer;
class MetricsServer;

class NodeDaemon : public NodeControl {
 public:
  // Prepares the data directory (layout, lock, root of trust, store, state,
  // runtime, control API, fetcher, LAN exchange). Fails with a message
  // naming what is wrong. Runs on `loop`'s context (before Start).
  static Result<std::unique_ptr<NodeDaemon>> Create(const NodeConfig& config, const Clock& clock,
                                                    Executor& loop);
  // Stops every part, waits for the job each lane runs, closes everything.
  ~NodeDaemon() override;

  void Start();
  // Cancels every task this daemon scheduled; call on the loop.
  void Stop();

  // NodeControl (node_view.cpp): the control API and metrics.
  NodeView View() override;
  void UpdateNow() override;
  void Rollback(const std::string& app, ControlReply reply) override;
  void Logs(const std::string& app, size_t max_bytes, ControlReply reply) override;
  // The app's log (its lines since `since_unix_s` when > 0), the newest
  // `max_bytes` of it.
  void AppLog(const std::string& app, size_t max_bytes, int64_t since_unix_s, ControlReply reply);
  void Lock(const std::string& app, int64_t seconds, const std::string& reason,
            ControlReply reply) override;
  void Unlock(const std::string& app, ControlReply reply) override;
  // Imports an offline bundle on the store's lane (bundle_importer.h).
  void Import(const std::string& path, ControlReply reply) override;
  // The fleet files an imported bundle carried for this device, to the follower.
  // Hands the artifacts an import into the stopped node left (imported_seeds.h)
  // to the pipeline, as a running daemon's import does, and forgets the record.
  void SeedImportedWhileStopped();
  void AcceptBundleFleet(const CarriedFleetFiles& carried,
                         const metadata::Release* offline_release);
  // The metrics endpoint's port (0: off).
  uint16_t metrics_port() const;
  // Called on the loop once a newer agent release is installed and staged:
  // the process should stop and exit with kAgentRestartExitCode, so that
  // the unit starts again through the launcher (docs/agent-update.md).
  void SetRestart(std::function<void()> restart) { restart_ = std::move(restart); }

 private:
  NodeDaemon(NodeConfig config, const Clock& clock, Executor& loop);
  Status Prepare();
  Status OpenDeployment();
  Status OpenServers();
  Status OpenTransfers();
  Status OpenFollower();
  Status OpenFleet();
  void OpenNotice();
  // The notice watcher's news: refresh what moved (image and/or fleet).
  void Noticed(bool image, bool fleet);
  Result<std::unique_ptr<ArtifactFetcher>> OpenFetcher();
  void Enrolled(const DeviceCredentials& credentials);
  void ReleasesVerified(const std::map<std::string, metadata::Release>& releases);
  // At start, before the tracker answers: the releases of the trusted
  // metadata on disk, while it has not expired (an imported bundle's, or one
  // whose fetch a restart interrupted).
  void OfferTrustedReleases();
  // The releases of an accepted fleet document: each app is followed and
  // its chosen release installed (fetched, then switched to).
  void FleetChose(const std::map<std::string, metadata::Release>& releases);
  // Follows `app` from now on (an app the fleet assigns).
  void Follow(const std::string& app);
  // Switches `app` to its ready `release` now, or, outside the fleet
  // document's maintenance windows, holds it until one opens (switch_window.h).
  void SwitchOrWait(const std::string& app, const metadata::Release& release);
  // Switches the held releases whose window has opened; drops those the
  // fleet no longer chooses. Runs every 15 s while any is held.
  void CheckWaitingSwitches();
  bool RunningHealthy(const std::string& app) const;
  // The app's update lock, if one was taken (it may have ended).
  std::optional<UpdateLock> LockOf(const std::string& app) const;
  // <data_dir>/locks.json: the locks that have not ended, read at start and
  // written whole (atomically, durably) at each change.
  Status LoadLocks();
  Status SaveLocks();
  const std::vector<tracker::MaintenanceWindow>& FleetWindows() const;
  // The release the accepted fleet document names for `app` (0: none).
  uint64_t FleetRelease(const std::string& app) const;
  // The accepted fleet document's configuration of `app` (none when not managed).
  appspec::ConfigValues FleetConfig(const std::string& app) const;
  // The sealed boxes of the app's secrets in the accepted fleet document.
  SecretBoxes FleetSecrets(const std::string& app) const;
  std::vector<AppReport> Reports() const;
  AppView ViewOf(const std::string& app) const;
  // Runs the LAN exchange's sockets and serves the control API and metrics.
  void Pump();
  void Beacon();
  Executor& Lane(const std::string& name);
  // The agent updating itself (agent_self_update.cpp).
  uint64_t RunningAgentRelease() const;
  bool WantsAgentRelease(const metadata::Release& release) const;
  // The "agent" lane: floors recorded, releases installed, one at a time.
  Worker& AgentWorker();
  // A verified (or, with `chosen`, fleet-chosen) release of the agent app:
  // fetched, or installed when it is ready already.
  void OfferAgent(const metadata::Release& release, bool chosen);
  void InstallAgent(const metadata::Release& release);
  void AgentInstalled(uint64_t version, const Status& installed);
  // Not tried again in this process; said in the next report.
  void RefuseAgent(uint64_t version, const std::string& why);
  // The agent app's report, with the running agent's release: while the
  // latest agent rollback is of a release newer than the running agent,
  // "rolled_back" with the failure kind "agent-probation" (a rollout of the
  // agent counts it as failed); else, with "agent_update" on, its fetch's
  // progress, "deploying" while it is on probation, and "running" healthy
  // once confirmed (a rollout counts it as healthy). Nothing otherwise.
  std::optional<AppReport> AgentReport() const;
  // At start: a rollback not yet reported is one of the next report's
  // errors (the tracker's recent failures); marked reported in agent.json
  // once the tracker acknowledged the report that carried it.
  void ReportAgentRollback();

  NodeConfig config_;
  DataLayout layout_;
  // The apps followed: the local list, and every app a fleet document named.
  std::vector<std::string> apps_;
  const Clock& clock_;
  Executor& loop_;
  int lock_fd_ = -1;
  std::map<std::string, std::unique_ptr<ThreadExecutor>> lanes_;
  std::unique_ptr<StateFile> state_;
  // <data_dir>/tuf has two writers, the follower's refresh (on the loop) and
  // the import (on the store lane): each holds this while it uses the directory.
  std::mutex trusted_dir_lock_;
  std::unique_ptr<StoreWorker> store_;
  std::unique_ptr<BundleImporter> importer_;
  std::unique_ptr<runtime::Runtime> runtime_;  // null when deploy is off
  std::unique_ptr<Deployer> deployer_;
  std::unique_ptr<GarbageCollector> collector_;
  std::unique_ptr<OriginRelay> origin_relay_;      // web seeds behind a proxy; outlives the fetcher
  std::unique_ptr<TorrentSource> torrent_source_;  // the fetcher's .torrent files; outlives it
  std::unique_ptr<ReleasePipeline> pipeline_;
  std::unique_ptr<LanExchange> lan_;
  std::unique_ptr<TufMetadataSource> source_;
  std::unique_ptr<MetadataFollower> follower_;
  std::unique_ptr<FleetFollower> fleet_;
  std::unique_ptr<KeyBinder> key_binder_;
  std::unique_ptr<Reporter> reporter_;
  std::unique_ptr<LogUploader> log_uploader_;
  std::unique_ptr<NoticeWatcher> notice_;         // null when `notice` is off
  std::optional<DeviceCredentials> credentials_;  // at start, for the fetcher
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<MetricsServer> metrics_;
  TimerSlot pump_timer_;
  TimerSlot beacon_timer_;
  // Ready releases held for the maintenance window, per app.
  std::map<std::string, metadata::Release> waiting_switches_;
  TimerSlot window_timer_;
  std::map<std::string, UpdateLock> locks_;
  // What the agent's probation check reads (docs/agent-update.md): set once
  // Start() ran, and once trusted metadata was verified in this process
  // (on disk at start, or by a refresh).
  bool started_ = false;
  bool trusted_on_disk_verified_ = false;
  // The agent app of this device's architecture ("flotilla-agent-arm64").
  std::string agent_app_;
  uint64_t agent_installing_ = 0;     // the release being installed (0: none)
  std::set<uint64_t> agent_refused_;  // releases that failed to install here
  std::unique_ptr<Worker> agent_worker_;
  std::function<void()> restart_;
};

// The agent app of `platform`: flotilla-agent-amd64, -arm64, -armhf.
std::string AgentAppFor(const layerstore::Platform& platform);
// Whether `app` is an agent app (never run as a container).
bool IsAgentApp(const std::string& app);
// The exit code that asks systemd (Restart=on-failure) to start the unit
// again, through the launcher, into a staged agent release.
inline constexpr int kAgentRestartExitCode = 3;

}  // namespace flotilla::node
