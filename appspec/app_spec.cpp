#include "appspec/app_spec.h"

#include <regex.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <utility>

#include "core/json_object_reader.h"

namespace flotilla::appspec {
namespace {

// clang-format off
constexpr std::array<std::string_view, 41> kCapabilityNames = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
// clang-format on

constexpr std::pair<std::string_view, int> kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME}};

constexpr EnumName<RestartPolicy> kRestartPolicyNames[] = {
    {RestartPolicy::kNo, "no"},
    {RestartPolicy::kOnFailure, "on-failure"},
    {RestartPolicy::kAlways, "always"}};
constexpr EnumName<HealthType> kHealthTypeNames[] = {
    {HealthType::kRunning, "running"}, {HealthType::kExec, "exec"}, {HealthType::kHttp, "http"}};
constexpr EnumName<SwitchMode> kSwitchModeNames[] = {{SwitchMode::kParallel, "parallel"},
                                                     {SwitchMode::kStopFirst, "stop-first"}};

void ReadUser(JsonObjectReader& r, UserSpec& user) {
  r.Unsigned("uid", user.uid, 0, UINT32_MAX - 1);
  r.Unsigned("gid", user.gid, 0, UINT32_MAX - 1);
  if (const Json* gids = r.Array("additional_gids")) {
    for (const auto& g : *gids) {
      if (!g.is_number_unsigned() || g.get<uint64_t>() >= UINT32_MAX) {
        return r.Fail("additional_gids", "must hold group ids");
      }
      user.additional_gids.push_back(g.get<uint32_t>());
    }
  }
}

void ReadDevice(JsonObjectReader& r, DeviceSpec& d) {
  r.String("path", d.path);
  r.String("access", d.access);
  r.Check(IsCleanAbsolutePath(d.path) && d.path.rfind("/dev/", 0) == 0, "path",
          "must be a clean absolute path under /dev/");
  r.Check(!d.access.empty() && d.access.find_first_not_of("rwm") == std::string::npos, "access",
          "must be letters from \"rwm\"");
}

void ReadMount(JsonObjectReader& r, MountSpec& m) {
  r.String("type", m.type);
  r.String("name", m.name);
  r.String("source", m.source);
  r.String("destination", m.destination);
  r.Bool("read_only", m.read_only);
  r.Check(m.type == "volume" || m.type == "bind", "type", "must be \"volume\" or \"bind\"");
  if (m.type == "volume") r.Check(IsValidName(m.name), "name", "must be a valid volume name");
  if (m.type == "bind") r.Check(IsCleanAbsolutePath(m.source), "source", "must be absolute");
  r.Check(IsCleanAbsolutePath(m.destination) && m.destination != "/", "destination",
          "must be a clean absolute path other than /");
}

void ReadRlimit(JsonObjectReader& r, RlimitSpec& l) {
  r.String("type", l.type);
  r.Unsigned("soft", l.soft);
  r.Unsigned("hard", l.hard);
  r.Check(RlimitNumber(l.type).has_value(), "type", "is not a known RLIMIT_* name");
  r.Check(l.soft <= l.hard, "soft", "must not exceed hard");
}

void ReadRestart(JsonObjectReader& r, RestartSpec& restart) {
  r.Choice("policy", kRestartPolicyNames, restart.policy);
  r.Unsigned("max_retries", restart.max_retries, 0, 1000000);
  r.Unsigned("backoff_initial_ms", restart.backoff_initial_ms, 0, 86400000);
  r.Unsigned("backoff_max_ms", restart.backoff_max_ms, 0, 86400000);
}

