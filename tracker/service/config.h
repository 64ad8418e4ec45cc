// flotilla-tracker's configuration: a JSON file (docs/tracker.md) whose
// values command-line flags override.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::tracker {

// A receiver of notifications (docs/fleet.md, "Notifications").
struct WebhookConfig {
  std::string url;                  // http:// or https://
  std::string secret_file;          // HMAC-SHA256 key: the file's first line (mode 0600)
  std::vector<std::string> events;  // empty: every event
};

struct TrackerConfig {
  std::string listen = "127.0.0.1:8080";  // address:port; port 0 picks a free one
  std::string repository;                 // required
  std::string database;                   // SQLite file; default <repository>/tracker.db
  std::string database_url;               // sqlite:PATH, PATH or postgresql://... (SqlEngine)
  std::string public_url;                 // default http(s)://<listen address>:<port>
  std::string fleet_token_file;           // optional; no enrolment without it
  std::string tls_certificate;            // PEM chain; with tls_private_key enables HTTPS
  std::string tls_private_key;            // PEM
  std::string port_file;                  // optional: the bound port is written here
  std::string log_level = "info";         // trace, debug, info, warn, error
  int64_t announce_interval_s = 1800;
  int64_t min_announce_interval_s = 60;
  int64_t peer_ttl_s = 3900;
  int64_t read_timeout_s = 10;
  int64_t max_header_bytes = 8 << 10;
  int64_t max_body_bytes = 64 << 10;
  int64_t max_connections = 1024;
  int64_t max_peers = 1'000'000;
  int64_t max_peers_per_device = 1024;
  int64_t max_peers_per_device_swarm = 4;
  int64_t max_connections_per_address = 256;
  int64_t max_connections_per_device = 16;
  // Addresses of load balancers (haproxy `send-proxy-v2`) whose connections
  // start with a PROXY protocol v2 header naming the device.
  std::vector<std::string> trusted_proxies;
  int64_t max_devices = 100'000;
  int64_t enrol_burst = 600;
  int64_t enrol_per_minute = 600;
  int64_t device_request_burst = 2048;
  int64_t device_requests_per_minute = 2048;
  // Held notice requests (docs/tracker.md, "Notice"): the longest a request
  // is held, and how many this replica holds at once (one per device).
  int64_t notice_max_wait_s = 50;
  int64_t notice_max_held = 20'000;
  int64_t signing_lease_ttl_s = 30;  // the signing lease's TTL (signing_lease.h), 1-30
  // Lifetime of the timestamp versions serve signs (re-signed at half of it).
  int64_t timestamp_expiry_s = 86400;
  // Notifications, sent by the replica holding the signing lease.
  std::vector<WebhookConfig> webhooks;
  int64_t webhook_timeout_s = 10;      // one POST, connection included
  int64_t webhook_retry_min_s = 10;    // first retry; doubled after each failure
  int64_t webhook_retry_max_s = 3600;  // cap of the retry delay
  int64_t webhook_max_age_s = 86400;   // an event not delivered by then is given up
};

// Reads a configuration file: strict JSON, unknown members refused, so that a
// typo is an error rather than a silently ignored setting.
Result<TrackerConfig> LoadTrackerConfig(const std::string& path);

// Checks ranges and required values.
Status ValidateTrackerConfig(const TrackerConfig& config);

// The database to open: database_url, else database, else the repository's
// tracker.db. REQUIRES: ValidateTrackerConfig(config) is OK.
std::string TrackerDatabaseUrl(const TrackerConfig& config, const std::string& default_db_path);

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0".
Result<ListenAddress> ParseListenAddress(const std::string& text);

// Reads a webhook's secret file (at most 4 KiB, not readable by group or
// others): its first line, at least 16 bytes. The secret is never logged.
Result<std::string> LoadWebhookSecret(const std::string& path);

// Reads the fleet token file (at most 4 KiB, not readable by group or others)
// and returns the SHA-256 hex of its first line; the token itself is dropped.
Result<std::string> LoadFleetTokenHash(const std::string& path);

}  // namespace flotilla::tracker
