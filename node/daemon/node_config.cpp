#include "node/daemon/node_config.h"

#include <filesystem>
#include <set>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"
#include "tracker/api/enrolment.h"

namespace flotilla::node {
namespace {

bool IsLabel(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status ReadLan(JsonObjectReader& top, LanConfig& lan) {
  const Json* v = top.Object("lan");
  if (v == nullptr) return top.status();
  JsonObjectReader r(*v, top.PathOf("lan"));
  r.Bool("enabled", lan.enabled);
  r.String("http_listen", lan.http_listen);
  r.String("group", lan.group);
  r.Unsigned("port", lan.port, 1, 65535);
  r.String("interface", lan.interface_address);
  r.Unsigned("beacon_interval_s", lan.beacon_interval_s, 1, 3600);
  RETURN_IF_ERROR(r.Finish());
  std::string host;
  uint16_t port = 0;
  return SplitHostPort(lan.http_listen, host, port).WithContext("lan.http_listen");
}

Status ReadBandwidth(JsonObjectReader& top, NodeConfig& c) {
  const Json* v = top.Object("bandwidth");
  if (v == nullptr) return top.status();
  JsonObjectReader r(*v, top.PathOf("bandwidth"));
  uint64_t down_kib = 0, up_kib = 0;
  r.Unsigned("down_kib_s", down_kib, 0, 1ull << 30);
  r.Unsigned("up_kib_s", up_kib, 0, 1ull << 30);
  c.download_bytes_per_s = down_kib * 1024;
  c.upload_bytes_per_s = up_kib * 1024;
  if (const Json* hours = r.Find("allowed_hours_utc")) {
    if (!hours->is_array() || hours->size() != 2 || !(*hours)[0].is_number_unsigned() ||
        !(*hours)[1].is_number_unsigned()) {
      return InvalidArgument(r.PathOf("allowed_hours_utc") + ": must be [from_hour, to_hour]");
    }
    AllowedHours h{(*hours)[0].get<int>(), (*hours)[1].get<int>()};
    r.Check(h.from_hour <= 23 && h.to_hour <= 24 && h.from_hour != h.to_hour, "allowed_hours_utc",
            "hours must be 0..23 and 1..24 and differ");
    c.allowed_hours = h;
  }
  return r.Finish();
}

void ReadApps(JsonObjectReader& top, NodeConfig& c) {
  top.Strings("apps", c.apps);
  top.Check(!c.apps.empty(), "apps", "required: a non-empty array of app names");
  for (const std::string& app : c.apps) {
    top.Check(IsLabel(app), "apps", "each app is a name of 1-64 of [A-Za-z0-9._-]");
  }
}

Status ReadTop(JsonObjectReader& r, NodeConfig& c) {
  r.String("tracker_url", c.tracker_url);
  r.String("content_url", c.content_url);
  r.String("enrolment_token", c.enrolment_token);
  r.String("enrolment_token_file", c.enrolment_token_file);
  r.String("tls_ca_file", c.tls_ca_file);
  if (r.Find("proxy") != nullptr) {
    std::string proxy;
    r.String("proxy", proxy);
    c.proxy = proxy == "none" ? "" : proxy;
  }
  r.String("no_proxy", c.no_proxy);
  r.String("device_name", c.device_name);
  r.String("data_dir", c.data_dir);
  r.String("root_of_trust", c.root_of_trust);
  ReadApps(r, c);
  r.String("site", c.site);
  r.Strings("tags", c.tags);
  RETURN_IF_ERROR(ReadBandwidth(r, c));
  r.String("listen", c.listen);
  std::string mode = "p2p";
  r.String("transfer_mode", mode);
  if (mode == "p2p") {
    c.transfer_mode = TransferMode::kP2p;
  } else if (mode == "http-only") {
    c.transfer_mode = TransferMode::kHttpOnly;
  } else {
    r.Fail("transfer_mode", "must be \"p2p\" or \"http-only\"");
  }
  r.Bool("deltas", c.deltas);
  r.Bool("agent_update", c.agent_update);
  r.Unsigned("refresh_interval_s", c.refresh_interval_s, 1, 86400);
  r.Unsigned("max_backoff_s", c.max_backoff_s, 1, 86400);
  r.Unsigned("report_interval_s", c.report_interval_s, 1, 86400);
  r.Unsigned("http_chunk_kib", c.http_chunk_kib, 16, 65536);
  r.Unsigned("stall_timeout_s", c.stall_timeout_s, 5, 86400);
  r.Unsigned("origin_wait_s", c.origin_wait_s, 1, 3600);
  r.Bool("notice", c.notice);
  r.String("log_level", c.log_level);
  RETURN_IF_ERROR(ReadLan(r, c.lan));
  r.Bool("deploy", c.deploy);
  r.Unsigned("keep_releases", c.keep_releases, 1, 16);
  uint64_t budget_mib = 0;
  r.Unsigned("disk_budget_mib", budget_mib, 0, 1ull << 30);
  c.disk_budget_bytes = budget_mib << 20;
  r.String("monitor", c.monitor_path);
  r.String("control_socket", c.control_socket);
  r.String("secrets_dir", c.secrets_dir);
  r.String("metrics_listen", c.metrics_listen);
  r.String("import_dir", c.import_dir);
  r.Unsigned("import_poll_s", c.import_poll_s, 1, 3600);
  return r.Finish();
}

Status Validate(const NodeConfig& c) {
  if (c.tracker_url.rfind("http://", 0) != 0 && c.tracker_url.rfind("https://", 0) != 0) {
    return InvalidArgument("tracker_url: required, an http:// or https:// URL");
  }
  if (!c.content_url.empty() && c.content_url.rfind("http://", 0) != 0 &&
      c.content_url.rfind("https://", 0) != 0) {
    return InvalidArgument("content_url: an http:// or https:// URL");
  }
  if (c.enrolment_token.empty() == c.enrolment_token_file.empty()) {
    return InvalidArgument("give exactly one of enrolment_token and enrolment_token_file");
  }
  if (!IsLabel(c.device_name)) {
    return InvalidArgument("device_name: required, 1-64 of [A-Za-z0-9._-]");
  }
  if (c.data_dir.empty() || c.data_dir.front() != '/') {
    return InvalidArgument("data_dir: required, an absolute path");
  }
  if (!c.import_dir.empty() && c.import_dir.front() != '/') {
    return InvalidArgument("import_dir: an absolute path (a USB stick's mount point)");
  }
  if (!c.site.empty() && !IsLabel(c.site)) {
    return InvalidArgument("site: 1-64 of [A-Za-z0-9._-]");
  }
  if (c.tags.size() > tracker::kMaxEnrolTags) {
    return InvalidArgument("tags: at most " + std::to_string(tracker::kMaxEnrolTags));
  }
  for (const std::string& tag : c.tags) {
    if (!IsLabel(tag)) return InvalidArgument("tags: '" + tag + "' is not 1-64 of [A-Za-z0-9._-]");
  }
  if (c.proxy && !c.proxy->empty()) {
    RETURN_IF_ERROR(http::ParseProxyUrl(*c.proxy).status().WithContext("proxy"));
  }
  if (!c.no_proxy.empty() && (!c.proxy || c.proxy->empty())) {
    return InvalidArgument("no_proxy: only with a proxy URL (the environment has its own)");
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.count(c.log_level)) return InvalidArgument("log_level: trace..error");
  if (!c.control_socket.empty() && c.control_socket.front() != '/') {
    return InvalidArgument("control_socket: an absolute path");
  }
  if (!c.secrets_dir.empty() && c.secrets_dir.front() != '/') {
    return InvalidArgument("secrets_dir: an absolute path (a tmpfs the node may mount)");
  }
  if (c.control_socket.size() > 107 || c.data_dir.size() + 13 > 107) {
    return InvalidArgument("control_socket: longer than a Unix socket path may be (107 bytes)");
  }
  std::string host;
  uint16_t port = 0;
  if (!c.metrics_listen.empty()) {
    RETURN_IF_ERROR(SplitHostPort(c.metrics_listen, host, port).WithContext("metrics_listen"));
  }
  return SplitHostPort(c.listen, host, port).WithContext("listen");
}

}  // namespace

bool TransfersAllowedAt(const std::optional<AllowedHours>& hours,
                        std::chrono::system_clock::time_point now) {
  if (!hours) return true;
  auto since_epoch = std::chrono::duration_cast<std::chrono::hours>(now.time_since_epoch());
  int hour = static_cast<int>(since_epoch.count() % 24);
  if (hours->from_hour < hours->to_hour) return hour >= hours->from_hour && hour < hours->to_hour;
  return hour >= hours->from_hour || hour < hours->to_hour;
}

Result<NodeConfig> ParseNodeConfig(std::string_view text) {
  ASSIGN_OR_RETURN(Json json, ParseJsonStrict(text, JsonLimits{64 << 10, 8}));
  if (!json.is_object()) return InvalidArgument("the configuration must be a JSON object");
  NodeConfig config;
  JsonObjectReader reader(json, "");
  RETURN_IF_ERROR(ReadTop(reader, config));
  RETURN_IF_ERROR(Validate(config));
  // "/tmp//x/" -> "/tmp/x": the runtime refuses paths that are not clean.
  config.data_dir = std::filesystem::path(config.data_dir).lexically_normal().string();
  while (config.data_dir.size() > 1 && config.data_dir.back() == '/') config.data_dir.pop_back();
  if (config.control_socket.empty()) {
    config.control_socket = DataLayout(config.data_dir).control_socket();
  }
  while (config.tracker_url.size() > 8 && config.tracker_url.back() == '/') {
    config.tracker_url.pop_back();
  }
  if (config.secrets_dir.empty()) {
    config.secrets_dir = "/run/flotilla-node/" + config.device_name + "/secrets";
  }
  // Clean as data_dir: the runtime's mount sources must be.
  config.secrets_dir = std::filesystem::path(config.secrets_dir).lexically_normal().string();
  while (config.secrets_dir.size() > 1 && config.secrets_dir.back() == '/') {
    config.secrets_dir.pop_back();
  }
  // The values must never reach the SD card: not under data_dir, and
  // data_dir not under the tmpfs.
  const std::string secrets = config.secrets_dir + "/", data = config.data_dir + "/";
  if (secrets.starts_with(data) || data.starts_with(secrets)) {
    return InvalidArgument("secrets_dir: " + config.secrets_dir +
                           " must be neither under data_dir nor hold it (secrets stay off disk)");
  }
  if (config.content_url.empty()) config.content_url = config.tracker_url;
  while (config.content_url.size() > 8 && config.content_url.back() == '/') {
    config.content_url.pop_back();
  }
  return config;
}

Result<NodeConfig> LoadNodeConfig(const std::string& path) {
  auto text = ReadTextFileBounded(path, 64 << 10);
  if (!text.ok()) return text.status().WithContext("config " + path);
  auto config = ParseNodeConfig(*text);
  if (!config.ok()) return config.status().WithContext("config " + path);
  return config;
}

http::ClientOptions HttpOptionsFor(const NodeConfig& config) {
  return http::ClientOptions{.connect_timeout = std::chrono::seconds(5),
                             .read_timeout = std::chrono::seconds(10),
                             .ca_file = config.tls_ca_file,
                             .proxy = config.proxy,
                             .no_proxy = config.no_proxy};
}

http::ClientOptions LanHttpOptionsFor(const NodeConfig& config) {
  http::ClientOptions options = HttpOptionsFor(config);
  options.proxy = "";
  options.no_proxy.clear();
  return options;
}

}  // namespace flotilla::node