void ReadHealth(JsonObjectReader& r, HealthSpec& health) {
  r.Choice("type", kHealthTypeNames, health.type);
  r.Unsigned("seconds", health.running_seconds, 0, 3600);
  r.Strings("command", health.command);
  r.Unsigned("port", health.port, 0, 65535);
  r.String("path", health.path);
  r.Unsigned("interval_ms", health.interval_ms, 0, 3600000);
  r.Unsigned("timeout_ms", health.timeout_ms, 0, 3600000);
  r.Unsigned("recheck_interval_ms", health.recheck_interval_ms, 0, 86400000);
  r.Unsigned("failure_threshold", health.failure_threshold, 0, 1000);
  if (health.type == HealthType::kExec) {
    r.Check(!health.command.empty(), "command", "must not be empty for an exec check");
  }
  if (health.type == HealthType::kHttp) {
    r.Check(health.port != 0, "port", "must be set for an http check");
    r.Check(!health.path.empty() && health.path[0] == '/' &&
                health.path.find_first_of(" \r\n") == std::string::npos,
            "path", "must start with / and hold no spaces or line breaks");
  }
  r.Check(health.interval_ms >= 10, "interval_ms", "must be at least 10");
  r.Check(health.recheck_interval_ms == 0 || health.recheck_interval_ms >= 100,
          "recheck_interval_ms", "must be 0 (off) or at least 100");
  r.Check(health.failure_threshold >= 1, "failure_threshold", "must be at least 1");
}

constexpr std::string_view kReservedConfigNames[] = {
    "PATH",         "HOME",        "HOSTNAME",     "SHELL",      "IFS",        "ENV",
    "BASH_ENV",     "CDPATH",      "PS4",          "PWD",        "OLDPWD",     "TMPDIR",
    "USER",         "LOGNAME",     "GCONV_PATH",   "LOCPATH",    "NLSPATH",    "HOSTALIASES",
    "RES_OPTIONS",  "LOCALDOMAIN", "TZDIR",        "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "PERL5LIB",     "PERL5OPT",    "NODE_OPTIONS", "RUBYOPT",    "RUBYLIB",    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS"};
constexpr std::string_view kReservedConfigPrefixes[] = {"LD_", "BASH_FUNC_", "MALLOC_", "GLIBC_",
                                                        "FLOTILLA_"};

// A compiled POSIX extended expression anchored at both ends.
class AnchoredRegex {
 public:
  explicit AnchoredRegex(const std::string& pattern) {
    ok_ = ::regcomp(&re_, ("^(" + pattern + ")$").c_str(), REG_EXTENDED | REG_NOSUB) == 0;
  }
  ~AnchoredRegex() {
    if (ok_) ::regfree(&re_);
  }
  AnchoredRegex(const AnchoredRegex&) = delete;
  AnchoredRegex& operator=(const AnchoredRegex&) = delete;
  bool ok() const { return ok_; }
  bool Matches(const std::string& value) const {
    return ok_ && ::regexec(&re_, value.c_str(), 0, nullptr, 0) == 0;
  }

 private:
  regex_t re_{};
  bool ok_ = false;
};

void ReadConfigVariable(JsonObjectReader& r, ConfigVariableSpec& v) {
  r.String("name", v.name);
  r.String("pattern", v.pattern);
  r.Bool("secret", v.secret);
  if (v.secret) {
    // A secret is never in the environment nor in the configuration files.
    v.env = false;
    v.file = false;
  }
  r.Bool("env", v.env);
  r.Bool("file", v.file);
  Status name = CheckConfigName(v.name);
  r.Check(name.ok(), "name", name.message());
  r.Check(v.pattern.size() <= kMaxConfigPatternBytes && v.pattern.find('\0') == std::string::npos &&
              AnchoredRegex(v.pattern).ok(),
          "pattern", "must be a POSIX extended regular expression of at most 256 bytes");
  if (v.secret) {
    r.Check(!v.env, "env", "must be false for a secret (it would show in /proc/PID/environ)");
    r.Check(!v.file, "file", "must be false for a secret (it is a file of its own on a tmpfs)");
  } else {
    r.Check(v.env || v.file, "env", "or file must be true");
  }
}

