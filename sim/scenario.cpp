#include "sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "core/file_io.h"

namespace flotilla::sim {
namespace {

using Keys = std::initializer_list<std::string_view>;

Status OnlyKeys(const Json& obj, const std::string& where, Keys allowed) {
  if (!obj.is_object()) return InvalidArgument(where + ": expected an object");
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return InvalidArgument(where + ": unknown key '" + key + "'");
    }
  }
  return Status::Ok();
}

// A number within [min, max]; `fallback` when absent.
Result<double> Number(const Json& obj, const char* key, const std::string& where, double fallback,
                      double min, double max) {
  if (!obj.contains(key)) return fallback;
  const Json& v = obj[key];
  if (!v.is_number()) return InvalidArgument(where + ": '" + key + "' must be a number");
  double d = v.get<double>();
  if (!(d >= min && d <= max)) {
    return InvalidArgument(where + ": '" + key + "' must be within [" + Json(min).dump() + ", " +
                           Json(max).dump() + "]");
  }
  return d;
}

Result<std::string> String(const Json& obj, const char* key, const std::string& where,
                           bool required) {
  if (!obj.contains(key)) {
    if (required) return InvalidArgument(where + ": '" + key + "' is required");
    return std::string();
  }
  if (!obj[key].is_string()) return InvalidArgument(where + ": '" + key + "' must be a string");
  return obj[key].get<std::string>();
}

Result<bool> Bool(const Json& obj, const char* key, const std::string& where, bool fallback) {
  if (!obj.contains(key)) return fallback;
  if (!obj[key].is_boolean())
    return InvalidArgument(where + ": '" + key + "' must be true or false");
  return obj[key].get<bool>();
}

