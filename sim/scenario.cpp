#include "sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <regex>

#include "core/enum_names.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"

namespace flotilla::sim {
namespace {

constexpr EnumName<Strategy> kStrategyNames[] = {{Strategy::kFlotilla, "flotilla"},
                                                 {Strategy::kHttpFull, "http-full"},
                                                 {Strategy::kHttpDelta, "http-delta"}};

Result<LinkShape> ParseDirection(const Json& obj, const std::string& where) {
  JsonObjectReader r(obj, where);
  double rate = 0, delay = 0, jitter = 0, loss = 0, queue = 0;
  r.Number("rate_kbit", rate, 0, 10'000'000);
  r.Number("delay_ms", delay, 0, 10'000);
  r.Number("jitter_ms", jitter, 0, 10'000);
  r.Number("loss_percent", loss, 0, 99.9999);
  r.Number("queue_kb", queue, 0, 65536);
  RETURN_IF_ERROR(r.Finish());
  LinkShape s;
  s.rate_kbit = static_cast<uint64_t>(std::llround(rate));
  s.delay_us = static_cast<uint32_t>(std::llround(delay * 1000));
  s.jitter_us = static_cast<uint32_t>(std::llround(jitter * 1000));
  s.loss_ppm = static_cast<uint32_t>(std::llround(loss * 10'000));
  s.queue_bytes = static_cast<uint32_t>(std::llround(queue * 1024));
  RETURN_IF_ERROR(ValidateLinkShape(s).WithContext(where));
  return s;
}

struct LinkProfile {
  LinkShape down, up;
};

Result<LinkProfile> ParseProfile(const Json& obj, const std::string& where) {
  JsonObjectReader r(obj, where);
  const Json* down = r.Find("down");
  const Json* up = r.Find("up");
  RETURN_IF_ERROR(r.Finish());
  LinkProfile p;
  if (down != nullptr) {
    ASSIGN_OR_RETURN(p.down, ParseDirection(*down, r.PathOf("down")));
  }
  if (up != nullptr) {
    ASSIGN_OR_RETURN(p.up, ParseDirection(*up, r.PathOf("up")));
  }
  return p;
}

using Profiles = std::map<std::string, LinkProfile>;

// A link given by profile name or inline (the member at `where`); unshaped
// when absent.
Result<LinkProfile> LinkOf(const Json* link, const Profiles& profiles, const std::string& where) {
  if (link == nullptr) return LinkProfile{};
  if (link->is_string()) {
    auto it = profiles.find(link->get<std::string>());
    if (it == profiles.end()) {
      return InvalidArgument(where + ": no link profile '" + link->get<std::string>() + "'");
    }
    return it->second;
  }
  return ParseProfile(*link, where);
}

Status ParseSite(JsonObjectReader& r, bool default_nat, const Profiles& profiles, Scenario& s,
                 std::vector<std::string>& names) {
  const std::string& where = r.path();
  r.Require({"name"});
  std::string name;
  double count = 1, devices = 1;
  bool nat = default_nat;
  r.String("name", name);
  r.Number("count", count, 1, kMaxSites);
  r.Number("devices", devices, 0, kMaxDevicesPerSite);
  r.Bool("nat", nat);
  const Json* wan_link = r.Find("wan");
  const Json* lan_link = r.Find("lan");
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(LinkProfile wan, LinkOf(wan_link, profiles, r.PathOf("wan")));
  ASSIGN_OR_RETURN(LinkProfile lan, LinkOf(lan_link, profiles, r.PathOf("lan")));
  size_t placeholder = name.find("{i}");
  if (count > 1 && placeholder == std::string::npos) {
    return InvalidArgument(where + ": a group of sites needs '{i}' in its name");
  }
  for (int i = 1; i <= static_cast<int>(count); ++i) {
    std::string n = name;
    if (placeholder != std::string::npos) n.replace(placeholder, 3, std::to_string(i));
    if (n.empty() || n.find('/') != std::string::npos) {
      return InvalidArgument(where + ": site names must be non-empty and have no '/'");
    }
    if (std::find(names.begin(), names.end(), n) != names.end()) {
      return InvalidArgument(where + ": duplicate site name '" + n + "'");
    }
    names.push_back(n);
    s.topology.sites.push_back(
        SiteSpec{n, static_cast<int>(devices), nat, wan.down, wan.up, lan.down, lan.up});
  }
  return Status::Ok();
}

// A churn entry: what goes down (a device or a site) and when.
struct Outage {
  std::string target;
  double from_s = 0, to_s = 0;
};

// Members `target_key` (a name) and `when_key` ([from_s, to_s] within the
// time limit) of a churn entry.
Result<Outage> ReadOutage(JsonObjectReader& r, const char* target_key, const char* when_key,
                          double limit) {
  Outage o;
  r.String(target_key, o.target);
  const Json* when = r.Find(when_key);
  RETURN_IF_ERROR(r.status());
  const std::string where = r.PathOf(when_key);
  if (when == nullptr || !when->is_array() || when->size() != 2 || !(*when)[0].is_number() ||
      !(*when)[1].is_number()) {
    return InvalidArgument(where + ": must be [from_s, to_s]");
  }
  o.from_s = (*when)[0].get<double>();
  o.to_s = (*when)[1].get<double>();
  if (!(o.from_s >= 0 && o.from_s < o.to_s && o.to_s <= limit)) {
    return InvalidArgument(where + ": needs 0 <= from < to <= time_limit_s");
  }
  return o;
}

int SiteIndex(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

// Uniform in [0, 1) from 53 random bits: the same on every platform.
double Uniform01(std::mt19937_64& rng) { return (rng() >> 11) * 0x1.0p-53; }

Status ExpandRandomChurn(JsonObjectReader& r, Scenario& s) {
  const double limit = s.time_limit_s;
  double fraction = 0, min_off = 1;
  r.Number("random_devices", fraction, 0, 1);
  r.Number("off_s_min", min_off, 1, limit);
  double max_off = min_off;
  r.Number("off_s_max", max_off, min_off, limit);
  // Starts spread over [0, start_s_max]: churn that meets the transfer.
  double start_max = limit;
  r.Number("start_s_max", start_max, 0, limit);
  RETURN_IF_ERROR(r.status());
  std::vector<std::pair<int, int>> devices;
  for (int i = 0; i < static_cast<int>(s.topology.sites.size()); ++i) {
    for (int j = 0; j < s.topology.sites[i].devices; ++j) devices.emplace_back(i, j);
  }
  std::mt19937_64 rng(s.seed);
  size_t pick = static_cast<size_t>(std::llround(fraction * devices.size()));
  for (size_t k = 0; k < pick; ++k) {  // partial Fisher-Yates: k distinct devices
    std::swap(devices[k], devices[k + rng() % (devices.size() - k)]);
    double length = min_off + (max_off - min_off) * Uniform01(rng);
    double from = std::min(start_max, limit - length) * Uniform01(rng);
    s.churn.push_back(
        {ChurnEvent::Kind::kDeviceOff, devices[k].first, devices[k].second, from, from + length});
  }
  return Status::Ok();
}

Status ParseDeviceOff(JsonObjectReader& r, const std::vector<std::string>& names, Scenario& s) {
  ASSIGN_OR_RETURN(Outage off, ReadOutage(r, "device", "off_s", s.time_limit_s));
  size_t slash = off.target.rfind('/');
  int site = slash == std::string::npos ? -1 : SiteIndex(names, off.target.substr(0, slash));
  int device = -1;
  if (site >= 0) {
    const std::string index = off.target.substr(slash + 1);
    bool digits =
        !index.empty() && index.size() < 4 &&
        std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) device = std::stoi(index);
  }
  if (site < 0 || device < 0 || device >= s.topology.sites[site].devices) {
    return InvalidArgument(r.path() + ": no device '" + off.target +
                           "' (write SITE/INDEX, from 0)");
  }
  s.churn.push_back({ChurnEvent::Kind::kDeviceOff, site, device, off.from_s, off.to_s});
  return Status::Ok();
}

Status ParseWanDown(JsonObjectReader& r, const std::vector<std::string>& names, Scenario& s) {
  ASSIGN_OR_RETURN(Outage down, ReadOutage(r, "site", "wan_down_s", s.time_limit_s));
  int site = SiteIndex(names, down.target);
  if (site < 0) return InvalidArgument(r.path() + ": no site '" + down.target + "'");
  s.churn.push_back({ChurnEvent::Kind::kWanDown, site, -1, down.from_s, down.to_s});
  return Status::Ok();
}

Status ParseChurnEvent(JsonObjectReader& r, const std::vector<std::string>& names, Scenario& s) {
  if (r.Find("random_devices") != nullptr) return ExpandRandomChurn(r, s);
  if (r.Find("device") != nullptr) return ParseDeviceOff(r, names, s);
  if (r.Find("site") != nullptr) return ParseWanDown(r, names, s);
  RETURN_IF_ERROR(r.status());
  return InvalidArgument(r.path() + ": a churn entry needs 'device', 'site' or 'random_devices'");
}

Status ParseRelease(JsonObjectReader& r, const std::string& base_dir, Scenario& s) {
  r.Require({"image"});
  std::string image, previous;
  r.String("image", image);
  r.String("previous", previous);
  r.Bool("health_fails", s.release.health_fails);
  RETURN_IF_ERROR(r.status());
  if (s.release.health_fails && previous.empty()) {
    return InvalidArgument(r.PathOf("health_fails") +
                           ": needs release.previous (a release to roll back to)");
  }
  auto resolve = [&](const std::string& p) {
    if (p.empty()) return p;
    return (std::filesystem::path(base_dir) / p).lexically_normal().string();
  };
  s.release.image = resolve(image);
  s.release.previous = resolve(previous);
  if (s.strategy == Strategy::kHttpDelta && previous.empty()) {
    return InvalidArgument("strategy http-delta needs release.previous");
  }
  return Status::Ok();
}

// "25%" or "2.5%": a percentage in [0, 100] with at most two decimals.
Result<double> ParsePercent(const std::string& text) {
  static const std::regex kPercent(R"(\d{1,3}(\.\d{1,2})?%)");
  double value = std::regex_match(text, kPercent) ? std::stod(text) : -1;
  if (value < 0 || value > 100) {
    return InvalidArgument("'" + text +
                           "' is not a percentage from 0% to 100% (at most two decimals)");
  }
  return value;
}

Status ParseRollout(JsonObjectReader& r, Scenario& s) {
  r.Require({"waves"});
  RolloutSpec rollout;
  double soak = 0, timeout = rollout.wave_timeout_s;
  rollout.max_failures_text = "5%";
  r.String("waves", rollout.waves_text);
  r.String("max_failures", rollout.max_failures_text);
  r.Number("soak_s", soak, 0, 7 * 86400);
  r.Number("wave_timeout_s", timeout, 1, 7 * 86400);
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(rollout.waves,
                   ParseWaveShares(rollout.waves_text).WithContext(r.PathOf("waves")));
  ASSIGN_OR_RETURN(rollout.max_failures,
                   ParsePercent(rollout.max_failures_text).WithContext(r.PathOf("max_failures")));
  rollout.soak_s = static_cast<uint32_t>(soak);
  rollout.wave_timeout_s = static_cast<uint32_t>(timeout);
  if (soak != rollout.soak_s || timeout != rollout.wave_timeout_s) {
    return InvalidArgument(r.path() + ": soak_s and wave_timeout_s are whole seconds");
  }
  if (s.release.previous.empty()) {
    return InvalidArgument(r.path() + ": needs release.previous (the release the waves leave)");
  }
  s.rollout = std::move(rollout);
  return Status::Ok();
}

Result<Profiles> ParseProfiles(JsonObjectReader& doc) {
  const Json* links = doc.Object("links");
  RETURN_IF_ERROR(doc.status());
  Profiles profiles;
  if (links == nullptr) return profiles;
  for (const auto& [name, value] : links->items()) {
    ASSIGN_OR_RETURN(profiles[name], ParseProfile(value, "links." + name));
  }
  return profiles;
}

Status ParseSites(JsonObjectReader& doc, const Profiles& profiles, Scenario& s,
                  std::vector<std::string>& names) {
  bool default_nat = true;
  doc.Bool("nat", default_nat);
  const Json* sites = doc.Array("sites");
  doc.Check(sites == nullptr || !sites->empty(), "sites", "must be a non-empty array");
  doc.Objects("sites", [&](JsonObjectReader& site) {
    return ParseSite(site, default_nat, profiles, s, names);
  });
  RETURN_IF_ERROR(doc.status());
  return ValidateTopologySpec(s.topology);
}

Status ParseChurn(JsonObjectReader& doc, const std::vector<std::string>& names, Scenario& s) {
  doc.Objects("churn", [&](JsonObjectReader& e) { return ParseChurnEvent(e, names, s); });
  RETURN_IF_ERROR(doc.status());
  std::stable_sort(s.churn.begin(), s.churn.end(), [](const ChurnEvent& a, const ChurnEvent& b) {
    return std::tie(a.from_s, a.site, a.device) < std::tie(b.from_s, b.site, b.device);
  });
  return Status::Ok();
}

Status ParseDocument(const Json& json, const std::string& base_dir, Scenario& s) {
  JsonObjectReader doc(json, "");
  doc.Require({"name", "time_limit_s", "release", "sites"});
  double seed = 1, limit = 0;
  std::string strategy;
  doc.String("name", s.name);
  doc.String("description", s.description);
  doc.Number("seed", seed, 0, 9007199254740991.0);
  doc.Number("time_limit_s", limit, 1, 7 * 86400);
  doc.String("strategy", strategy);
  const Json* cloud_link = doc.Find("cloud_link");
  RETURN_IF_ERROR(doc.status());
  s.seed = static_cast<uint64_t>(seed);
  s.time_limit_s = static_cast<uint32_t>(limit);
  ASSIGN_OR_RETURN(s.strategy, ParseStrategy(strategy));
  doc.Object("release", [&](JsonObjectReader& r) { return ParseRelease(r, base_dir, s); });
  doc.Object("rollout", [&](JsonObjectReader& r) { return ParseRollout(r, s); });
  RETURN_IF_ERROR(doc.status());
  ASSIGN_OR_RETURN(Profiles profiles, ParseProfiles(doc));
  ASSIGN_OR_RETURN(LinkProfile cloud, LinkOf(cloud_link, profiles, "cloud_link"));
  s.topology.cloud_down = cloud.down;
  s.topology.cloud_up = cloud.up;
  std::vector<std::string> names;
  RETURN_IF_ERROR(ParseSites(doc, profiles, s, names));
  RETURN_IF_ERROR(ParseChurn(doc, names, s));
  return doc.Finish();
}

}  // namespace

// to_json (nlohmann): a link shape and a site as the objects of their fields by
// their names.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LinkShape, rate_kbit, delay_us, jitter_us, loss_ppm, queue_bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SiteSpec, name, devices, nat, wan_down, wan_up, lan_down, lan_up)

Result<Strategy> ParseStrategy(const std::string& name) {
  if (name.empty()) return Strategy::kFlotilla;
  if (auto strategy = ValueOf(kStrategyNames, name)) return *strategy;
  return InvalidArgument("strategy '" + name + "' is not " + NameList(kStrategyNames));
}

std::string_view StrategyName(Strategy s) { return NameOf(kStrategyNames, s); }

Result<std::vector<double>> ParseWaveShares(const std::string& text) {
  std::vector<double> shares;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    ASSIGN_OR_RETURN(double share, ParsePercent(text.substr(start, comma - start)));
    if (share <= 0 || (!shares.empty() && share <= shares.back())) {
      return InvalidArgument("'" + text + "': shares must be above 0% and increase");
    }
    shares.push_back(share);
    start = comma + 1;
  }
  if (shares.size() > 20 || shares.back() != 100) {
    return InvalidArgument("'" + text + "': at most 20 shares, the last 100%");
  }
  return shares;
}

Result<Scenario> ParseScenario(std::string_view text, const std::string& base_dir) {
  ASSIGN_OR_RETURN(Json doc, ParseJsonStrict(text, JsonLimits{kMaxScenarioBytes, 16}));
  Scenario s;
  RETURN_IF_ERROR(ParseDocument(doc, base_dir, s));
  return s;
}

Result<Scenario> LoadScenario(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxScenarioBytes));
  std::string dir = std::filesystem::absolute(path).parent_path().string();
  return ParseScenario(text, dir).WithContext(path);
}

Json ScenarioToJson(const Scenario& s) {
  Json churn = Json::array();
  for (const ChurnEvent& e : s.churn) {
    churn.push_back({{"kind", e.kind == ChurnEvent::Kind::kDeviceOff ? "device-off" : "wan-down"},
                     {"site", e.site},
                     {"device", e.device},
                     {"from_s", e.from_s},
                     {"to_s", e.to_s}});
  }
  Json rollout = nullptr;
  if (s.rollout) {
    rollout = {{"waves", s.rollout->waves_text},
               {"max_failures", s.rollout->max_failures_text},
               {"soak_s", s.rollout->soak_s},
               {"wave_timeout_s", s.rollout->wave_timeout_s}};
  }
  return {{"name", s.name},
          {"description", s.description},
          {"seed", s.seed},
          {"time_limit_s", s.time_limit_s},
          {"strategy", StrategyName(s.strategy)},
          {"release",
           {{"image", s.release.image},
            {"previous", s.release.previous},
            {"health_fails", s.release.health_fails}}},
          {"rollout", rollout},
          {"cloud_down", s.topology.cloud_down},
          {"cloud_up", s.topology.cloud_up},
          {"sites", s.topology.sites},
          {"churn", churn}};
}

}  // namespace flotilla::sim
