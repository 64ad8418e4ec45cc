// The deployer: runs each ready release through the runtime's health-gated
// switch as release "r<version>" (its layers as the lowers), or
// "r<version>-c<config id>" with the fleet's configuration values
// (docs/config.md: a configuration is a runtime release of its own, so a
// change of configuration alone goes through the same switch and rolls back
// to the previous one), rolls back on
// the operator's word, supervises what runs and keeps the node's state in
// step with the runtime (docs/node.md, "Deployment").
//
// The runtime's calls never run on the loop: an app's switch, rollback and
// pruning run on the app's own lane ("app/<name>"), so one app's health
// check, however long, holds up neither the loop nor another app's
// deployment; the supervision pass runs on the "supervise" lane and logs on
// "logs". Results come back to the loop. A supervision result taken while a
// switch or rollback of the app was in flight is stale and is dropped.
//
// A configuration with secrets (docs/config.md, "Secrets") also writes the
// sealed boxes beside its files and their values into a tmpfs directory
// mounted at /run/flotilla/secrets (node/daemon/secret_files.h).
//
// Start() makes again the secrets files of what runs and ran before (a
// reboot empties the tmpfs), then runs the first supervision pass, which
// finishes a switch a crash interrupted (and starts what a reboot stopped); deployments asked for
// before it ended wait for it. A deployment asked for while another of the same app runs follows
// it.
//
// Thread-safety: every method is called on the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appspec/app_spec.h"
#include "core/clock.h"
#include "metadata/release.h"
#include "node/control/node_control.h"
#include "node/daemon/node_state.h"
#include "node/daemon/secret_files.h"
#include "node/daemon/store_worker.h"
#include "runtime/runtime.h"

namespace flotilla::node {

struct DeployerEvents {
  std::function<void()> changed;                        // a phase changed: report soon
  std::function<void(const std::string& error)> error;  // for the next report
  std::function<void()> collect;                        // a switch succeeded: collect garbage
};

// Where secrets go: `dir` the tmpfs (<dir>/<app>/<config id>/NAME), opened
// with the device key file `device_key`. Empty: a release declaring a secret
// is refused.
struct DeployerSecrets {
  std::string dir;
  std::string device_key;
};

// What runs of an app, as the runtime said at the last look.
struct ContainerView {
  std::string state = "none";  // the runtime's state of the current container
  uint32_t restarts = 0;
};

class Deployer {
 public:
  // Reads what runs of each app now (on the calling thread, before any lane runs).
  // `config_dir`: where each app's configuration files are written
  // (<config_dir>/<app>/<config id>/, docs/config.md).
  Deployer(std::vector<std::string> apps, StateFile& state, StoreWorker& store,
           runtime::Runtime& runtime, const LaneOf& lanes, Executor& loop, DeployerEvents events,
           std::string config_dir = "", DeployerSecrets secrets = {});

  void Start();
  void Stop();
  // Follows one more app (one the fleet assigns): reads what of it runs now.
  void Follow(const std::string& app, const LaneOf& lanes);
  // Whether `version` of `app` is ready, not failed, and neither runs nor is
  // being deployed (a crash came between the fetch and the switch).
  bool Awaits(const std::string& app, uint64_t version) const;
  // Switches to `release` with configuration `config` and the sealed
  // `secrets` (checked against its spec again: each declared secret has a
  // box, each box a declared secret).
  void Deploy(const std::string& app, const metadata::Release& release,
              const appspec::ConfigValues& config = {}, const SecretBoxes& secrets = {});
  // Whether `config` and `secrets` differ from the configuration that runs
  // of the running release and did not fail there before: a switch to it is
  // due.
  bool WantsConfig(const std::string& app, const appspec::ConfigValues& config,
                   const SecretBoxes& secrets = {}) const;
  // Switches back to the previous release; the reply says what runs.
  void Rollback(const std::string& app, ControlReply reply);
  // The newest `max_bytes` of the app's log; its lines since `since_unix_s`
  // when > 0 (runtime::Runtime::Logs).
  void Logs(const std::string& app, size_t max_bytes, int64_t since_unix_s, ControlReply reply);
  ContainerView Container(const std::string& app) const;
  uint64_t deploys_ok() const { return deploys_ok_; }
  uint64_t deploys_failed() const { return deploys_failed_; }

 private:
  struct AppLane {
    std::unique_ptr<Worker> worker;
    uint64_t generation = 0;                // changes when a switch or rollback starts or ends
    int in_flight = 0;                      // switches and rollbacks posted, not yet back
    std::optional<metadata::Release> next;  // deployment waiting for its turn
    appspec::ConfigValues next_config;      // with this configuration
    SecretBoxes next_secrets;               // and these secrets
    ContainerView container;
    void Begin() { ++in_flight, ++generation; }
    void End() { --in_flight, ++generation; }
  };
  struct SwitchResult {
    Result<runtime::DeployOutcome> outcome = Internal("not run");
    Result<runtime::AppStatus> after = Internal("not run");
  };
  struct RollbackResult {
    Result<runtime::AppStatus> before = Internal("not run");
    Result<runtime::DeployOutcome> outcome = Internal("not run");
    Result<runtime::AppStatus> after = Internal("not run");
  };
  void Supervise();
  // Before the first supervision pass: the secrets files of each app's
  // running and previous configuration, when the tmpfs lost them.
  void RestoreSecretFiles();
  void Resume();
  void DeployNext(const std::string& app);
  void StartSwitch(const std::string& app, uint64_t version, const appspec::AppSpec& spec,
                   const std::vector<std::string>& lowers, const appspec::ConfigValues& config,
                   const SecretBoxes& secrets);
  void Switched(const std::string& app, uint64_t version, const std::string& config_id,
                const SwitchResult& result);
  // A change of configuration alone that did not run healthy: rolled back.
  void ConfigFailed(const std::string& app, const std::string& config_id, const std::string& why);
  // Removes the configuration directories of `app` other than the running
  // and the previous configuration's.
  void PruneConfigs(const std::string& app);
  // `kind`: the report's failure kind, "deploy" or "health".
  void Failed(const std::string& app, uint64_t version, const std::string& kind,
              const std::string& why);
  Result<std::string> RolledBack(const std::string& app, const RollbackResult& result);
  void Sync(const std::string& app, const Result<runtime::AppStatus>& status);

  std::vector<std::string> apps_;
  std::string config_dir_;
  DeployerSecrets secrets_;
  StateFile& state_;
  StoreWorker& store_;
  runtime::Runtime& runtime_;
  DeployerEvents events_;
  std::map<std::string, AppLane> lanes_;
  Worker supervisor_;
  Worker logs_;
  TimerSlot timer_;
  Executor* loop_;
  bool resumed_ = false;
  uint64_t deploys_ok_ = 0, deploys_failed_ = 0;
};

}  // namespace flotilla::node
