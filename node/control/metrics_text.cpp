#include "node/control/metrics_text.h"

#include <cmath>
#include <functional>
#include <vector>

#include "core/prometheus_text.h"

namespace flotilla::node {
namespace {

void RenderNode(std::string& out, const NodeView& v) {
  MetricFamily(out, "flotilla_node_info", "gauge",
               "Always 1; labels: device, site, transfer mode, flotilla version")
      .Sample({{"device", v.device_name},
               {"site", v.site},
               {"transfer_mode", v.transfer_mode},
               {"version", v.version}},
              1);
  MetricFamily(out, "flotilla_node_enrolled", "gauge", "1 when the node holds fleet credentials")
      .Sample({}, v.enrolled ? 1 : 0);
  MetricFamily(out, "flotilla_node_last_refresh_timestamp_seconds", "gauge",
               "Unix time of the last successful metadata refresh (0: never)")
      .Sample({}, v.last_refresh_unix);
  MetricFamily refreshes(out, "flotilla_node_refreshes_total", "counter",
                         "Metadata refreshes since the daemon started, by result");
  refreshes.Sample({{"result", "ok"}}, v.refreshes_ok);
  refreshes.Sample({{"result", "failed"}}, v.refreshes_failed);
  MetricFamily deploys(out, "flotilla_node_deploys_total", "counter",
                       "Release deployments since the daemon started, by result (failed: rolled "
                       "back or failed before the switch)");
  deploys.Sample({{"result", "ok"}}, v.deploys_ok);
  deploys.Sample({{"result", "failed"}}, v.deploys_failed);
  MetricFamily(out, "flotilla_node_hash_failures_total", "counter",
               "Pieces or artifacts that failed hash verification")
      .Sample({}, v.hash_failures);
  MetricFamily(out, "flotilla_node_peers_banned_total", "counter",
               "Peers banned for an artifact after sending data that failed verification")
      .Sample({}, v.peers_banned);
  MetricFamily(out, "flotilla_node_bytes_wasted_total", "counter",
               "Received bytes that failed verification")
      .Sample({}, v.bytes_wasted);
  MetricFamily(out, "flotilla_node_disk_free_bytes", "gauge",
               "Free bytes of the data directory's filesystem")
      .Sample({}, v.disk_free_bytes);
  MetricFamily(out, "flotilla_node_store_bytes", "gauge",
               "Bytes of layers and artifacts the node keeps")
      .Sample({}, v.store_bytes);
}

// A per-app family whose value is one member of AppView.
template <typename Value>
void PerApp(std::string& out, const NodeView& v, std::string_view name, std::string_view type,
            std::string_view help, const std::function<Value(const AppView&)>& value) {
  MetricFamily family(out, name, type, help);
  for (const auto& a : v.apps) family.Sample({{"app", a.name}}, value(a));
}

void RenderApps(std::string& out, const NodeView& v) {
  using U = uint64_t;
  PerApp<U>(out, v, "flotilla_node_app_running_release", "gauge",
            "Release the runtime runs (0: none)", [](auto& a) { return a.running_release; });
  PerApp<U>(out, v, "flotilla_node_app_previous_release", "gauge",
            "Release kept for rollback (0: none)", [](auto& a) { return a.previous_release; });
  PerApp<U>(out, v, "flotilla_node_app_ready_release", "gauge",
            "Newest release whose layers are all verified (0: none)",
            [](auto& a) { return a.ready_release; });
  PerApp<U>(out, v, "flotilla_node_app_target_release", "gauge", "Release being fetched (0: none)",
            [](auto& a) { return a.target_release; });
  PerApp<U>(out, v, "flotilla_node_app_transfer_bytes_done", "gauge",
            "Bytes of the target release fetched so far", [](auto& a) { return a.bytes_done; });
  PerApp<U>(out, v, "flotilla_node_app_transfer_bytes_total", "gauge",
            "Bytes of the target release to fetch", [](auto& a) { return a.bytes_total; });
  PerApp<double>(out, v, "flotilla_node_app_transfer_rate_bytes_per_second", "gauge",
                 "Download rate of the target release over the last few seconds", [](auto& a) {
                   return std::isfinite(a.rate_bytes_per_s) ? a.rate_bytes_per_s : 0.0;
                 });
  PerApp<U>(out, v, "flotilla_node_app_peers", "gauge", "Peers connected for the target release",
            [](auto& a) { return U{a.peers}; });
  PerApp<U>(out, v, "flotilla_node_app_container_restarts", "gauge",
            "Restarts of the app's current container", [](auto& a) { return U{a.restarts}; });
  PerApp<U>(out, v, "flotilla_node_app_bytes_from_peers_total", "counter",
            "Bytes of the current or last release taken from peers (restarts at 0 with each "
            "release)",
            [](auto& a) { return a.bytes_from_peers; });
  PerApp<U>(out, v, "flotilla_node_app_bytes_from_origin_total", "counter",
            "Bytes of the current or last release taken from the origin (restarts at 0 with "
            "each release)",
            [](auto& a) { return a.bytes_from_origin; });
  MetricFamily phase(out, "flotilla_node_app_phase", "gauge",
                     "1 for the app's current phase, 0 for the others");
  for (const auto& a : v.apps) {
    bool known = false;
    for (std::string_view p : kAppPhases) {
      known = known || p == a.phase;
      phase.Sample({{"app", a.name}, {"phase", p}}, p == a.phase ? 1 : 0);
    }
    if (!known) phase.Sample({{"app", a.name}, {"phase", a.phase}}, 1);
  }
  MetricFamily container(out, "flotilla_node_app_container_state", "gauge",
                         "Always 1; label state: the runtime's state of the app's container");
  for (const auto& a : v.apps) container.Sample({{"app", a.name}, {"state", a.container_state}}, 1);
}

}  // namespace

std::string RenderMetrics(const NodeView& view) {
  std::string out;
  RenderNode(out, view);
  RenderApps(out, view);
  return out;
}

}  // namespace flotilla::node
