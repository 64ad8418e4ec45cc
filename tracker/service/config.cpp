#include "tracker/service/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"
#include "http/http_client.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/webhook_outbox.h"

namespace flotilla::tracker {
namespace {

Status CheckRange(const char* name, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high) {
    return InvalidArgument(std::string(name) + " must be in [" + std::to_string(low) + ", " +
                           std::to_string(high) + "]");
  }
  return Status::Ok();
}

// A URL the HTTP client takes: http:// or https://, a host, no spaces. The
// message shows the URL by scheme://host:port only (a path or query may hold
// a receiver's token).
Status ValidateWebhook(const WebhookConfig& hook) {
  const bool http = hook.url.rfind("http://", 0) == 0;
  const bool https = hook.url.rfind("https://", 0) == 0;
  if (!http && !https) {
    return InvalidArgument("url must start with http:// or https:// (got " +
                           http::RedactUrl(hook.url) + ")");
  }
  const std::string rest = hook.url.substr(http ? 7 : 8);
  const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || hook.url.find_first_of(" \t\r\n") != std::string::npos ||
      http::RedactUrl(hook.url) == "<bad URL>") {
    return InvalidArgument("url " + http::RedactUrl(hook.url) + " needs a host and no spaces");
  }
  if (hook.secret_file.empty()) return InvalidArgument("secret_file is required");
  for (const std::string& event : hook.events) {
    const auto& known = WebhookEventNames();
    if (std::find(known.begin(), known.end(), event) == known.end()) {
      std::string names;
      for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
      return InvalidArgument("events: unknown event '" + event + "' (known: " + names + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<TrackerConfig> LoadTrackerConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, 1 << 20));
  auto json = ParseJsonStrict(text);
  if (!json.ok()) return json.status().WithContext("config " + path);
  TrackerConfig c;
  JsonObjectReader r(*json, "");
  r.String("listen", c.listen);
  r.String("repository", c.repository);
  r.String("database", c.database);
  r.String("database_url", c.database_url);
  r.String("public_url", c.public_url);
  r.String("fleet_token_file", c.fleet_token_file);
  r.String("tls_certificate", c.tls_certificate);
  r.String("tls_private_key", c.tls_private_key);
  r.String("port_file", c.port_file);
  r.String("log_level", c.log_level);
  // Ranges are checked by ValidateTrackerConfig, after command-line flags.
  r.Int("announce_interval_s", c.announce_interval_s);
  r.Int("min_announce_interval_s", c.min_announce_interval_s);
  r.Int("peer_ttl_s", c.peer_ttl_s);
  r.Int("read_timeout_s", c.read_timeout_s);
  r.Int("max_header_bytes", c.max_header_bytes);
  r.Int("max_body_bytes", c.max_body_bytes);
  r.Int("max_connections", c.max_connections);
  r.Int("max_peers", c.max_peers);
  r.Int("max_peers_per_device", c.max_peers_per_device);
  r.Int("max_peers_per_device_swarm", c.max_peers_per_device_swarm);
  r.Int("max_connections_per_address", c.max_connections_per_address);
  r.Int("max_connections_per_device", c.max_connections_per_device);
  r.Strings("trusted_proxies", c.trusted_proxies);
  r.Int("max_devices", c.max_devices);
  r.Int("enrol_burst", c.enrol_burst);
  r.Int("enrol_per_minute", c.enrol_per_minute);
  r.Int("device_request_burst", c.device_request_burst);
  r.Int("device_requests_per_minute", c.device_requests_per_minute);
  r.Int("notice_max_wait_s", c.notice_max_wait_s);
  r.Int("notice_max_held", c.notice_max_held);
  r.Int("signing_lease_ttl_s", c.signing_lease_ttl_s);
  r.Int("timestamp_expiry_s", c.timestamp_expiry_s);
  r.Objects("webhooks", [&c](JsonObjectReader& w) {
    WebhookConfig hook;
    w.Require({"url", "secret_file"});
    w.String("url", hook.url);
    w.String("secret_file", hook.secret_file);
    w.Strings("events", hook.events);
    c.webhooks.push_back(std::move(hook));
  });
  r.Int("webhook_timeout_s", c.webhook_timeout_s);
  r.Int("webhook_retry_min_s", c.webhook_retry_min_s);
  r.Int("webhook_retry_max_s", c.webhook_retry_max_s);
  r.Int("webhook_max_age_s", c.webhook_max_age_s);
  RETURN_IF_ERROR_CTX(r.Finish(), "config " + path);
  return c;
}

Status ValidateTrackerConfig(const TrackerConfig& c) {
  if (c.repository.empty()) return InvalidArgument("repository is required");
  RETURN_IF_ERROR(ParseListenAddress(c.listen).status());
  if (!c.database.empty() && !c.database_url.empty()) {
    return InvalidArgument("database and database_url name the database twice: give one");
  }
  if (c.tls_certificate.empty() != c.tls_private_key.empty()) {
    return InvalidArgument("tls_certificate and tls_private_key go together");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level) == std::end(kLevels)) {
    return InvalidArgument("log_level must be trace, debug, info, warn or error");
  }
  RETURN_IF_ERROR(CheckRange("announce_interval_s", c.announce_interval_s, 10, 86400));
  RETURN_IF_ERROR(
      CheckRange("min_announce_interval_s", c.min_announce_interval_s, 1, c.announce_interval_s));
  RETURN_IF_ERROR(CheckRange("peer_ttl_s", c.peer_ttl_s, c.announce_interval_s, 7 * 86400));
  RETURN_IF_ERROR(CheckRange("read_timeout_s", c.read_timeout_s, 1, 600));
  RETURN_IF_ERROR(CheckRange("max_header_bytes", c.max_header_bytes, 1024, 1 << 20));
  RETURN_IF_ERROR(CheckRange("max_body_bytes", c.max_body_bytes, 1024, 16 << 20));
  RETURN_IF_ERROR(CheckRange("max_connections", c.max_connections, 1, 100'000));
  RETURN_IF_ERROR(CheckRange("max_peers", c.max_peers, 1, 10'000'000));
  RETURN_IF_ERROR(CheckRange("max_peers_per_device", c.max_peers_per_device, 1, c.max_peers));
  RETURN_IF_ERROR(CheckRange("max_peers_per_device_swarm", c.max_peers_per_device_swarm, 1,
                             c.max_peers_per_device));
  RETURN_IF_ERROR(
      CheckRange("max_connections_per_address", c.max_connections_per_address, 1, 100'000));
  RETURN_IF_ERROR(
      CheckRange("max_connections_per_device", c.max_connections_per_device, 1, 100'000));
  for (const std::string& proxy : c.trusted_proxies) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(proxy, ec);
    if (ec) return InvalidArgument("trusted_proxies: not an IP address: " + proxy);
  }
  RETURN_IF_ERROR(CheckRange("max_devices", c.max_devices, 1, 10'000'000));
  RETURN_IF_ERROR(CheckRange("enrol_burst", c.enrol_burst, 1, 1'000'000));
  RETURN_IF_ERROR(CheckRange("enrol_per_minute", c.enrol_per_minute, 1, 1'000'000));
  RETURN_IF_ERROR(CheckRange("device_request_burst", c.device_request_burst, 1, 100'000'000));
  RETURN_IF_ERROR(
      CheckRange("device_requests_per_minute", c.device_requests_per_minute, 1, 100'000'000));
  RETURN_IF_ERROR(CheckRange("timestamp_expiry_s", c.timestamp_expiry_s, 60, 7 * 86400));
  RETURN_IF_ERROR(CheckRange("notice_max_wait_s", c.notice_max_wait_s, 0, 280));
  RETURN_IF_ERROR(CheckRange("notice_max_held", c.notice_max_held, 0, 1'000'000));
  for (size_t i = 0; i < c.webhooks.size(); ++i) {
    RETURN_IF_ERROR_CTX(ValidateWebhook(c.webhooks[i]), "webhooks[" + std::to_string(i) + "]");
  }
  RETURN_IF_ERROR(CheckRange("webhook_timeout_s", c.webhook_timeout_s, 1, 300));
  RETURN_IF_ERROR(CheckRange("webhook_retry_min_s", c.webhook_retry_min_s, 1, 86400));
  RETURN_IF_ERROR(
      CheckRange("webhook_retry_max_s", c.webhook_retry_max_s, c.webhook_retry_min_s, 86400));
  RETURN_IF_ERROR(CheckRange("webhook_max_age_s", c.webhook_max_age_s, 60, 30 * 86400));
  return CheckRange("signing_lease_ttl_s", c.signing_lease_ttl_s, 1, 30);
}

std::string TrackerDatabaseUrl(const TrackerConfig& c, const std::string& default_db_path) {
  if (!c.database_url.empty()) return c.database_url;
  return c.database.empty() ? default_db_path : c.database;
}

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("listen must be address:port, got '" + text + "'");
  }
  ListenAddress out;
  out.host = text.substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return InvalidArgument("listen port must be 0-65535, got '" + port + "'");
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

Result<std::string> LoadWebhookSecret(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IOErrorFromErrno("webhook secret " + path, errno);
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied("webhook secret " + path +
                            " is readable by group or others (chmod 600)");
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, 4096));
  std::string secret = text.substr(0, text.find_first_of("\r\n"));
  if (secret.size() < 16) {
    return InvalidArgument("webhook secret " + path + " is shorter than 16 bytes");
  }
  return secret;
}

Result<std::string> LoadFleetTokenHash(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IOErrorFromErrno("fleet token " + path, errno);
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied("fleet token " + path + " is readable by group or others (chmod 600)");
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, 4096));
  const std::string token = text.substr(0, text.find_first_of("\r\n"));
  if (token.size() < 16)
    return InvalidArgument("fleet token " + path + " is shorter than 16 bytes");
  return HashSecret(token);
}

}  // namespace flotilla::tracker