void ReadTop(JsonObjectReader& r, AppSpec& spec) {
  r.String("name", spec.name);
  r.String("image", spec.image);
  r.Strings("command", spec.command);
  r.Strings("env", spec.env);
  r.String("cwd", spec.cwd);
  r.String("hostname", spec.hostname);
  r.String("network", spec.network);
  r.Strings("capabilities", spec.capabilities);
  r.Int("oom_score_adj", spec.oom_score_adj, -1000, 1000);
  r.Bool("read_only_rootfs", spec.read_only_rootfs);
  r.Unsigned("stop_grace_ms", spec.stop_grace_ms, 0, 3600000);
  r.Object("logs", [&](JsonObjectReader& logs) {
    logs.Unsigned("ring_bytes", spec.log_ring_bytes, 4096, 64ull << 20);
    logs.Bool("persist", spec.persist_logs);
  });
  r.Object("resources", [&](JsonObjectReader& res) {
    res.Unsigned("memory_bytes", spec.resources.memory_bytes);
    res.Unsigned("pids", spec.resources.pids);
    res.Unsigned("cpu_millis", spec.resources.cpu_millis, 0, 1024000);
  });
  r.Object("user", [&](JsonObjectReader& user) { ReadUser(user, spec.user); });
  r.Objects("devices", [&](JsonObjectReader& d) { ReadDevice(d, spec.devices.emplace_back()); });
  r.Objects("mounts", [&](JsonObjectReader& m) { ReadMount(m, spec.mounts.emplace_back()); });
  r.Objects("rlimits", [&](JsonObjectReader& l) { ReadRlimit(l, spec.rlimits.emplace_back()); });
  r.Objects("config",
            [&](JsonObjectReader& c) { ReadConfigVariable(c, spec.config.emplace_back()); });
  r.Object("restart", [&](JsonObjectReader& restart) { ReadRestart(restart, spec.restart); });
  r.Object("health", [&](JsonObjectReader& health) { ReadHealth(health, spec.health); });
  r.Object("switch", [&](JsonObjectReader& sw) {
    sw.Choice("mode", kSwitchModeNames, spec.switch_mode.mode);
    sw.Unsigned("healthy_deadline_ms", spec.switch_mode.healthy_deadline_ms, 0, 3600000);
  });
}

Status Validate(AppSpec& spec, bool capabilities_given) {
  if (!IsValidName(spec.name)) return InvalidArgument("app spec name must be a valid name");
  if (spec.command.empty() || spec.command[0].empty() || spec.command[0][0] != '/') {
    return InvalidArgument("app spec command must start with an absolute program path");
  }
  if (!IsCleanAbsolutePath(spec.cwd)) return InvalidArgument("app spec cwd must be absolute");
  if (spec.hostname.empty()) spec.hostname = spec.name;
  if (spec.hostname.size() > 63) return InvalidArgument("app spec hostname is too long");
  if (spec.network != "host" && spec.network != "none") {
    return InvalidArgument("app spec network must be \"host\" or \"none\"");
  }
  for (const auto& e : spec.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') {
      return InvalidArgument("app spec env entry '" + e + "' is not NAME=value");
    }
  }
  if (spec.config.size() > kMaxConfigVariables) {
    return InvalidArgument("app spec config declares more than " +
                           std::to_string(kMaxConfigVariables) + " variables");
  }
  for (size_t i = 0; i < spec.config.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (spec.config[i].name == spec.config[j].name) {
        return InvalidArgument("app spec config declares " + spec.config[i].name + " twice");
      }
    }
  }
  if (!capabilities_given) spec.capabilities = DefaultCapabilities();
  for (const auto& c : spec.capabilities) {
    if (!CapabilityNumber(c)) return InvalidArgument("app spec capability '" + c + "' unknown");
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> kDefault = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return kDefault;
}

