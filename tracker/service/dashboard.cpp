#include "tracker/service/dashboard.h"

#include <fmt/format.h>

#include <set>

namespace flotilla::tracker {
namespace {

constexpr std::string_view kStyle = R"css(
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2430;background:#f6f7f9}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{padding:.35em .6em;border-bottom:1px solid #e3e6ea;text-align:left;font-size:.9em}
th{background:#eef1f5}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;padding:.8em 1.2em;
border:1px solid #e3e6ea;border-radius:6px}.card b{display:block;font-size:1.4em}
.state{padding:.1em .5em;border-radius:3px;font-size:.85em;background:#e3e6ea}
.state-running{background:#cdebd3}.state-failed,.state-rolled_back{background:#f6cfcf}
.state-downloading,.state-verifying,.state-deploying{background:#d6e4f7}
.bar{width:8em;height:.7em;background:#e3e6ea;border-radius:3px;display:inline-block}
.bar span{display:block;height:100%;background:#3b82c4;border-radius:3px}
.muted{color:#6b7380}
)css";

std::string Ago(int64_t now, int64_t then) {
  if (then <= 0) return "never";
  int64_t s = std::max<int64_t>(0, now - then);
  if (s < 120) return fmt::format("{} s ago", s);
  if (s < 7200) return fmt::format("{} min ago", s / 60);
  return fmt::format("{} h ago", s / 3600);
}

void RenderSummary(const FleetSnapshot& fleet, const DashboardContext& ctx, std::string& out) {
  const uint64_t total = fleet.bytes_from_peers + fleet.bytes_from_origin;
  const double share = total ? 100.0 * static_cast<double>(fleet.bytes_from_peers) / total : 0;
  std::set<std::string> apps;
  for (const auto& r : fleet.releases) apps.insert(r.app);
  fmt::format_to(std::back_inserter(out),
                 "<div class=\"cards\">"
                 "<div class=\"card\" id=\"devices-count\"><b>{}</b>devices</div>"
                 "<div class=\"card\" id=\"apps-count\"><b>{}</b>apps</div>"
                 "<div class=\"card\" id=\"bytes-saved\"><b>{}</b>saved by peer sharing "
                 "({:.1f}% of {})</div>"
                 "<div class=\"card\"><b>{}</b>from the origin</div>"
                 "<div class=\"card\"><b>{} / {}</b>swarms / peers</div></div>\n",
                 fleet.devices.size(), apps.size(), HumanBytes(fleet.bytes_from_peers), share,
                 HumanBytes(total), HumanBytes(fleet.bytes_from_origin), ctx.swarms, ctx.peers);
}

void RenderReleases(const FleetSnapshot& fleet, const DashboardContext& ctx, std::string& out) {
  out +=
      "<h2>Apps and releases</h2>\n<table id=\"releases\"><tr><th>app</th><th>release</th>"
      "<th>published</th><th class=\"num\">devices on it</th></tr>\n";
  for (const auto& r : fleet.releases) {
    fmt::format_to(std::back_inserter(out),
                   "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
                   HtmlEscape(r.app), HtmlEscape(r.release),
                   r.published_at ? Ago(ctx.now_unix, r.published_at) : "reported by devices",
                   r.devices);
  }
  if (fleet.releases.empty()) out += "<tr><td colspan=\"4\" class=\"muted\">none yet</td></tr>\n";
  out += "</table>\n";
}

void RenderDeviceRow(const DeviceRow& d, int64_t now, std::string& out) {
  const auto& r = d.report;
  const double pct = r.progress_total ? 100.0 * static_cast<double>(r.progress_done) /
                                            static_cast<double>(r.progress_total)
                                      : (d.reported && r.state == "running" ? 100.0 : 0.0);
  fmt::format_to(std::back_inserter(out),
                 "<tr data-device=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td>"
                 "<td><span class=\"state state-{4}\">{4}</span></td>"
                 "<td><span class=\"bar\"><span style=\"width:{5:.0f}%\"></span></span> "
                 "<span class=\"progress\">{5:.0f}%</span></td><td>{6}</td>"
                 "<td class=\"num\">{7}</td><td class=\"num\">{8}</td><td>{9}</td></tr>\n",
                 HtmlEscape(d.identity.name), HtmlEscape(d.identity.site), HtmlEscape(r.app),
                 HtmlEscape(r.release), HtmlEscape(r.state), pct,
                 HtmlEscape(d.reported ? r.health : ""), HumanBytes(r.bytes_from_peers),
                 HumanBytes(r.bytes_from_origin), Ago(now, d.last_seen));
}

void RenderDevices(const FleetSnapshot& fleet, const DashboardContext& ctx, std::string& out) {
  out +=
      "<h2>Devices</h2>\n<table id=\"devices\"><tr><th>device</th><th>site</th><th>app</th>"
      "<th>release</th><th>state</th><th>progress</th><th>health</th>"
      "<th class=\"num\">from peers</th><th class=\"num\">from origin</th>"
      "<th>last report</th></tr>\n";
  for (const auto& d : fleet.devices) RenderDeviceRow(d, ctx.now_unix, out);
  if (fleet.devices.empty()) {
    out += "<tr><td colspan=\"10\" class=\"muted\">no device enrolled</td></tr>\n";
  }
  out += "</table>\n";
}

void RenderFailures(const FleetSnapshot& fleet, const DashboardContext& ctx, std::string& out) {
  out +=
      "<h2>Recent failures</h2>\n<table id=\"failures\"><tr><th>when</th><th>device</th>"
      "<th>app</th><th>release</th><th>error</th></tr>\n";
  for (const auto& f : fleet.failures) {
    fmt::format_to(std::back_inserter(out),
                   "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                   Ago(ctx.now_unix, f.at), HtmlEscape(f.device_name), HtmlEscape(f.app),
                   HtmlEscape(f.release), HtmlEscape(f.message));
  }
  if (fleet.failures.empty()) out += "<tr><td colspan=\"5\" class=\"muted\">none</td></tr>\n";
  out += "</table>\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string RenderDashboard(const FleetSnapshot& fleet, const DashboardContext& context) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"15\">"
      "<title>flotilla fleet</title><style>";
  out += kStyle;
  out += "</style></head><body>\n<h1>flotilla fleet</h1>\n";
  RenderSummary(fleet, context, out);
  RenderReleases(fleet, context, out);
  RenderDevices(fleet, context, out);
  RenderFailures(fleet, context, out);
  out += "</body></html>\n";
  return out;
}

}  // namespace flotilla::tracker