Result<LinkShape> ParseDirection(const Json& obj, const std::string& where) {
  RETURN_IF_ERROR(
      OnlyKeys(obj, where, {"rate_kbit", "delay_ms", "jitter_ms", "loss_percent", "queue_kb"}));
  LinkShape s;
  ASSIGN_OR_RETURN(double rate, Number(obj, "rate_kbit", where, 0, 0, 10'000'000));
  ASSIGN_OR_RETURN(double delay, Number(obj, "delay_ms", where, 0, 0, 10'000));
  ASSIGN_OR_RETURN(double jitter, Number(obj, "jitter_ms", where, 0, 0, 10'000));
  ASSIGN_OR_RETURN(double loss, Number(obj, "loss_percent", where, 0, 0, 99.9999));
  ASSIGN_OR_RETURN(double queue, Number(obj, "queue_kb", where, 0, 0, 65536));
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
  RETURN_IF_ERROR(OnlyKeys(obj, where, {"down", "up"}));
  LinkProfile p;
  if (obj.contains("down")) {
    ASSIGN_OR_RETURN(p.down, ParseDirection(obj["down"], where + ".down"));
  }
  if (obj.contains("up")) {
    ASSIGN_OR_RETURN(p.up, ParseDirection(obj["up"], where + ".up"));
  }
  return p;
}

using Profiles = std::map<std::string, LinkProfile>;

// A link given by profile name or inline; unshaped when absent.
Result<LinkProfile> LinkOf(const Json& obj, const char* key, const Profiles& profiles,
                           const std::string& where) {
  if (!obj.contains(key)) return LinkProfile{};
  const Json& v = obj[key];
  if (v.is_string()) {
    auto it = profiles.find(v.get<std::string>());
    if (it == profiles.end()) {
      return InvalidArgument(where + ": no link profile '" + v.get<std::string>() + "'");
    }
    return it->second;
  }
  return ParseProfile(v, where + "." + key);
}

Status ParseSites(const Json& doc, const Profiles& profiles, Scenario& s,
                  std::vector<std::string>& names) {
  if (!doc.contains("sites") || !doc["sites"].is_array() || doc["sites"].empty()) {
    return InvalidArgument("'sites' must be a non-empty array");
  }
  ASSIGN_OR_RETURN(bool default_nat, Bool(doc, "nat", "scenario", true));
  for (size_t k = 0; k < doc["sites"].size(); ++k) {
    const Json& site = doc["sites"][k];
    const std::string where = "sites[" + std::to_string(k) + "]";
    RETURN_IF_ERROR(OnlyKeys(site, where, {"name", "count", "devices", "wan", "lan", "nat"}));
    ASSIGN_OR_RETURN(std::string name, String(site, "name", where, true));
    ASSIGN_OR_RETURN(double count, Number(site, "count", where, 1, 1, kMaxSites));
    ASSIGN_OR_RETURN(double devices, Number(site, "devices", where, 1, 0, kMaxDevicesPerSite));
    ASSIGN_OR_RETURN(LinkProfile wan, LinkOf(site, "wan", profiles, where));
    ASSIGN_OR_RETURN(LinkProfile lan, LinkOf(site, "lan", profiles, where));
    ASSIGN_OR_RETURN(bool nat, Bool(site, "nat", where, default_nat));
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
  }
  return ValidateTopologySpec(s.topology);
}

// [from, to] within the time limit.
Result<std::pair<double, double>> Interval(const Json& obj, const char* key,
                                           const std::string& where, double limit) {
  const Json& v = obj[key];
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number()) {
    return InvalidArgument(where + ": '" + key + "' must be [from_s, to_s]");
  }
  double from = v[0].get<double>(), to = v[1].get<double>();
  if (!(from >= 0 && from < to && to <= limit)) {
    return InvalidArgument(where + ": '" + key + "' needs 0 <= from < to <= time_limit_s");
  }
  return std::make_pair(from, to);
}

int SiteIndex(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

// Uniform in [0, 1) from 53 random bits: the same on every platform.
double Uniform01(std::mt19937_64& rng) { return (rng() >> 11) * 0x1.0p-53; }

Status ExpandRandomChurn(const Json& e, const std::string& where, Scenario& s) {
  RETURN_IF_ERROR(OnlyKeys(e, where, {"random_devices", "off_s_min", "off_s_max", "start_s_max"}));
  const double limit = s.time_limit_s;
  ASSIGN_OR_RETURN(double fraction, Number(e, "random_devices", where, 0, 0, 1));
  ASSIGN_OR_RETURN(double min_off, Number(e, "off_s_min", where, 1, 1, limit));
  ASSIGN_OR_RETURN(double max_off, Number(e, "off_s_max", where, min_off, min_off, limit));
  // Starts spread over [0, start_s_max]: churn that meets the transfer.
  ASSIGN_OR_RETURN(double start_max, Number(e, "start_s_max", where, limit, 0, limit));
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

Status ParseChurnEvent(const Json& e, const std::string& where,
                       const std::vector<std::string>& names, Scenario& s) {
  if (e.contains("random_devices")) return ExpandRandomChurn(e, where, s);
  if (e.contains("device")) {
    RETURN_IF_ERROR(OnlyKeys(e, where, {"device", "off_s"}));
    ASSIGN_OR_RETURN(std::string ref, String(e, "device", where, true));
    size_t slash = ref.rfind('/');
    int site = slash == std::string::npos ? -1 : SiteIndex(names, ref.substr(0, slash));
    int device = -1;
    if (site >= 0) {
      const std::string index = ref.substr(slash + 1);
      bool digits =
          !index.empty() && index.size() < 4 &&
          std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (digits) device = std::stoi(index);
    }
    if (site < 0 || device < 0 || device >= s.topology.sites[site].devices) {
      return InvalidArgument(where + ": no device '" + ref + "' (write SITE/INDEX, from 0)");
    }
    ASSIGN_OR_RETURN(auto off, Interval(e, "off_s", where, s.time_limit_s));
    s.churn.push_back({ChurnEvent::Kind::kDeviceOff, site, device, off.first, off.second});
    return Status::Ok();
  }
  if (e.contains("site")) {
    RETURN_IF_ERROR(OnlyKeys(e, where, {"site", "wan_down_s"}));
    ASSIGN_OR_RETURN(std::string name, String(e, "site", where, true));
    int site = SiteIndex(names, name);
    if (site < 0) return InvalidArgument(where + ": no site '" + name + "'");
    ASSIGN_OR_RETURN(auto down, Interval(e, "wan_down_s", where, s.time_limit_s));
    s.churn.push_back({ChurnEvent::Kind::kWanDown, site, -1, down.first, down.second});
    return Status::Ok();
  }
  return InvalidArgument(where + ": a churn entry needs 'device', 'site' or 'random_devices'");
}

Status ParseChurn(const Json& doc, const std::vector<std::string>& names, Scenario& s) {
  if (!doc.contains("churn")) return Status::Ok();
  if (!doc["churn"].is_array()) return InvalidArgument("'churn' must be an array");
  for (size_t k = 0; k < doc["churn"].size(); ++k) {
    RETURN_IF_ERROR(ParseChurnEvent(doc["churn"][k], "churn[" + std::to_string(k) + "]", names, s));
  }
  std::stable_sort(s.churn.begin(), s.churn.end(), [](const ChurnEvent& a, const ChurnEvent& b) {
    return std::tie(a.from_s, a.site, a.device) < std::tie(b.from_s, b.site, b.device);
  });
  return Status::Ok();
}

Status ParseRelease(const Json& doc, const std::string& base_dir, Scenario& s) {
  if (!doc.contains("release")) return InvalidArgument("'release' is required");
  const Json& r = doc["release"];
  RETURN_IF_ERROR(OnlyKeys(r, "release", {"image", "previous"}));
  ASSIGN_OR_RETURN(std::string image, String(r, "image", "release", true));
  ASSIGN_OR_RETURN(std::string previous, String(r, "previous", "release", false));
  auto resolve = [&](const std::string& p) {
    if (p.empty()) return p;
    return (std::filesystem::path(base_dir) / p).lexically_normal().string();
  };
  s.release = Release{resolve(image), resolve(previous)};
  if (s.strategy == Strategy::kHttpDelta && previous.empty()) {
    return InvalidArgument("strategy http-delta needs release.previous");
  }
  return Status::Ok();
}

Result<Profiles> ParseProfiles(const Json& doc) {
  Profiles profiles;
  if (!doc.contains("links")) return profiles;
  if (!doc["links"].is_object()) return InvalidArgument("'links' must be an object");
  for (const auto& [name, value] : doc["links"].items()) {
    ASSIGN_OR_RETURN(profiles[name], ParseProfile(value, "links." + name));
  }
  return profiles;
}

Status ParseDocument(const Json& doc, const std::string& base_dir, Scenario& s) {
  RETURN_IF_ERROR(OnlyKeys(doc, "scenario",
                           {"name", "description", "seed", "time_limit_s", "strategy", "release",
                            "links", "cloud_link", "nat", "sites", "churn"}));
  ASSIGN_OR_RETURN(s.name, String(doc, "name", "scenario", true));
  ASSIGN_OR_RETURN(s.description, String(doc, "description", "scenario", false));
  ASSIGN_OR_RETURN(double seed, Number(doc, "seed", "scenario", 1, 0, 9007199254740991.0));
  ASSIGN_OR_RETURN(double limit, Number(doc, "time_limit_s", "scenario", 0, 1, 7 * 86400));
  if (!doc.contains("time_limit_s")) return InvalidArgument("'time_limit_s' is required");
  s.seed = static_cast<uint64_t>(seed);
  s.time_limit_s = static_cast<uint32_t>(limit);
  ASSIGN_OR_RETURN(std::string strategy, String(doc, "strategy", "scenario", false));
  ASSIGN_OR_RETURN(s.strategy, ParseStrategy(strategy));
  RETURN_IF_ERROR(ParseRelease(doc, base_dir, s));
  ASSIGN_OR_RETURN(Profiles profiles, ParseProfiles(doc));
  ASSIGN_OR_RETURN(LinkProfile cloud, LinkOf(doc, "cloud_link", profiles, "scenario"));
  s.topology.cloud_down = cloud.down;
  s.topology.cloud_up = cloud.up;
  std::vector<std::string> names;
  RETURN_IF_ERROR(ParseSites(doc, profiles, s, names));
  return ParseChurn(doc, names, s);
}

Json ShapeToJson(const LinkShape& l) {
  return {{"rate_kbit", l.rate_kbit},
          {"delay_us", l.delay_us},
          {"jitter_us", l.jitter_us},
          {"loss_ppm", l.loss_ppm},
          {"queue_bytes", l.queue_bytes}};
}

}  // namespace

Result<Strategy> ParseStrategy(const std::string& name) {
  if (name == "flotilla" || name.empty()) return Strategy::kFlotilla;
  if (name == "http-full") return Strategy::kHttpFull;
  if (name == "http-delta") return Strategy::kHttpDelta;
  return InvalidArgument("strategy '" + name + "' is not flotilla, http-full or http-delta");
}

std::string_view StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kFlotilla:
      return "flotilla";
    case Strategy::kHttpFull:
      return "http-full";
    case Strategy::kHttpDelta:
      return "http-delta";
  }
  return "?";
}

Result<Scenario> ParseScenario(std::string_view text, const std::string& base_dir) {
  ASSIGN_OR_RETURN(Json doc, ParseJsonStrict(text, JsonLimits{kMaxScenarioBytes, 16}));
  Scenario s;
  try {
    RETURN_IF_ERROR(ParseDocument(doc, base_dir, s));
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("scenario: ") + e.what());
  }
  return s;
}

Result<Scenario> LoadScenario(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxScenarioBytes));
  std::string dir = std::filesystem::absolute(path).parent_path().string();
  return ParseScenario(text, dir).WithContext(path);
}

