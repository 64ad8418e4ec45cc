#include "tracker/service/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

using Setter = std::function<Status(const Json&, TrackerConfig&)>;

Setter StringField(std::string TrackerConfig::*field) {
  return [field](const Json& v, TrackerConfig& c) -> Status {
    if (!v.is_string()) return InvalidArgument("must be a string");
    c.*field = v.get<std::string>();
    return Status::Ok();
  };
}

Setter IntField(int64_t TrackerConfig::*field) {
  return [field](const Json& v, TrackerConfig& c) -> Status {
    if (!v.is_number_integer()) return InvalidArgument("must be an integer");
    c.*field = v.get<int64_t>();
    return Status::Ok();
  };
}

const std::map<std::string, Setter>& Fields() {
  static const std::map<std::string, Setter> kFields = {
      {"listen", StringField(&TrackerConfig::listen)},
      {"repository", StringField(&TrackerConfig::repository)},
      {"database", StringField(&TrackerConfig::database)},
      {"public_url", StringField(&TrackerConfig::public_url)},
      {"fleet_token_file", StringField(&TrackerConfig::fleet_token_file)},
      {"tls_certificate", StringField(&TrackerConfig::tls_certificate)},
      {"tls_private_key", StringField(&TrackerConfig::tls_private_key)},
      {"port_file", StringField(&TrackerConfig::port_file)},
      {"log_level", StringField(&TrackerConfig::log_level)},
      {"announce_interval_s", IntField(&TrackerConfig::announce_interval_s)},
      {"min_announce_interval_s", IntField(&TrackerConfig::min_announce_interval_s)},
      {"peer_ttl_s", IntField(&TrackerConfig::peer_ttl_s)},
      {"read_timeout_s", IntField(&TrackerConfig::read_timeout_s)},
      {"max_header_bytes", IntField(&TrackerConfig::max_header_bytes)},
      {"max_body_bytes", IntField(&TrackerConfig::max_body_bytes)},
      {"max_connections", IntField(&TrackerConfig::max_connections)},
      {"max_peers", IntField(&TrackerConfig::max_peers)},
  };
  return kFields;
}

Status CheckRange(const char* name, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high) {
    return InvalidArgument(std::string(name) + " must be in [" + std::to_string(low) + ", " +
                           std::to_string(high) + "]");
  }
  return Status::Ok();
}

}  // namespace

Result<TrackerConfig> LoadTrackerConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, 1 << 20));
  auto json = ParseJsonStrict(text);
  if (!json.ok()) return json.status().WithContext("config " + path);
  if (!json->is_object()) return InvalidArgument("config " + path + ": not a JSON object");
  TrackerConfig config;
  for (const auto& [key, value] : json->items()) {
    auto it = Fields().find(key);
    if (it == Fields().end()) return InvalidArgument("config " + path + ": unknown key " + key);
    RETURN_IF_ERROR_CTX(it->second(value, config), "config " + path + ": " + key);
  }
  return config;
}

Status ValidateTrackerConfig(const TrackerConfig& c) {
  if (c.repository.empty()) return InvalidArgument("repository is required");
  RETURN_IF_ERROR(ParseListenAddress(c.listen).status());
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
  return CheckRange("max_peers", c.max_peers, 1, 10'000'000);
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
