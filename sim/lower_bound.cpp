#include "sim/lower_bound.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/file_io.h"

namespace flotilla::sim {
namespace {

namespace fs = std::filesystem;

constexpr double kInitialWindowSegments = 10;         // RFC 6928
constexpr double kSegmentPayload = 1448;              // TCP with timestamps, 1500 MTU
constexpr double kPayloadPerFrame = 1472.0 / 1514.0;  // UDP: the least header any transport has

std::set<std::string> LayersOf(const Json& release) {
  std::set<std::string> out;
  for (const Json& layer : release["image"].value("layers", Json::array())) {
    out.insert(layer.value("diff_id", ""));
  }
  return out;
}

// Round trip between a site's devices and the cloud: WAN both ways, the
// cloud link both ways (LAN delays count too: a device sits behind its port).
double SiteRttSeconds(const TopologySpec& t, const SiteSpec& site) {
  uint64_t us = site.wan_down.delay_us + site.wan_up.delay_us + t.cloud_down.delay_us +
                t.cloud_up.delay_us + site.lan_down.delay_us + site.lan_up.delay_us;
  return us / 1e6;
}

// When the device or its site's WAN is cut at some point before `floor_s`,
// it cannot have the release before the cut ends.
double ChurnHeldBack(const Scenario& s, int site, int device, double floor_s) {
  double earliest = floor_s;
  for (const ChurnEvent& e : s.churn) {
    bool hits = e.site == site && (e.kind == ChurnEvent::Kind::kWanDown || e.device == device);
    if (hits && e.from_s < earliest) earliest = std::max(earliest, e.to_s);
  }
  return earliest;
}

}  // namespace

Result<Json> ReadReleaseFile(const std::string& repo, const std::string& app, uint64_t version) {
  const std::string dir = repo + "/targets/apps/" + app;
  const std::string suffix = fmt::format(".release-{}.json", version);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename();
    if (name.size() <= suffix.size() || !name.ends_with(suffix)) continue;
    ASSIGN_OR_RETURN(Bytes text, ReadFileBounded(entry.path(), 16 << 20));
    Json doc = Json::parse(text.begin(), text.end(), nullptr, false);
    if (doc.is_discarded() || !doc.contains("flotilla") || !doc["flotilla"].is_object()) {
      return InvalidArgument("unreadable release file " + name);
    }
    return doc["flotilla"];
  }
  return NotFound(fmt::format("release {} of {} in {}", version, app, dir));
}

Result<uint64_t> MinimalReleaseBytes(const std::string& repo, const std::string& app,
                                     uint64_t version) {
  ASSIGN_OR_RETURN(Json release, ReadReleaseFile(repo, app, version));
  std::set<std::string> held;
  if (version > 1) {
    ASSIGN_OR_RETURN(Json previous, ReadReleaseFile(repo, app, version - 1));
    held = LayersOf(previous);
  }
  std::map<std::string, uint64_t> cheapest;  // layer -> smallest usable artifact
  for (const Json& a : release.value("artifacts", Json::array())) {
    const std::string layer = a.value("layer", "");
    bool usable = a.value("kind", "") == "full";
    if (a.value("kind", "") == "delta") {
      usable = true;
      for (const Json& base : a.value("bases", Json::array())) {
        usable = usable && base.is_string() && held.count(base.get<std::string>());
      }
    }
    if (!usable) continue;
    uint64_t length = a.value("length", uint64_t{0});
    auto [it, fresh] = cheapest.emplace(layer, length);
    if (!fresh) it->second = std::min(it->second, length);
  }
  uint64_t total = 0;
  for (const std::string& layer : LayersOf(release)) {
    if (held.count(layer)) continue;
    auto it = cheapest.find(layer);
    if (it == cheapest.end()) return InvalidArgument("release has no artifact for " + layer);
    total += it->second;
  }
  return total;
}

double DeliverySeconds(uint64_t bytes, double rtt_s, uint64_t rate_kbit) {
  double t = 2 * rtt_s;  // handshake; request out and the first window back
  double rate_bytes_s = rate_kbit == 0 ? INFINITY : rate_kbit * 1000.0 / 8 * kPayloadPerFrame;
  double left = static_cast<double>(bytes);
  double window = kInitialWindowSegments * kSegmentPayload;
  // The first window arrives with the reply; each further RTT brings the
  // doubled window, until a window takes longer than an RTT at the rate.
  while (left > 0) {
    double sent = std::min(left, window);
    if (rtt_s <= 0 || window / rate_bytes_s >= rtt_s) return t + left / rate_bytes_s;
    left -= sent;
    if (left <= 0) return t + sent / rate_bytes_s;
    t += rtt_s;
    window *= 2;
  }
  return t;
}

T95LowerBound ComputeT95LowerBound(const Scenario& s, uint64_t release_min_bytes) {
  T95LowerBound b;
  b.release_min_bytes = release_min_bytes;
  const TopologySpec& t = s.topology;
  int devices = 0, nat_sites = 0, open_sites = 0;
  for (const SiteSpec& site : t.sites) {
    devices += site.devices;
    (site.nat ? nat_sites : open_sites) += site.devices > 0;
    if (site.devices > 0) {
      b.site_wan_s = std::max(
          b.site_wan_s,
          DeliverySeconds(release_min_bytes, SiteRttSeconds(t, site), site.wan_down.rate_kbit));
    }
  }
  const uint64_t copies = nat_sites + (open_sites > 0 ? 1 : 0);
  if (t.cloud_up.rate_kbit > 0) {
    b.origin_s = copies * static_cast<double>(release_min_bytes) * 8 /
                 (t.cloud_up.rate_kbit * 1000.0 * kPayloadPerFrame);
  }
  const double floor_s = std::max(b.site_wan_s, b.origin_s);
  std::vector<double> earliest;
  for (size_t i = 0; i < t.sites.size(); ++i) {
    for (int j = 0; j < t.sites[i].devices; ++j) {
      earliest.push_back(ChurnHeldBack(s, static_cast<int>(i), j, floor_s));
    }
  }
  std::sort(earliest.begin(), earliest.end());
  size_t needed = static_cast<size_t>(std::ceil(0.95 * devices));
  double churn = needed > 0 && needed <= earliest.size() ? earliest[needed - 1] : 0;
  b.churn_s = churn > floor_s ? churn : 0;
  b.t95_s = std::max(floor_s, churn);
  b.binding = b.churn_s > 0               ? "churn"
              : b.origin_s > b.site_wan_s ? "origin uplink"
                                          : "site WAN downlink";
  return b;
}

}  // namespace flotilla::sim
