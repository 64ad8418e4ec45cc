#include "node/daemon/node_config.h"

#include <filesystem>
#include <set>

#include "core/canonical_json.h"
#include "core/file_io.h"

namespace flotilla::node {
namespace {

// Reads the members of one JSON object, refusing unknown keys and wrong types.
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string where) : object_(object), where_(std::move(where)) {}

  Status String(const char* key, std::string& out) {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Bad(key, "must be a string");
    out = v->get<std::string>();
    return Status::Ok();
  }
  Status Bool(const char* key, bool& out) {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Bad(key, "must be true or false");
    out = v->get<bool>();
    return Status::Ok();
  }
  template <typename T>
  Status Unsigned(const char* key, T& out, uint64_t min, uint64_t max) {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_unsigned()) return Bad(key, "must be an unsigned integer");
    uint64_t n = v->get<uint64_t>();
    if (n < min || n > max) {
      return Bad(key, "must be in " + std::to_string(min) + ".." + std::to_string(max));
    }
    out = static_cast<T>(n);
    return Status::Ok();
  }
  const Json* Find(const char* key) {
    known_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  Status Bad(std::string_view key, std::string_view why) const {
    return InvalidArgument(where_ + std::string(key) + ": " + std::string(why));
  }
  // Call after every member was read: any other key is a typo.
  Status RefuseUnknown() const {
    for (const auto& [key, value] : object_.items()) {
      if (!known_.count(key)) return InvalidArgument("unknown key '" + where_ + key + "'");
    }
    return Status::Ok();
  }

 private:
  const Json& object_;
  std::string where_;
  std::set<std::string> known_;
};

