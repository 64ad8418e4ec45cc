#include "tracker/service/dashboard.h"

#include <fmt/format.h>

#include <algorithm>
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
.muted{color:#6b7380}.failure{color:#a32020}
.state-halted,.state-aborted{background:#f6cfcf}.state-paused{background:#f7e7c4}
.state-completed{background:#cdebd3}
.rollout{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:.6em 1em;margin:.6em 0}
.reason{white-space:pre-wrap;margin:.3em 0}.waves{width:auto}
.stack{width:12em;height:.8em;background:#e3e6ea;border-radius:3px;display:flex;overflow:hidden}
.stack span{height:100%}.s-healthy{background:#3a9d5d}.s-soaking{background:#9fd4ae}
.s-failed{background:#d04a4a}.s-pending{background:#b8c0cc}
.differs .mark{color:#b42318;font-weight:bold}.why{display:block;font-size:.85em}
td.desired{min-width:16em}#devices td:nth-child(-n+2){white-space:nowrap}
)css";

}  // namespace

std::string Ago(int64_t now, int64_t then) {
  if (then <= 0) return "never";
  int64_t s = std::max<int64_t>(0, now - then);
  if (s < 120) return fmt::format("{} s ago", s);
  if (s < 7200) return fmt::format("{} min ago", s / 60);
  return fmt::format("{} h ago", s / 3600);
}

namespace {

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
                 fleet.devices_total, apps.size(), HumanBytes(fleet.bytes_from_peers), share,
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

// A share of `total` as a width in percent.
double Percent(uint64_t part, uint64_t total) {
  return total ? 100.0 * static_cast<double>(part) / static_cast<double>(total) : 0.0;
}

void RenderWave(const RolloutRow& r, size_t index, std::string& out) {
  const RolloutWaveRow& w = r.waves[index];
  fmt::format_to(std::back_inserter(out),
                 "<tr data-wave=\"{0}\"><td>{0}{1}</td><td class=\"num\">{2}</td>"
                 "<td class=\"num\">{3}</td><td><span class=\"stack\">"
                 "<span class=\"s-healthy\" style=\"width:{4:.1f}%\"></span>"
                 "<span class=\"s-soaking\" style=\"width:{5:.1f}%\"></span>"
                 "<span class=\"s-failed\" style=\"width:{6:.1f}%\"></span>"
                 "<span class=\"s-pending\" style=\"width:{7:.1f}%\"></span></span></td>"
                 "<td class=\"num healthy\">{8}</td><td class=\"num soaking\">{9}</td>"
                 "<td class=\"num failed\">{10}</td><td class=\"num pending\">{11}</td>"
                 "<td class=\"num silent\">{12}</td><td>{13}</td></tr>\n",
                 index + 1, index + 1 == r.current_wave ? " (current)" : "", HtmlEscape(w.share),
                 w.size, Percent(w.healthy, w.size), Percent(w.soaking, w.size),
                 Percent(w.failed, w.size), Percent(w.pending, w.size), w.healthy, w.soaking,
                 w.failed, w.pending, w.silent, w.started ? "started" : "waiting");
}

void RenderRollout(const RolloutRow& r, const DashboardContext& ctx, std::string& out) {
  fmt::format_to(std::back_inserter(out),
                 "<div class=\"rollout\" id=\"rollout-{0}\" data-rollout=\"{0}\">"
                 "<b>rollout {0}</b>: {1} release {2} over {3} "
                 "<span class=\"state state-{4}\">{4}</span> wave {5} of {6} "
                 "<span class=\"muted\">(soak {7} s, max failures {8} of a wave, wave timeout "
                 "{9} s; updated {10})</span>\n",
                 r.id, HtmlEscape(r.app), r.release,
                 r.group.empty() ? std::string("the fleet") : "group " + HtmlEscape(r.group),
                 HtmlEscape(r.state), r.current_wave, r.waves.size(), r.soak_s,
                 HtmlEscape(r.max_failures), r.wave_timeout_s, Ago(ctx.now_unix, r.updated_at));
  if (!r.reason.empty()) {
    fmt::format_to(std::back_inserter(out), "<p class=\"reason\">{}: {}</p>\n", HtmlEscape(r.state),
                   HtmlEscape(r.reason));
  }
  out +=
      "<table class=\"waves\"><tr><th>wave</th><th class=\"num\">share</th>"
      "<th class=\"num\">size</th><th>progress</th><th class=\"num\">healthy</th>"
      "<th class=\"num\">soaking</th><th class=\"num\">failed</th>"
      "<th class=\"num\">pending</th><th class=\"num\">silent</th><th></th></tr>\n";
  uint64_t failed = 0;
  for (size_t w = 0; w < r.waves.size(); ++w) {
    RenderWave(r, w, out);
    failed += r.waves[w].failed;
  }
  out += "</table>\n";
  if (r.failed_devices.empty()) {
    out += "</div>\n";
    return;
  }
  out += "<ul class=\"failed-devices\">\n";
  for (const RolloutFailedDevice& f : r.failed_devices) {
    fmt::format_to(std::back_inserter(out),
                   "<li data-device=\"{0}\"><b>{0}</b> (wave {1}): {2}</li>\n",
                   HtmlEscape(f.device), f.wave, HtmlEscape(f.failure));
  }
  out += "</ul>\n";
  if (failed > r.failed_devices.size()) {
    fmt::format_to(std::back_inserter(out),
                   "<p class=\"muted\">{} of {} failed devices shown; "
                   "<code>flotilla-tracker rollout status {}</code> lists every one</p>\n",
                   r.failed_devices.size(), failed, r.id);
  }
  out += "</div>\n";
}

void RenderRollouts(const FleetSnapshot& fleet, const DashboardContext& ctx, std::string& out) {
  out += "<h2>Rollouts</h2>\n<div id=\"rollouts\">\n";
  if (fleet.fleet_model_at == 0) {
    out +=
        "<p class=\"muted\" id=\"fleet-model\">rollouts and desired releases are being read; "
        "they show at a later refresh</p>\n</div>\n";
    return;
  }
  fmt::format_to(std::back_inserter(out),
                 "<p class=\"muted\" id=\"fleet-model\">rollouts and desired releases as read "
                 "{}</p>\n",
                 Ago(ctx.now_unix, fleet.fleet_model_at));
  for (const RolloutRow& r : fleet.rollouts) RenderRollout(r, ctx, out);
  if (fleet.rollouts.empty()) out += "<p class=\"muted\">none</p>\n";
  if (fleet.rollouts_total > fleet.rollouts.size()) {
    fmt::format_to(std::back_inserter(out),
                   "<p class=\"muted\" id=\"rollouts-shown\">the {} newest of {} rollouts; "
                   "<code>flotilla-tracker rollout status</code> lists every one</p>\n",
                   fleet.rollouts.size(), fleet.rollouts_total);
  }
  out += "</div>\n";
}

// Per app: the desired release and why, marked where the device reports
// another release (or another app) than the one desired.
void RenderDesired(const DeviceRow& d, std::string& out) {
  out += "<td class=\"desired\">";
  if (d.desired.empty()) out += "<span class=\"muted\">-</span>";
  for (const DesiredRow& want : d.desired) {
    const std::string release = want.release ? std::to_string(*want.release) : "none";
    // The device's latest report of this app, if it sent one.
    auto seen = std::find_if(d.apps.begin(), d.apps.end(),
                             [&](const AppStatusRow& a) { return a.app == want.app; });
    const bool runs_it = seen != d.apps.end();
    const bool differs = runs_it ? seen->release != release : want.release.has_value();
    fmt::format_to(std::back_inserter(out),
                   "<div class=\"desired-app{}\" data-app=\"{}\">{} <b>{}</b>",
                   differs ? " differs" : "", HtmlEscape(want.app), HtmlEscape(want.app), release);
    if (differs) {
      fmt::format_to(std::back_inserter(out),
                     " <span class=\"mark\" title=\"differs\">&#8800; {}</span>",
                     runs_it ? "runs " + HtmlEscape(seen->release)
                             : std::string(d.reported ? "no report of it" : "not reported"));
    }
    fmt::format_to(std::back_inserter(out), " <span class=\"muted why\">{}</span></div>",
                   HtmlEscape(want.reason));
  }
  out += "</td>";
}

void RenderDeviceRow(const DeviceRow& d, int64_t now, std::string& out) {
  const auto& r = d.report;
  const double pct = r.progress_total ? 100.0 * static_cast<double>(r.progress_done) /
                                            static_cast<double>(r.progress_total)
                                      : (d.reported && r.state == "running" ? 100.0 : 0.0);
  fmt::format_to(std::back_inserter(out),
                 "<tr data-device=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td>"
                 "<td><span class=\"state state-{4}\">{4}</span>",
                 HtmlEscape(d.identity.name), HtmlEscape(d.identity.site), HtmlEscape(r.app),
                 HtmlEscape(r.release), HtmlEscape(r.state));
  // The kind of failure the report names (verification, deploy, health, ...).
  if (!r.failure.empty()) {
    fmt::format_to(std::back_inserter(out), " <span class=\"failure\">{}</span>",
                   HtmlEscape(r.failure));
  }
  out += "</td>";
  RenderDesired(d, out);
  fmt::format_to(std::back_inserter(out),
                 "<td><span class=\"bar\"><span style=\"width:{0:.0f}%\"></span></span> "
                 "<span class=\"progress\">{0:.0f}%</span></td><td>{1}</td>"
                 "<td class=\"num\">{2}</td><td class=\"num\">{3}</td><td>{4}</td></tr>\n",
                 pct, HtmlEscape(d.reported ? r.health : ""), HumanBytes(r.bytes_from_peers),
                 HumanBytes(r.bytes_from_origin), Ago(now, d.last_seen));
}

// "devices 101-200 of 1234 (page 2 of 13, 100 a page)" with links.
void RenderPager(const FleetSnapshot& fleet, std::string& out) {
  const uint64_t per_page = kDashboardDevicesPerPage;
  const uint64_t pages = std::max<uint64_t>(1, (fleet.devices_total + per_page - 1) / per_page);
  const uint64_t page = fleet.devices_offset / per_page + 1;
  fmt::format_to(std::back_inserter(out), "<p id=\"devices-page\" class=\"muted\">");
  if (fleet.devices.empty()) {
    fmt::format_to(std::back_inserter(out), "no device on page {} of {} ({} devices)", page, pages,
                   fleet.devices_total);
  } else {
    fmt::format_to(std::back_inserter(out), "devices {}-{} of {} (page {} of {}, {} a page)",
                   fleet.devices_offset + 1, fleet.devices_offset + fleet.devices.size(),
                   fleet.devices_total, page, pages, per_page);
  }
  if (page > 1) {
    fmt::format_to(std::back_inserter(out), " <a rel=\"prev\" href=\"/?page={}\">previous</a>",
                   std::min(page - 1, pages));
  }
  if (page < pages) {
    fmt::format_to(std::back_inserter(out), " <a rel=\"next\" href=\"/?page={}\">next</a>",
                   page + 1);
  }
  out += "</p>\n";
}

void RenderDevices(const FleetSnapshot& fleet, const DashboardContext& ctx, std::string& out) {
  out +=
      "<h2>Devices</h2>\n<table id=\"devices\"><tr><th>device</th><th>site</th><th>app</th>"
      "<th>release</th><th>state</th><th>desired release (why)</th><th>progress</th>"
      "<th>health</th><th class=\"num\">from peers</th><th class=\"num\">from origin</th>"
      "<th>last report</th></tr>\n";
  for (const auto& d : fleet.devices) RenderDeviceRow(d, ctx.now_unix, out);
  if (fleet.devices_total == 0) {
    out += "<tr><td colspan=\"11\" class=\"muted\">no device enrolled</td></tr>\n";
  }
  out += "</table>\n";
  RenderPager(fleet, out);
}

void RenderGroups(const FleetSnapshot& fleet, std::string& out) {
  out +=
      "<h2>Groups</h2>\n<table id=\"groups\"><tr><th>group</th><th>selects</th>"
      "<th class=\"num\">devices</th><th>apps</th><th>pins</th><th>maintenance windows</th>"
      "</tr>\n";
  auto joined = [](const auto& items, const auto& text) {
    std::string s;
    for (const auto& item : items) s += (s.empty() ? "" : ", ") + HtmlEscape(text(item));
    return s;
  };
  auto same = [](const std::string& s) { return s; };
  for (const GroupRow& g : fleet.groups) {
    fmt::format_to(std::back_inserter(out),
                   "<tr data-group=\"{0}\"><td>{0}</td><td><code>{1}</code></td>"
                   "<td class=\"num\">{2}</td><td>{3}</td><td>{4}</td><td>{5}</td></tr>\n",
                   HtmlEscape(g.name), HtmlEscape(g.selector), g.devices, joined(g.apps, same),
                   joined(g.pins,
                          [](const auto& pin) {
                            return pin.first + " at release " + std::to_string(pin.second);
                          }),
                   g.windows.empty() ? "any time" : joined(g.windows, same));
  }
  if (fleet.groups.empty()) {
    out += fleet.fleet_model_at == 0
               ? "<tr><td colspan=\"6\" class=\"muted\">being read</td></tr>\n"
               : "<tr><td colspan=\"6\" class=\"muted\">no group</td></tr>\n";
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

namespace {

// Who is signed in, and the logout button (a form: no script).
void RenderSession(const DashboardContext& ctx, std::string& out) {
  if (ctx.signed_in.name.empty()) return;
  fmt::format_to(std::back_inserter(out),
                 "<form id=\"session\" method=\"post\" action=\"/logout\">signed in as "
                 "<span data-operator=\"{}\">{}</span> ({})",
                 HtmlEscape(ctx.signed_in.name), HtmlEscape(ctx.signed_in.name),
                 HtmlEscape(ctx.signed_in.role));
  if (ctx.logs_link) out += " · <a href=\"/logs\">device logs</a>";
  if (!ctx.csrf.empty()) {
    fmt::format_to(std::back_inserter(out),
                   " <input type=\"hidden\" name=\"csrf\" value=\"{}\">"
                   "<button type=\"submit\">log out</button>",
                   HtmlEscape(ctx.csrf));
  }
  out += "</form>\n";
}

// The newest audit entries (admins only; docs/operators.md).
void RenderAudit(const DashboardContext& ctx, std::string& out) {
  if (!ctx.audit) return;
  out += "<h2 id=\"audit\">Audit log</h2>\n";
  if (ctx.audit->empty()) {
    out += "<p>no entries</p>\n";
    return;
  }
  out +=
      "<table><tr><th>when</th><th>actor</th><th>action</th><th>target</th><th>outcome</th>"
      "<th>detail</th></tr>\n";
  for (const AuditEntry& e : *ctx.audit) {
    fmt::format_to(std::back_inserter(out),
                   "<tr data-audit=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                   "<td>{}</td></tr>\n",
                   e.id, Ago(ctx.now_unix, e.at), HtmlEscape(e.actor), HtmlEscape(e.action),
                   HtmlEscape(e.target), HtmlEscape(e.outcome), HtmlEscape(e.detail.dump()));
  }
  out += "</table>\n";
}

}  // namespace

std::string PageHead(std::string_view title, int refresh_s) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  if (refresh_s > 0) {
    fmt::format_to(std::back_inserter(out), "<meta http-equiv=\"refresh\" content=\"{}\">",
                   refresh_s);
  }
  fmt::format_to(std::back_inserter(out), "<title>{}</title><style>", HtmlEscape(title));
  out += kStyle;
  out += "</style></head><body>\n";
  return out;
}

std::string RenderDashboard(const FleetSnapshot& fleet, const DashboardContext& context) {
  std::string out = PageHead("flotilla fleet", 15);
  out += "<h1>flotilla fleet</h1>\n";
  RenderSession(context, out);
  RenderSummary(fleet, context, out);
  RenderRollouts(fleet, context, out);
  RenderReleases(fleet, context, out);
  RenderGroups(fleet, out);
  RenderDevices(fleet, context, out);
  RenderFailures(fleet, context, out);
  RenderAudit(context, out);
  out += "</body></html>\n";
  return out;
}

}  // namespace flotilla::tracker