std::optional<int> CapabilityNumber(std::string_view name) {
  for (size_t i = 0; i < kCapabilityNames.size(); ++i) {
    if (kCapabilityNames[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::optional<int> RlimitNumber(std::string_view name) {
  for (const auto& [n, v] : kRlimits) {
    if (n == name) return v;
  }
  return std::nullopt;
}

Status CheckConfigName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name) {
    ok = ok &&
         ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (!ok) {
    return InvalidArgument("configuration name '" + std::string(name.substr(0, 80)) +
                           "' is not [A-Za-z_][A-Za-z0-9_]{0,63}");
  }
  for (std::string_view reserved : kReservedConfigNames) {
    if (name == reserved) {
      return InvalidArgument(std::string(name) + " is reserved: fleet configuration never sets it");
    }
  }
  for (std::string_view prefix : kReservedConfigPrefixes) {
    if (name.substr(0, prefix.size()) == prefix) {
      return InvalidArgument(std::string(name) + " is reserved (" + std::string(prefix) +
                             "*): fleet configuration never sets it");
    }
  }
  return Status::Ok();
}

Status CheckConfigValues(const AppSpec& spec, const ConfigValues& values) {
  if (values.size() > kMaxConfigVariables) {
    return InvalidArgument("more than " + std::to_string(kMaxConfigVariables) +
                           " configuration variables");
  }
  size_t total = 0;
  for (const auto& [name, value] : values) {
    RETURN_IF_ERROR(CheckConfigName(name));
    const ConfigVariableSpec* declared = nullptr;
    for (const auto& v : spec.config) {
      if (v.name == name) declared = &v;
    }
    if (declared != nullptr && declared->secret) {
      return InvalidArgument(name + " is a secret: flotilla-tracker secret set");
    }
    if (declared == nullptr) {
      std::string accepted;
      for (const auto& v : spec.config) {
        if (!v.secret) accepted += (accepted.empty() ? "" : ", ") + v.name;
      }
      return InvalidArgument("does not accept " + name + " (its spec accepts " +
                             (accepted.empty() ? "no configuration" : accepted) + ")");
    }
    if (value.size() > kMaxConfigValueBytes) {
      return InvalidArgument(name + ": value longer than " + std::to_string(kMaxConfigValueBytes) +
                             " bytes");
    }
    if (value.find('\0') != std::string::npos) {
      return InvalidArgument(name + ": value holds a NUL byte");
    }
    if (!AnchoredRegex(declared->pattern).Matches(value)) {
      return InvalidArgument(name + ": value does not match the pattern " + declared->pattern);
    }
    total += name.size() + value.size();
  }
  if (total > kMaxConfigBytes) {
    return InvalidArgument("configuration of " + std::to_string(total) + " bytes (at most " +
                           std::to_string(kMaxConfigBytes) + ")");
  }
  return Status::Ok();
}

bool DeclaresSecret(const AppSpec& spec, std::string_view name) {
  return std::any_of(spec.config.begin(), spec.config.end(),
                     [&](const ConfigVariableSpec& v) { return v.secret && v.name == name; });
}

Status CheckSecretValue(const AppSpec& spec, const std::string& name, std::string_view value) {
  RETURN_IF_ERROR(CheckConfigName(name));
  const ConfigVariableSpec* declared = nullptr;
  for (const auto& v : spec.config) {
    if (v.name == name) declared = &v;
  }
  if (declared == nullptr || !declared->secret) {
    std::string accepted;
    for (const auto& v : spec.config) {
      if (v.secret) accepted += (accepted.empty() ? "" : ", ") + v.name;
    }
    return InvalidArgument("does not declare the secret " + name + " (its spec declares " +
                           (accepted.empty() ? "no secret" : accepted) + ")");
  }
  if (value.size() > kMaxConfigValueBytes || value.find('\0') != std::string_view::npos) {
    return InvalidArgument(name + ": a secret is at most " + std::to_string(kMaxConfigValueBytes) +
                           " bytes, without NUL");
  }
  // The message names the pattern, never the value.
  if (!AnchoredRegex(declared->pattern).Matches(std::string(value))) {
    return InvalidArgument(name + ": the secret does not match the pattern " + declared->pattern);
  }
  return Status::Ok();
}

bool IsCleanAbsolutePath(std::string_view path) {
  if (path.empty() || path[0] != '/' || path.size() > 4096) return false;
  if (path.find('\0') != std::string_view::npos) return false;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view part = path.substr(pos, next - pos);
    if (part == "." || part == "..") return false;
    if (part.empty() && next != path.size()) return false;  // "//"
    pos = next + 1;
  }
  return true;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

Result<AppSpec> ParseAppSpec(const Json& json) {
  AppSpec spec;
  JsonObjectReader r(json, "");
  ReadTop(r, spec);
  RETURN_IF_ERROR(r.Finish().WithContext("app spec"));
  bool caps_given =
      json.is_object() && json.contains("capabilities") && !json["capabilities"].is_null();
  RETURN_IF_ERROR(Validate(spec, caps_given));
  return spec;
}

Result<AppSpec> ParseAppSpecText(std::string_view text) {
  ASSIGN_OR_RETURN(Json json, ParseJsonStrict(text, JsonLimits{1 << 20, 16}));
  return ParseAppSpec(json);
}

Json AppSpecToJson(const AppSpec& s) {
  Json j;
  j["name"] = s.name;
  j["image"] = s.image;
  j["command"] = s.command;
  j["env"] = s.env;
  j["cwd"] = s.cwd;
  j["hostname"] = s.hostname;
  j["user"] = {
      {"uid", s.user.uid}, {"gid", s.user.gid}, {"additional_gids", s.user.additional_gids}};
  j["network"] = s.network;
  j["devices"] = Json::array();
  for (const auto& d : s.devices) j["devices"].push_back({{"path", d.path}, {"access", d.access}});
  j["mounts"] = Json::array();
  for (const auto& m : s.mounts) {
    Json mj = {{"type", m.type}, {"destination", m.destination}, {"read_only", m.read_only}};
    if (m.type == "volume")
      mj["name"] = m.name;
    else
      mj["source"] = m.source;
    j["mounts"].push_back(mj);
  }
  j["capabilities"] = s.capabilities;
  j["resources"] = {{"memory_bytes", s.resources.memory_bytes},
                    {"pids", s.resources.pids},
                    {"cpu_millis", s.resources.cpu_millis}};
  j["rlimits"] = Json::array();
  for (const auto& l : s.rlimits) {
    j["rlimits"].push_back({{"type", l.type}, {"soft", l.soft}, {"hard", l.hard}});
  }
  j["oom_score_adj"] = s.oom_score_adj;
  j["read_only_rootfs"] = s.read_only_rootfs;
  j["restart"] = {{"policy", NameOf(kRestartPolicyNames, s.restart.policy)},
                  {"max_retries", s.restart.max_retries},
                  {"backoff_initial_ms", s.restart.backoff_initial_ms},
                  {"backoff_max_ms", s.restart.backoff_max_ms}};
  Json h = {{"type", NameOf(kHealthTypeNames, s.health.type)},
            {"interval_ms", s.health.interval_ms},
            {"timeout_ms", s.health.timeout_ms}};
  if (s.health.type == HealthType::kRunning) h["seconds"] = s.health.running_seconds;
  if (s.health.type != HealthType::kRunning) {
    h["recheck_interval_ms"] = s.health.recheck_interval_ms;
    h["failure_threshold"] = s.health.failure_threshold;
  }
  if (s.health.type == HealthType::kExec) h["command"] = s.health.command;
  if (s.health.type == HealthType::kHttp) {
    h["port"] = s.health.port;
    h["path"] = s.health.path;
  }
  j["health"] = h;
  j["switch"] = {{"mode", NameOf(kSwitchModeNames, s.switch_mode.mode)},
                 {"healthy_deadline_ms", s.switch_mode.healthy_deadline_ms}};
  j["stop_grace_ms"] = s.stop_grace_ms;
  j["logs"] = {{"ring_bytes", s.log_ring_bytes}, {"persist", s.persist_logs}};
  // Only when declared: a spec without configuration keeps its canonical
  // form (and release ids derived from it).
  if (!s.config.empty()) {
    j["config"] = Json::array();
    for (const auto& v : s.config) {
      Json declaration{{"name", v.name}, {"pattern", v.pattern}, {"env", v.env}, {"file", v.file}};
      // Only when true: the canonical form of a spec without secrets stays.
      if (v.secret) declaration["secret"] = true;
      j["config"].push_back(std::move(declaration));
    }
  }
  return j;
}

}  // namespace flotilla::appspec