Json ScenarioToJson(const Scenario& s) {
  Json sites = Json::array();
  for (const SiteSpec& site : s.topology.sites) {
    sites.push_back({{"name", site.name},
                     {"devices", site.devices},
                     {"nat", site.nat},
                     {"wan_down", ShapeToJson(site.wan_down)},
                     {"wan_up", ShapeToJson(site.wan_up)},
                     {"lan_down", ShapeToJson(site.lan_down)},
                     {"lan_up", ShapeToJson(site.lan_up)}});
  }
  Json churn = Json::array();
  for (const ChurnEvent& e : s.churn) {
    churn.push_back({{"kind", e.kind == ChurnEvent::Kind::kDeviceOff ? "device-off" : "wan-down"},
                     {"site", e.site},
                     {"device", e.device},
                     {"from_s", e.from_s},
                     {"to_s", e.to_s}});
  }
  return {{"name", s.name},
          {"description", s.description},
          {"seed", s.seed},
          {"time_limit_s", s.time_limit_s},
          {"strategy", StrategyName(s.strategy)},
          {"release", {{"image", s.release.image}, {"previous", s.release.previous}}},
          {"cloud_down", ShapeToJson(s.topology.cloud_down)},
          {"cloud_up", ShapeToJson(s.topology.cloud_up)},
          {"sites", sites},
          {"churn", churn}};
}

}  // namespace flotilla::sim
