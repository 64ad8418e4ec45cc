// The app spec: one JSON document per app that says how to run it.
//
// The operator writes it, the tracker signs it inside the targets metadata
// and the node hands it verbatim to the runtime. docs/app-spec.md describes
// every field with examples. ParseAppSpec validates everything the runtime
// later relies on (names, absolute paths without "..", known capabilities,
// rlimits and syscalls), so that code past the parser never re-checks.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla::appspec {

struct UserSpec {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
};

// A host device node the app may use: created in the container's /dev and
// allowed by the device cgroup. `access` is a subset of "rwm".
struct DeviceSpec {
  std::string path;
  std::string access = "rw";
};

// "volume": app data that persists across releases, kept under the runtime's
// state directory. "bind": a host path (an operator decision, signed).
struct MountSpec {
  std::string type = "volume";
  std::string name;         // volume name (type volume)
  std::string source;       // absolute host path (type bind)
  std::string destination;  // absolute path inside the container
  bool read_only = false;
};

struct RlimitSpec {
  std::string type;  // "RLIMIT_NOFILE", ...
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Zero means "no limit asked for".
struct ResourceSpec {
  uint64_t memory_bytes = 0;
  uint64_t pids = 0;
  uint64_t cpu_millis = 0;  // 1000 = one full CPU
};

enum class RestartPolicy { kNo, kOnFailure, kAlways };

struct RestartSpec {
  RestartPolicy policy = RestartPolicy::kOnFailure;
  uint32_t max_retries = 5;  // on-failure only; 0 = unlimited
  uint64_t backoff_initial_ms = 1000;
  uint64_t backoff_max_ms = 60000;
};

enum class HealthType { kRunning, kExec, kHttp };

struct HealthSpec {
  HealthType type = HealthType::kRunning;
  uint64_t running_seconds = 2;      // kRunning: still running after this long
  std::vector<std::string> command;  // kExec: run inside the container, exit 0 = healthy
  uint16_t port = 0;                 // kHttp: GET http://127.0.0.1:port/path, 2xx = healthy
  std::string path = "/";
  uint64_t interval_ms = 500;
  uint64_t timeout_ms = 2000;  // one probe
  // kExec/kHttp, once the release is current and running: checked again every
  // recheck_interval_ms (0: only while a switch waits for it); after
  // failure_threshold failures in a row the container is stopped as unhealthy
  // and the restart policy decides what follows.
  uint64_t recheck_interval_ms = 10000;
  uint32_t failure_threshold = 3;
};

enum class SwitchMode { kParallel, kStopFirst };

struct SwitchSpec {
  SwitchMode mode = SwitchMode::kParallel;
  uint64_t healthy_deadline_ms = 30000;
};

// A variable fleet configuration may set (docs/config.md, "What the app
// spec accepts"): its value must match `pattern` (a POSIX extended regular
// expression, the whole value); delivered in the environment (`env`) and/or
// the configuration files (`file`). A `secret` is neither: its value is
// set with `secret set`, sealed to the device's key, and reaches the app
// only as a file on a tmpfs (docs/config.md, "Secrets").
struct ConfigVariableSpec {
  std::string name;
  std::string pattern = ".*";
  bool env = true;
  bool file = true;
  bool secret = false;
};

struct AppSpec {
  std::string name;
  std::string image;  // informational: the node resolves it to lower directories
  std::vector<std::string> command;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string hostname;  // default: the app name
  UserSpec user;
  std::string network = "host";  // "host" or "none" (own namespace, loopback only)
  std::vector<DeviceSpec> devices;
  std::vector<MountSpec> mounts;
  std::vector<std::string> capabilities;  // default: the OCI default set
  ResourceSpec resources;
  std::vector<RlimitSpec> rlimits;
  int oom_score_adj = 0;
  bool read_only_rootfs = false;
  RestartSpec restart;
  HealthSpec health;
  SwitchSpec switch_mode;
  uint64_t stop_grace_ms = 10000;
  uint64_t log_ring_bytes = 256 * 1024;
  bool persist_logs = true;  // the ring is written to the state dir when the app exits
  std::vector<ConfigVariableSpec> config;  // what fleet configuration may set
};

// One app's configuration values on one device, by name.
using ConfigValues = std::map<std::string, std::string>;

inline constexpr size_t kMaxConfigVariables = 64;
inline constexpr size_t kMaxConfigValueBytes = 4096;
inline constexpr size_t kMaxConfigBytes = 16384;  // names and values of one app together
inline constexpr size_t kMaxConfigPatternBytes = 256;

// InvalidArgument unless `name` is [A-Za-z_][A-Za-z0-9_]{0,63} and not a
// name the loader, a shell or an interpreter acts on (PATH, LD_*, ...: the
// list in docs/config.md), which fleet configuration never sets.
Status CheckConfigName(std::string_view name);
// OK when every value of `values` is one `spec` declares, matches its
// pattern and the bounds hold; else InvalidArgument naming the first that
// does not (and, for an undeclared name, what the spec accepts).
// A name `spec` declares `secret` is refused: secrets are not configuration.
Status CheckConfigValues(const AppSpec& spec, const ConfigValues& values);
// OK when `spec` declares `name` as a secret and `value` matches its pattern
// within the bounds of a configuration value; else InvalidArgument naming
// the name, never the value.
Status CheckSecretValue(const AppSpec& spec, const std::string& name, std::string_view value);
// Whether `spec` declares `name` as a secret.
bool DeclaresSecret(const AppSpec& spec, std::string_view name);

// The OCI runtime-spec default capability set (runc's `spec` output).
const std::vector<std::string>& DefaultCapabilities();

// Capability name ("CAP_NET_ADMIN") to number; nullopt if unknown.
std::optional<int> CapabilityNumber(std::string_view name);
std::optional<int> RlimitNumber(std::string_view name);

// Parses and validates; every error names the field.
Result<AppSpec> ParseAppSpec(const Json& json);
Result<AppSpec> ParseAppSpecText(std::string_view text);
// The inverse of ParseAppSpec, with every default spelled out.
Json AppSpecToJson(const AppSpec& spec);

// True for a path that is absolute and has no "." or ".." component.
bool IsCleanAbsolutePath(std::string_view path);
// App, release and volume names: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}.
bool IsValidName(std::string_view name);

}  // namespace flotilla::appspec
