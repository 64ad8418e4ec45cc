// The daemon's configuration (`flotilla-node run --config FILE`) and the
// layout of its data directory. docs/node.md documents every key.
//
// The file is strict JSON: an unknown key, a wrong type or a value out of
// range is an error that names the key, so a typo never silently drops a
// setting. Every path, socket and name the daemon uses derives from
// `data_dir`, so several nodes on one host never collide.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "http/http_client.h"
#include "node/control/host_port.h"

namespace flotilla::node {

enum class TransferMode { kP2p, kHttpOnly };

// Transfers run only between `from_hour` and `to_hour` (UTC, to exclusive);
// from > to wraps midnight (22 -> 6 is night-time).
struct AllowedHours {
  int from_hour = 0;
  int to_hour = 24;
};

struct LanConfig {
  bool enabled = true;
  std::string http_listen = "0.0.0.0:0";      // the exchange endpoint; port 0: kernel picks
  std::string group = "239.192.70.76";        // multicast group of the site's beacons
  uint16_t port = 7476;                       // beacon UDP port (shared by the site)
  std::string interface_address = "0.0.0.0";  // local address whose interface joins the group
  uint32_t beacon_interval_s = 10;
};

struct NodeConfig {
  std::string tracker_url;  // http://host[:port] or https://...
  // Where signed metadata, torrents and artifacts (web seeds) come from: a
  // static tier (nginx, a CDN) serving the repository's metadata/,
  // torrents/ and artifacts/; tracker_url when not set. Untrusted like any
  // origin: every byte is checked against signed metadata.
  std::string content_url;
  std::string enrolment_token;  // exactly one of token / token file
  std::string enrolment_token_file;
  std::string tls_ca_file;  // https only: CA bundle (default: system store)
  // The HTTP proxy of every exchange with the tracker and the content origin
  // (never with LAN neighbours or peers): nullopt: the environment's
  // https_proxy / http_proxy / no_proxy, as libcurl reads them; "": none, the
  // environment ignored (`"proxy": "none"`); else http://[user:password@]host:port.
  std::optional<std::string> proxy;
  std::string no_proxy;  // with a proxy URL: hosts reached directly ("a,.b.example")
  std::string device_name;
  std::string data_dir;
  std::string root_of_trust;  // root.json installed when tuf/ holds none yet
  std::vector<std::string> apps;
  std::string site;
  // Labels given to the device at its first enrolment (the operator changes
  // them afterwards with `device tag`).
  std::vector<std::string> tags;
  uint64_t download_bytes_per_s = 0;  // 0: unlimited
  uint64_t upload_bytes_per_s = 0;
  std::optional<AllowedHours> allowed_hours;
  std::string listen = "0.0.0.0:0";  // peer (BitTorrent) listen address:port
  TransferMode transfer_mode = TransferMode::kP2p;
  bool deltas = true;
  // Follow flotilla-agent-<arch> and install its newer releases into
  // <data_dir>/agent (docs/agent-update.md); off: the agent changes only
  // with its package.
  bool agent_update = false;
  uint32_t refresh_interval_s = 300;
  uint32_t max_backoff_s = 1800;
  uint32_t report_interval_s = 60;
  uint32_t http_chunk_kib = 1024;
  uint32_t stall_timeout_s = 120;
  // p2p: seconds a transfer waits for bytes from peers before it takes them
  // from the origin (plus a random stagger of up to 0.8 times as long); a
  // node alone in its swarm takes the origin sooner (docs/transfer.md).
  uint32_t origin_wait_s = 10;
  // Hold one notice request at the tracker, answered when a new release or
  // fleet change is published (node/daemon/notice_watcher.h); polling at
  // refresh_interval_s goes on beside it.
  bool notice = true;
  std::string log_level = "info";
  LanConfig lan;
  // Run each ready release in the built-in runtime.
  // false: fetch and verify only (the simulation's transfer-only runs).
  bool deploy = true;
  uint32_t keep_releases = 2;      // releases kept per app (running + previous)
  uint64_t disk_budget_bytes = 0;  // 0: only the filesystem's free space limits
  std::string monitor_path;        // flotilla-monitor; empty: found next to the binary
  std::string control_socket;      // empty: <data_dir>/control.sock
  // Where the node writes the values of the apps' secrets: a tmpfs (the node
  // mounts one there when it is not), never under data_dir (docs/config.md,
  // "Secrets"). Empty: /run/flotilla-node/<device_name>/secrets.
  std::string secrets_dir;
  std::string metrics_listen;  // "host:port" of Prometheus /metrics; empty: off
  // Where an operator drops offline bundles (a USB stick's mount point):
  // polled every import_poll_s for *.bundle files, each imported once
  // (docs/bundle.md, "The import directory"). Empty: none.
  std::string import_dir;
  uint32_t import_poll_s = 5;
};

// Parses and validates the configuration text.
Result<NodeConfig> ParseNodeConfig(std::string_view text);
// Reads (at most 64 KiB) and parses `path`; errors are prefixed with it.
Result<NodeConfig> LoadNodeConfig(const std::string& path);

// Whether `hours` (none: always) allows transfers at wall time `now` (UTC).
bool TransfersAllowedAt(const std::optional<AllowedHours>& hours,
                        std::chrono::system_clock::time_point now);

// Paths inside the data directory (docs/node.md, "Data directory").
struct DataLayout {
  explicit DataLayout(std::string root) : root(std::move(root)) {}
  std::string root;
  std::string tuf() const { return root + "/tuf"; }
  std::string store() const { return root + "/store"; }
  std::string artifacts() const { return root + "/artifacts"; }
  // Verified torrents, kept by the torrent fetcher (served on the LAN).
  std::string torrents() const { return root + "/transfer/torrents"; }
  std::string transfer() const { return root + "/transfer"; }
  std::string credentials() const { return root + "/credentials.json"; }
  // The device key's 32-byte seed, mode 0600 (docs/identity.md).
  std::string device_key() const { return root + "/device-key"; }
  std::string state() const { return root + "/state.json"; }
  // Artifacts an import into the stopped node left to seed (imported_seeds.h).
  std::string imported_seeds() const { return root + "/imported-seeds.json"; }
  std::string lan_port_file() const { return root + "/lan.port"; }
  std::string lock_file() const { return root + "/node.lock"; }
  std::string runtime() const { return root + "/runtime"; }
  std::string control_socket() const { return root + "/control.sock"; }
};

// The HTTP client options of the daemon's exchanges with the tracker and
// neighbours: the configured CA file, 5 s to connect, 10 s without a byte, so
// one exchange holds the loop well inside the watchdog's 30 s.
// They go through the configured proxy (NodeConfig::proxy).
http::ClientOptions HttpOptionsFor(const NodeConfig& config);
// The same for LAN neighbours: never through a proxy, whatever the environment.
http::ClientOptions LanHttpOptionsFor(const NodeConfig& config);

}  // namespace flotilla::node
