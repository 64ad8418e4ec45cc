// End-to-end support for the node daemon's tests: a published repository and
// flotilla-node run processes beside tests/support's tracker process, all
// real binaries on loopback.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/canonical_json.h"
#include "tests/support/process.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {

// flotilla-node run --config <dir>/node.json, output in <dir>/node.log.
class NodeProcess {
 public:
  bool Start(const std::string& dir, const Json& config);
  // SIGTERM and wait; returns the exit code (-1 if not running).
  int Stop() { return process_.Stop(); }
  void Kill() { process_.Kill(); }
  // Waits up to `timeout` for the process to exit by itself; its exit code
  // (128 + signal when killed), or -1 if it still runs.
  int WaitExit(std::chrono::milliseconds timeout) { return process_.WaitExit(timeout); }
  bool running() const { return process_.running(); }
  std::string Log() const;

 private:
  ChildProcess process_;
  std::string dir_;
};

// The app's entry of <data_dir>/state.json (null when absent).
Json AppState(const std::string& data_dir, const std::string& app);

// Output of `sqlite3`-free queries of tracker.db through python3.
std::string QueryTrackerDb(const std::string& db, const std::string& sql);

// The tracker's flotilla_artifact_bytes_served_total for `sha256` ("sha256:<hex>").
uint64_t ArtifactBytesServed(int port, const std::string& sha256);

// A repository with `app` published from a generated image (busybox layer +
// `random_kib` of random bytes seeded by `seed`).
bool InitRepository(const std::string& dir, const std::string& repo);
// `app_spec` null: the app runs `sleep 1000` with the default health check.
// `architecture` empty: the host's (an image for another one is published
// with `--platform linux/<architecture>`).
// `extra_args` are added to `publish` (e.g. "--offline-valid-days 30").
bool PublishImage(const std::string& dir, const std::string& repo, const std::string& app,
                  int random_kib, const std::string& seed, const std::string& variant = "0",
                  const Json& app_spec = nullptr, const std::string& architecture = "",
                  const std::string& extra_args = "");

// A repository under offline keys (docs/signing.md): `init --offline-keys`
// (offline keys in <dir>/off), and an app role for `app` with a key made by
// openssl (<dir>/<app>.pem: Ed25519, or ECDSA P-256 when `ecdsa`), added by
// an offline targets signing. Publish into it with PublishImage, then
// SignRelease. Commands' output goes to <dir>/offline.log.
bool InitOfflineRepository(const std::string& dir, const std::string& repo, const std::string& app,
                           bool ecdsa = false);
// Signs staged release `release` of `app` with its key and accepts it.
bool SignRelease(const std::string& dir, const std::string& repo, const std::string& app,
                 int release);

// Moves the calling test process into a new network namespace whose
// loopback is up and carries multicast (224.0.0.0/4), so LSD and the LAN
// beacons of the nodes it starts reach only each other. nullopt when the
// kernel cannot make a namespace (skip), else the `ip` commands' result.
std::optional<CommandResult> EnterNetnsWithLoopbackMulticast();

// The sum of the signed lengths of release `release` of `app`'s full
// artifacts in repository `repo` (0 when it is not published).
uint64_t FullArtifactBytes(const std::string& repo, const std::string& app, uint64_t release);

// The base config of a node in http-only mode following `app`.
Json NodeConfigFor(const std::string& name, const std::string& data_dir,
                   const std::string& tracker_url, const std::string& root, const std::string& app);

}  // namespace flotilla::testing
