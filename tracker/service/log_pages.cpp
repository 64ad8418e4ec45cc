#include "tracker/service/log_pages.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

#include "tracker/service/dashboard.h"

namespace flotilla::tracker {
namespace {

// The windows the form offers (seconds; 0: the whole ring).
constexpr std::array<std::pair<int64_t, std::string_view>, 5> kWindows = {{
    {0, "everything the device holds"},
    {300, "the last 5 minutes"},
    {3600, "the last hour"},
    {6 * 3600, "the last 6 hours"},
    {24 * 3600, "the last 24 hours"},
}};

std::string WindowText(int64_t since_s) {
  for (const auto& [seconds, text] : kWindows) {
    if (seconds == since_s) return std::string(text);
  }
  return fmt::format("the last {} s", since_s);
}

std::string StateOf(const LogRequest& r, int64_t now) {
  if (r.uploaded_at != 0) return "answered " + Ago(now, r.uploaded_at);
  return "waiting for the device";
}

}  // namespace

std::string RenderLogsPage(const std::vector<LogRequest>& recent, const LogsPageContext& ctx) {
  std::string out = PageHead("flotilla: device logs", 0);
  out += "<h1>Device logs</h1>\n<p><a href=\"/\">fleet</a></p>\n";
  if (!ctx.message.empty()) {
    fmt::format_to(std::back_inserter(out), "<p id=\"message\" class=\"failure\">{}</p>\n",
                   HtmlEscape(ctx.message));
  }
  out +=
      "<form id=\"ask\" method=\"post\" action=\"/logs\">\n"
      "<p>The device uploads its app's recent log at its next contact (within seconds when it "
      "holds a notice request), with every secret value it holds replaced.</p>\n";
  fmt::format_to(std::back_inserter(out),
                 "<label>device <input name=\"device\" value=\"{}\" required></label>\n"
                 "<label>app <input name=\"app\" value=\"{}\" required></label>\n"
                 "<label>lines of <select name=\"since\">",
                 HtmlEscape(ctx.form.device), HtmlEscape(ctx.form.app));
  for (const auto& [seconds, text] : kWindows) {
    fmt::format_to(std::back_inserter(out), "<option value=\"{}\"{}>{}</option>", seconds,
                   seconds == ctx.form.since_s ? " selected" : "", text);
  }
  out += "</select></label>\n";
  if (!ctx.csrf.empty()) {
    fmt::format_to(std::back_inserter(out), "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
                   HtmlEscape(ctx.csrf));
  }
  out += "<button type=\"submit\">ask for the log</button>\n</form>\n";

  out += "<h2>Requests</h2>\n";
  if (recent.empty()) {
    out += "<p>none open (a request and its answer are kept 10 minutes)</p>\n";
  } else {
    out +=
        "<table id=\"requests\"><tr><th>request</th><th>device</th><th>app</th><th>lines of</th>"
        "<th>asked by</th><th>asked</th><th>state</th></tr>\n";
    for (const LogRequest& r : recent) {
      fmt::format_to(std::back_inserter(out),
                     "<tr data-request=\"{0}\"><td><a href=\"/logs/{0}\">{0}</a></td><td>{1}</td>"
                     "<td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td></tr>\n",
                     r.id, HtmlEscape(r.device_name.empty() ? r.device_id : r.device_name),
                     HtmlEscape(r.app), WindowText(r.since_s), HtmlEscape(r.requested_by),
                     Ago(ctx.now_unix, r.requested_at), StateOf(r, ctx.now_unix));
    }
    out += "</table>\n";
  }
  out += "</body></html>\n";
  return out;
}

std::string RenderLogPage(const LogRequest& r, std::string_view device_name, int64_t now_unix) {
  const bool waiting = r.uploaded_at == 0;
  std::string out = PageHead(fmt::format("flotilla: log of {} on {}", r.app, device_name),
                             waiting ? kLogPageRefreshS : 0);
  fmt::format_to(std::back_inserter(out),
                 "<h1>{} on {}</h1>\n<p><a href=\"/logs\">device logs</a> · <a href=\"/\">fleet</a>"
                 "</p>\n<p>request {}, {}, asked by {} {}: <span id=\"state\">{}</span></p>\n",
                 HtmlEscape(r.app), HtmlEscape(device_name), r.id, WindowText(r.since_s),
                 HtmlEscape(r.requested_by), Ago(now_unix, r.requested_at), StateOf(r, now_unix));
  if (waiting) {
    fmt::format_to(std::back_inserter(out),
                   "<p class=\"muted\">This page reloads every {} s until the device answers; the "
                   "request stays open until {} s from now.</p>\n",
                   kLogPageRefreshS, std::max<int64_t>(0, r.expires_at - now_unix));
  } else {
    out += "<pre id=\"log\" class=\"reason\">";
    out += HtmlEscape(r.log);
    out += "</pre>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace flotilla::tracker
