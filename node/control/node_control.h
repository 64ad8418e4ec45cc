// What the daemon shows and accepts through its local control API (the Unix
// socket of `flotilla-node status|apps|logs|update|rollback`) and its
// Prometheus metrics. The daemon (node/daemon) implements it; the servers
// here serve it.
//
// Every method is called on the daemon's event loop thread (the control and
// metrics servers are polled from that loop), so an implementation needs no
// lock, and no method may block the loop: View and UpdateNow answer at once;
// Rollback (a health-gated switch, up to the app's healthy deadline) and
// Logs (a read from the app's monitor) answer later through a ControlReply.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::node {

struct AppView {
  std::string name;
  std::string phase;              // idle|downloading|verifying|ready|deploying|running|failed
  uint64_t target_release = 0;    // being fetched (0: none)
  uint64_t ready_release = 0;     // newest release whose layers are all verified
  uint64_t running_release = 0;   // the runtime's current release (0: none)
  uint64_t previous_release = 0;  // kept for rollback (0: none)
  std::string container_state;    // the runtime's state of the current container, "none"
  uint32_t restarts = 0;
  // Transfer of target_release (zeros when nothing is being fetched).
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  double rate_bytes_per_s = 0;  // over the last few seconds
  uint32_t peers = 0;
  int64_t eta_s = -1;             // -1: unknown
  uint64_t bytes_from_peers = 0;  // cumulative for the current or last release
  uint64_t bytes_from_origin = 0;
  std::string last_error;
  // The release the fleet document names (0: none; "fleet_assigned" false
  // when the document does not name the app, or there is no document).
  uint64_t desired_release = 0;
  bool fleet_assigned = false;
  // Why the ready release is not switched to yet ("waiting for the
  // maintenance window, opens 22:00 Europe/Berlin"; "" when it is not held).
  std::string waiting;
  // The app's update lock (docs/fleet.md, "Update locks"): 0 when none holds.
  int64_t lock_until_unix = 0;
  std::string lock_reason;
};

// The signed fleet document the node follows (docs/fleet.md).
struct FleetView {
  // "local": no fleet document (the local apps list, newest releases);
  // "following": the document below, refreshed at the last poll;
  // "holding": the document below; the last poll failed or was refused and
  // the node keeps running what it runs.
  std::string state = "local";
  uint64_t version = 0;        // of the device's fleet targets metadata (0: none)
  int64_t expires_unix = 0;    // its expiry
  int64_t last_poll_unix = 0;  // last successful poll (0: never)
  std::string last_error;      // of the last poll
};

// The agent itself (docs/agent-update.md): what the probation check reads.
struct AgentView {
  uint64_t release = 0;    // the agent release this daemon is (0: a build outside releases)
  bool installed = false;  // runs from <data_dir>/agent/releases/<release>/, not the package
  bool ready = false;      // it sent READY=1 (or would have: started)
  bool metadata_verified = false;  // its trusted metadata verified in this process
  std::string rolled_back;         // "release 6: not proven within 120 s" ("" : none)
};

// The last offline bundle import (docs/bundle.md, "Importing into a running
// node"): asked for through the control API or found in the import
// directory. id 0: none since the daemon started.
struct ImportView {
  uint64_t id = 0;     // counts the imports since the daemon started
  std::string bundle;  // the bundle file
  std::string source;  // "control" | "import_dir"
  // checking|copying|verifying|rebuilding (running), imported, refused
  std::string step;
  uint64_t bytes_done = 0;  // of the step's bytes_total (0: not known)
  uint64_t bytes_total = 0;
  std::string app;       // once the metadata verified
  uint64_t release = 0;  // once the metadata verified
  // The last progress line; once it ended, what it imported or why it was
  // refused (with the status code's name in `code`).
  std::string message;
  std::string code;
  // Its progress lines, the newest kMaxImportLines; `lines_dropped` older
  // ones are gone (what a client printed is lines_dropped + its index).
  std::vector<std::string> lines;
  uint64_t lines_dropped = 0;
  int64_t started_unix = 0;
  int64_t finished_unix = 0;  // 0 while it runs
};

inline constexpr size_t kMaxImportLines = 64;

// The import directory (node.json `import_dir`), polled for *.bundle files.
struct ImportDirView {
  std::string path;           // "" when none is configured
  bool present = false;       // the directory exists now (a stick is mounted)
  uint64_t bundles_seen = 0;  // bundle files tried (imported or refused), remembered
};

struct NodeView {
  std::string device_name;
  std::string site;
  std::string transfer_mode;  // "p2p" | "http-only"
  std::string version;        // flotilla version of the daemon
  bool enrolled = false;
  int64_t last_refresh_unix = 0;  // last successful metadata refresh (0: never)
  std::string last_refresh_error;
  std::vector<AppView> apps;
  FleetView fleet;
  AgentView agent;
  ImportView import;
  ImportDirView import_dir;
  // Counters since the daemon started.
  uint64_t refreshes_ok = 0;
  uint64_t refreshes_failed = 0;
  uint64_t deploys_ok = 0;
  uint64_t deploys_failed = 0;  // rolled back or failed before the switch
  uint64_t hash_failures = 0;
  uint64_t peers_banned = 0;  // peers that sent data failing verification, banned
  uint64_t bytes_wasted = 0;  // received bytes that failed verification
  // Disk of the data directory.
  uint64_t disk_free_bytes = 0;
  uint64_t store_bytes = 0;  // layers and artifacts the node keeps
};

// Update locks (docs/fleet.md, "Update locks"): how long one may hold.
inline constexpr int64_t kDefaultLockSeconds = 3600;
inline constexpr int64_t kMaxLockSeconds = 24 * 3600;
inline constexpr size_t kMaxLockReasonBytes = 200;

// The answer to a request that may take long. Called exactly once, on the
// loop thread, possibly before the method it was given to returns.
using ControlReply = std::function<void(Result<std::string>)>;

class NodeControl {
 public:
  virtual ~NodeControl() = default;
  virtual NodeView View() = 0;
  // Refreshes metadata now (and so starts any newer release at once).
  virtual void UpdateNow() = 0;
  // Switches `app` back to its previous release; replies a message saying what runs.
  virtual void Rollback(const std::string& app, ControlReply reply) = 0;
  // Replies the last `max_bytes` of the log of `app`'s current release.
  virtual void Logs(const std::string& app, size_t max_bytes, ControlReply reply) = 0;
  // Defers `app`'s switch to a new release for `seconds` (1..kMaxLockSeconds,
  // checked by the protocol); replies what holds.
  virtual void Lock(const std::string& /*app*/, int64_t /*seconds*/, const std::string& /*reason*/,
                    ControlReply reply) {
    reply(FailedPrecondition("this daemon takes no update locks"));
  }
  // Imports the offline bundle at `path` (absolute): replies at once that
  // it started (its progress and outcome then show in View().import), or
  // refuses when another import runs.
  virtual void Import(const std::string& /*path*/, ControlReply reply) {
    reply(FailedPrecondition("this daemon imports no bundles"));
  }
  // Ends `app`'s lock; a release it held is switched to if a window allows.
  virtual void Unlock(const std::string& /*app*/, ControlReply reply) {
    reply(FailedPrecondition("this daemon takes no update locks"));
  }
};

}  // namespace flotilla::node