bool IsLabel(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status ReadLan(ObjectReader& top, LanConfig& lan) {
  const Json* v = top.Find("lan");
  if (v == nullptr) return Status::Ok();
  if (!v->is_object()) return top.Bad("lan", "must be an object");
  ObjectReader r(*v, "lan.");
  RETURN_IF_ERROR(r.Bool("enabled", lan.enabled));
  RETURN_IF_ERROR(r.String("http_listen", lan.http_listen));
  RETURN_IF_ERROR(r.String("group", lan.group));
  RETURN_IF_ERROR(r.Unsigned("port", lan.port, 1, 65535));
  RETURN_IF_ERROR(r.String("interface", lan.interface_address));
  RETURN_IF_ERROR(r.Unsigned("beacon_interval_s", lan.beacon_interval_s, 1, 3600));
  RETURN_IF_ERROR(r.RefuseUnknown());
  std::string host;
  uint16_t port = 0;
  return SplitHostPort(lan.http_listen, host, port).WithContext("lan.http_listen");
}

Status ReadBandwidth(ObjectReader& top, NodeConfig& c) {
  const Json* v = top.Find("bandwidth");
  if (v == nullptr) return Status::Ok();
  if (!v->is_object()) return top.Bad("bandwidth", "must be an object");
  ObjectReader r(*v, "bandwidth.");
  uint64_t down_kib = 0, up_kib = 0;
  RETURN_IF_ERROR(r.Unsigned("down_kib_s", down_kib, 0, 1ull << 30));
  RETURN_IF_ERROR(r.Unsigned("up_kib_s", up_kib, 0, 1ull << 30));
  c.download_bytes_per_s = down_kib * 1024;
  c.upload_bytes_per_s = up_kib * 1024;
  if (const Json* hours = r.Find("allowed_hours_utc")) {
    if (!hours->is_array() || hours->size() != 2 || !(*hours)[0].is_number_unsigned() ||
        !(*hours)[1].is_number_unsigned()) {
      return r.Bad("allowed_hours_utc", "must be [from_hour, to_hour]");
    }
    AllowedHours h{(*hours)[0].get<int>(), (*hours)[1].get<int>()};
    if (h.from_hour > 23 || h.to_hour > 24 || h.from_hour == h.to_hour) {
      return r.Bad("allowed_hours_utc", "hours must be 0..23 and 1..24 and differ");
    }
    c.allowed_hours = h;
  }
  return r.RefuseUnknown();
}

Status ReadApps(ObjectReader& top, NodeConfig& c) {
  const Json* v = top.Find("apps");
  if (v == nullptr || !v->is_array() || v->empty()) {
    return top.Bad("apps", "required: a non-empty array of app names");
  }
  for (const Json& app : *v) {
    if (!app.is_string() || !IsLabel(app.get<std::string>())) {
      return top.Bad("apps", "each app is a name of 1-64 of [A-Za-z0-9._-]");
    }
    c.apps.push_back(app.get<std::string>());
  }
  return Status::Ok();
}

Status ReadTop(ObjectReader& r, NodeConfig& c) {
  RETURN_IF_ERROR(r.String("tracker_url", c.tracker_url));
  RETURN_IF_ERROR(r.String("enrolment_token", c.enrolment_token));
  RETURN_IF_ERROR(r.String("enrolment_token_file", c.enrolment_token_file));
  RETURN_IF_ERROR(r.String("tls_ca_file", c.tls_ca_file));
  RETURN_IF_ERROR(r.String("device_name", c.device_name));
  RETURN_IF_ERROR(r.String("data_dir", c.data_dir));
  RETURN_IF_ERROR(r.String("root_of_trust", c.root_of_trust));
  RETURN_IF_ERROR(ReadApps(r, c));
  RETURN_IF_ERROR(r.String("site", c.site));
  RETURN_IF_ERROR(ReadBandwidth(r, c));
  RETURN_IF_ERROR(r.String("listen", c.listen));
  std::string mode = "p2p";
  RETURN_IF_ERROR(r.String("transfer_mode", mode));
  if (mode == "p2p") {
    c.transfer_mode = TransferMode::kP2p;
  } else if (mode == "http-only") {
    c.transfer_mode = TransferMode::kHttpOnly;
  } else {
    return r.Bad("transfer_mode", "must be \"p2p\" or \"http-only\"");
  }
  RETURN_IF_ERROR(r.Bool("deltas", c.deltas));
  RETURN_IF_ERROR(r.Unsigned("refresh_interval_s", c.refresh_interval_s, 1, 86400));
  RETURN_IF_ERROR(r.Unsigned("max_backoff_s", c.max_backoff_s, 1, 86400));
  RETURN_IF_ERROR(r.Unsigned("report_interval_s", c.report_interval_s, 1, 86400));
  RETURN_IF_ERROR(r.Unsigned("http_chunk_kib", c.http_chunk_kib, 16, 65536));
  RETURN_IF_ERROR(r.Unsigned("stall_timeout_s", c.stall_timeout_s, 5, 86400));
  RETURN_IF_ERROR(r.String("log_level", c.log_level));
  RETURN_IF_ERROR(ReadLan(r, c.lan));
  RETURN_IF_ERROR(r.Bool("deploy", c.deploy));
  RETURN_IF_ERROR(r.Unsigned("keep_releases", c.keep_releases, 1, 16));
  uint64_t budget_mib = 0;
  RETURN_IF_ERROR(r.Unsigned("disk_budget_mib", budget_mib, 0, 1ull << 30));
  c.disk_budget_bytes = budget_mib << 20;
  RETURN_IF_ERROR(r.String("monitor", c.monitor_path));
  RETURN_IF_ERROR(r.String("control_socket", c.control_socket));
  RETURN_IF_ERROR(r.String("metrics_listen", c.metrics_listen));
  return r.RefuseUnknown();
}

Status Validate(const NodeConfig& c) {
  if (c.tracker_url.rfind("http://", 0) != 0 && c.tracker_url.rfind("https://", 0) != 0) {
    return InvalidArgument("tracker_url: required, an http:// or https:// URL");
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
  if (!c.site.empty() && !IsLabel(c.site)) {
    return InvalidArgument("site: 1-64 of [A-Za-z0-9._-]");
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.count(c.log_level)) return InvalidArgument("log_level: trace..error");
  if (!c.control_socket.empty() && c.control_socket.front() != '/') {
    return InvalidArgument("control_socket: an absolute path");
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
  ObjectReader reader(json, "");
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
  return config;
}

Result<NodeConfig> LoadNodeConfig(const std::string& path) {
  auto text = ReadTextFileBounded(path, 64 << 10);
  if (!text.ok()) return text.status().WithContext("config " + path);
  auto config = ParseNodeConfig(*text);
  if (!config.ok()) return config.status().WithContext("config " + path);
  return config;
}

}  // namespace flotilla::node
