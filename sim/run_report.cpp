#include "sim/run_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/file_io.h"
#include "core/json_object_reader.h"
#include "sim/command.h"

namespace flotilla::sim {

// to_json (nlohmann): a site's result as the object of its fields by their names.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SiteResult, name, wan_rx_bytes, wan_tx_bytes)

namespace {

// The value below which `q` of `sorted` lies (nearest rank).
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return -1;
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

std::string Seconds(double s) { return s < 0 ? "-" : fmt::format("{:.1f} s", s); }

std::string Megabytes(uint64_t bytes) { return fmt::format("{:.2f} MB", bytes / 1e6); }

Json DeviceToJson(const DeviceResult& d) {
  Json j{{"name", d.name},
         {"site", d.site},
         {"completed", d.completed},
         {"state", d.state},
         {"traffic", d.traffic},
         {"reported",
          {{"from_peers", d.reported_from_peers}, {"from_origin", d.reported_from_origin}}},
         {"errors", d.errors}};
  j["completion_s"] = d.completed ? Json(d.completion_s) : Json(nullptr);
  if (d.wave > 0) {
    j["wave"] = d.wave;
    j["ran_release"] = d.ran_release;
    j["final"] = {
        {"release", d.final_release}, {"container", d.final_container}, {"health", d.final_health}};
  }
  return j;
}

// Reports are read back by `plot`; members it does not use are ignored.
constexpr double kAnyNumber = std::numeric_limits<double>::max();

void ReadDevice(JsonObjectReader& r, DeviceResult& d) {
  r.Require({"name", "site", "completed", "state", "errors", "traffic", "reported"});
  r.String("name", d.name);
  r.String("site", d.site);
  r.Bool("completed", d.completed);
  r.String("state", d.state);
  r.Strings("errors", d.errors);
  if (d.completed) r.Require({"completion_s"});
  r.Number("completion_s", d.completion_s, -kAnyNumber, kAnyNumber);
  r.Object("traffic", [&](JsonObjectReader& t) {
    t.Require({"rx_origin", "rx_lan", "rx_wan_peers", "tx_lan", "tx_wan"});
    t.Unsigned("rx_origin", d.traffic.rx_origin);
    t.Unsigned("rx_lan", d.traffic.rx_lan);
    t.Unsigned("rx_wan_peers", d.traffic.rx_wan_peers);
    t.Unsigned("tx_lan", d.traffic.tx_lan);
    t.Unsigned("tx_wan", d.traffic.tx_wan);
  });
  r.Int("wave", d.wave, 0, 20);
  r.Bool("ran_release", d.ran_release);
  r.Object("final", [&](JsonObjectReader& f) {
    f.Unsigned("release", d.final_release);
    f.String("container", d.final_container);
    f.String("health", d.final_health);
  });
  r.Object("reported", [&](JsonObjectReader& from) {
    from.Require({"from_peers", "from_origin"});
    from.Unsigned("from_peers", d.reported_from_peers);
    from.Unsigned("from_origin", d.reported_from_origin);
  });
}

void ReadOrigin(JsonObjectReader& r, RunReport& report) {
  r.Require({"egress_bytes", "timeline"});
  r.Unsigned("egress_bytes", report.origin_egress_bytes);
  const Json* timeline = r.Array("timeline");
  for (size_t i = 0; timeline != nullptr && i < timeline->size(); ++i) {
    const Json& point = (*timeline)[i];
    if (!point.is_array() || point.size() != 2 || !point[0].is_number() ||
        !point[1].is_number_unsigned()) {
      return r.Fail("timeline", "must hold [seconds, bytes] pairs");
    }
    report.origin_timeline.emplace_back(point[0].get<double>(), point[1].get<uint64_t>());
  }
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

ReportSummary Summarize(const RunReport& report) {
  ReportSummary s;
  s.devices = report.devices.size();
  std::vector<double> times;
  for (const DeviceResult& d : report.devices) {
    if (d.completed) times.push_back(d.completion_s);
  }
  std::sort(times.begin(), times.end());
  s.completed = times.size();
  s.p50_s = Quantile(times, 0.5);
  s.p95_s = Quantile(times, 0.95);
  s.max_s = times.empty() ? -1 : times.back();
  size_t needed = static_cast<size_t>(std::ceil(0.95 * s.devices));
  if (needed > 0 && times.size() >= needed) s.time_to_95pct_s = times[needed - 1];
  for (const SiteResult& site : report.sites) s.wan_rx_bytes += site.wan_rx_bytes;
  if (report.release_bytes > 0) {
    s.origin_copies = static_cast<double>(report.origin_egress_bytes) / report.release_bytes;
  }
  if (!report.rollout) return s;
  const std::vector<double>& started = report.rollout->wave_started_s;
  for (size_t w = 0; w < started.size(); ++w) {
    WaveSummary wave;
    wave.wave = static_cast<int>(w + 1);
    wave.started_s = started[w];
    std::vector<double> wave_times;
    for (const DeviceResult& d : report.devices) {
      if (d.wave != wave.wave) continue;
      ++wave.size;
      if (d.completed) wave_times.push_back(d.completion_s);
      wave.rx_origin += d.traffic.rx_origin;
      wave.rx_lan += d.traffic.rx_lan;
      wave.rx_wan_peers += d.traffic.rx_wan_peers;
    }
    std::sort(wave_times.begin(), wave_times.end());
    wave.completed = wave_times.size();
    size_t wave_needed = static_cast<size_t>(std::ceil(0.95 * wave.size));
    if (wave_needed > 0 && wave_times.size() >= wave_needed) {
      wave.t95_s = wave_times[wave_needed - 1];
    }
    s.waves.push_back(wave);
  }
  for (const DeviceResult& d : report.devices) {
    if (d.ran_release) s.ran_release.push_back(d.name);
    s.healthy_at_end += d.final_container == "running" && d.final_health == "healthy";
  }
  return s;
}

namespace {

Json RolloutToJson(const RunReport& report, const ReportSummary& s) {
  if (!report.rollout) return nullptr;
  const RolloutResult& r = *report.rollout;
  auto maybe = [](double v) { return v < 0 ? Json(nullptr) : Json(v); };
  Json waves = Json::array();
  for (const WaveSummary& w : s.waves) {
    waves.push_back({{"wave", w.wave},
                     {"size", w.size},
                     {"completed", w.completed},
                     {"started_s", maybe(w.started_s)},
                     {"t95_s", maybe(w.t95_s)},
                     {"rx_origin", w.rx_origin},
                     {"rx_lan", w.rx_lan},
                     {"rx_wan_peers", w.rx_wan_peers}});
  }
  Json started = Json::array();
  for (double t : r.wave_started_s) started.push_back(t);
  return {{"id", r.id},
          {"waves", r.waves},
          {"max_failures", r.max_failures},
          {"soak_s", r.soak_s},
          {"wave_timeout_s", r.wave_timeout_s},
          {"state", r.state},
          {"reason", r.reason},
          {"ended_s", maybe(r.ended_s)},
          {"wave_started_s", started},
          {"wave_results", waves},
          {"ran_release", s.ran_release},
          {"healthy_at_end", s.healthy_at_end},
          {"status", r.status}};
}

void ReadRollout(JsonObjectReader& r, RolloutResult& out) {
  r.Require({"id", "waves", "state", "wave_started_s"});
  r.Int("id", out.id);
  r.String("waves", out.waves);
  r.String("max_failures", out.max_failures);
  r.Unsigned("soak_s", out.soak_s);
  r.Unsigned("wave_timeout_s", out.wave_timeout_s);
  r.String("state", out.state);
  r.String("reason", out.reason);
  if (const Json* ended = r.Find("ended_s"); ended != nullptr && ended->is_number()) {
    out.ended_s = ended->get<double>();
  }
  const Json* started = r.Array("wave_started_s");
  for (size_t i = 0; started != nullptr && i < started->size(); ++i) {
    if (!(*started)[i].is_number()) return r.Fail("wave_started_s", "must hold numbers");
    out.wave_started_s.push_back((*started)[i].get<double>());
  }
  if (const Json* status = r.Find("status")) out.status = *status;
}

}  // namespace

Json RunReportToJson(const RunReport& report) {
  ReportSummary s = Summarize(report);
  Json devices = Json::array(), timeline = Json::array();
  for (const DeviceResult& d : report.devices) devices.push_back(DeviceToJson(d));
  for (const auto& [t, bytes] : report.origin_timeline) timeline.push_back(Json::array({t, bytes}));
  auto maybe = [](double v) { return v < 0 ? Json(nullptr) : Json(v); };
  return Json{
      {"scenario", report.scenario},
      {"strategy", report.strategy},
      {"seed", report.seed},
      {"time_limit_s", report.time_limit_s},
      {"release", report.release},
      {"release_bytes", report.release_bytes},
      {"duration_s", report.duration_s},
      {"ended_by", report.ended_by},
      {"summary",
       {{"devices", s.devices},
        {"completed", s.completed},
        {"p50_s", maybe(s.p50_s)},
        {"p95_s", maybe(s.p95_s)},
        {"max_s", maybe(s.max_s)},
        {"time_to_95pct_s", maybe(s.time_to_95pct_s)},
        {"wan_rx_bytes", s.wan_rx_bytes},
        {"origin_egress_bytes", report.origin_egress_bytes},
        {"origin_copies", s.origin_copies}}},
      {"devices", devices},
      {"sites", report.sites},
      {"origin", {{"egress_bytes", report.origin_egress_bytes}, {"timeline", timeline}}},
      {"lower_bound", report.lower_bound},
      {"node_origin_wait_s", report.origin_wait_s > 0 ? Json(report.origin_wait_s) : Json(nullptr)},
      {"rollout", RolloutToJson(report, s)}};
}

namespace {

// "T95 lower bound" line of the summary, or nothing without a bound.
std::string BoundLine(const RunReport& report, const ReportSummary& s) {
  const Json& b = report.lower_bound;
  if (!b.is_object() || !b.contains("t95_s")) return "";
  double bound = b["t95_s"].get<double>();
  std::string ratio = s.time_to_95pct_s > 0 && bound > 0
                          ? fmt::format("{:.1f}x the bound", s.time_to_95pct_s / bound)
                          : std::string("no T95 to compare");
  return fmt::format("  T95 lower bound     {} (binds: {}; {} B per site)  · T95 = {}\n",
                     Seconds(bound), b.value("binding", ""),
                     b.value("release_min_bytes", uint64_t{0}), ratio);
}

// The rollout's outcome and its waves, or nothing without a rollout.
std::string RolloutLines(const RunReport& report, const ReportSummary& s) {
  if (!report.rollout) return "";
  const RolloutResult& r = *report.rollout;
  std::string out =
      fmt::format("  rollout {}          waves {}, max failures {}, soak {} s: {}{}{}\n", r.id,
                  r.waves, r.max_failures, r.soak_s, r.state,
                  r.ended_s < 0 ? "" : fmt::format(" at {}", Seconds(r.ended_s)),
                  r.reason.empty() ? "" : " (" + r.reason + ")");
  std::string ran;
  for (const std::string& name : s.ran_release) ran += (ran.empty() ? "" : ", ") + name;
  out += fmt::format("  ran release {}       {} device(s){}\n", report.release,
                     s.ran_release.size(), ran.empty() ? "" : ": " + ran);
  out += fmt::format("  healthy at the end  {} of {}\n\n", s.healthy_at_end, s.devices);
  out += fmt::format("  {:<5} {:>5} {:>6} {:>10} {:>10} {:>12} {:>12} {:>12}\n", "wave", "size",
                     "done", "started", "T95", "from origin", "from LAN", "other sites");
  for (const WaveSummary& w : s.waves) {
    out += fmt::format("  {:<5} {:>5} {:>6} {:>10} {:>10} {:>12} {:>12} {:>12}\n", w.wave, w.size,
                       w.completed, Seconds(w.started_s), Seconds(w.t95_s), Megabytes(w.rx_origin),
                       Megabytes(w.rx_lan), Megabytes(w.rx_wan_peers));
  }
  return out + "\n";
}

}  // namespace

Result<RunReport> RunReportFromJson(const Json& j) {
  RunReport r;
  JsonObjectReader reader(j, "report", UnknownKeys::kIgnore);
  reader.Require({"scenario", "strategy", "seed", "time_limit_s", "release", "release_bytes",
                  "duration_s", "ended_by", "devices", "sites", "origin"});
  reader.String("scenario", r.scenario);
  reader.String("strategy", r.strategy);
  reader.Unsigned("seed", r.seed);
  reader.Unsigned("time_limit_s", r.time_limit_s);
  reader.String("release", r.release);
  reader.Unsigned("release_bytes", r.release_bytes);
  reader.Number("duration_s", r.duration_s, -kAnyNumber, kAnyNumber);
  reader.String("ended_by", r.ended_by);
  reader.Objects("devices", [&](JsonObjectReader& d) { ReadDevice(d, r.devices.emplace_back()); });
  reader.Objects("sites", [&](JsonObjectReader& s) {
    SiteResult& site = r.sites.emplace_back();
    s.Require({"name", "wan_rx_bytes", "wan_tx_bytes"});
    s.String("name", site.name);
    s.Unsigned("wan_rx_bytes", site.wan_rx_bytes);
    s.Unsigned("wan_tx_bytes", site.wan_tx_bytes);
  });
  reader.Object("origin", [&](JsonObjectReader& origin) { ReadOrigin(origin, r); });
  if (const Json* wait = reader.Find("node_origin_wait_s"); wait != nullptr && !wait->is_null()) {
    reader.Unsigned("node_origin_wait_s", r.origin_wait_s);
  }
  if (const Json* bound = reader.Find("lower_bound"))
    r.lower_bound = *bound;  // older reports lack it
  if (const Json* rollout = reader.Find("rollout"); rollout != nullptr && !rollout->is_null()) {
    reader.Object("rollout", [&](JsonObjectReader& o) { ReadRollout(o, r.rollout.emplace()); });
  }
  RETURN_IF_ERROR(reader.Finish());
  return r;
}

std::string SummaryTable(const RunReport& report) {
  ReportSummary s = Summarize(report);
  std::string out = fmt::format(
      "scenario {} · strategy {}{} · seed {} · release {} ({})\n"
      "ended by: {} after {}\n\n"
      "  devices completed   {} of {}\n"
      "  completion p50/p95  {} / {}   (max {})\n"
      "  95% of the fleet    {}\n"
      "  origin egress       {}  ({:.2f} copies of the release)\n"
      "  WAN bytes, all sites {}\n{}\n",
      report.scenario, report.strategy,
      report.origin_wait_s > 0 ? fmt::format(" (origin wait {} s)", report.origin_wait_s) : "",
      report.seed, report.release, Megabytes(report.release_bytes), report.ended_by,
      Seconds(report.duration_s), s.completed, s.devices, Seconds(s.p50_s), Seconds(s.p95_s),
      Seconds(s.max_s), Seconds(s.time_to_95pct_s), Megabytes(report.origin_egress_bytes),
      s.origin_copies, Megabytes(s.wan_rx_bytes), BoundLine(report, s));
  out += RolloutLines(report, s);
  out += fmt::format("  {:<16} {:>12} {:>12}\n", "site", "WAN down", "WAN up");
  for (const SiteResult& site : report.sites) {
    out += fmt::format("  {:<16} {:>12} {:>12}\n", site.name, Megabytes(site.wan_rx_bytes),
                       Megabytes(site.wan_tx_bytes));
  }
  out += fmt::format("\n  {:<20} {:>10} {:>12} {:>12} {:>12}  {}\n", "device", "done at",
                     "from origin", "from LAN", "other sites", "state");
  for (const DeviceResult& d : report.devices) {
    out += fmt::format("  {:<20} {:>10} {:>12} {:>12} {:>12}  {}{}\n", d.name,
                       d.completed ? Seconds(d.completion_s) : std::string("-"),
                       Megabytes(d.traffic.rx_origin), Megabytes(d.traffic.rx_lan),
                       Megabytes(d.traffic.rx_wan_peers), d.state,
                       d.errors.empty() ? "" : "  (" + d.errors.front() + ")");
  }
  return out;
}

Status WritePlots(const std::vector<RunReport>& reports, const std::string& out_dir) {
  if (reports.empty()) return InvalidArgument("no report to plot");
  RETURN_IF_ERROR(CreateDirectories(out_dir));
  std::string cdf_plot, origin_plot;
  for (size_t i = 0; i < reports.size(); ++i) {
    const RunReport& r = reports[i];
    std::vector<double> times;
    for (const DeviceResult& d : r.devices) {
      if (d.completed) times.push_back(d.completion_s);
    }
    std::sort(times.begin(), times.end());
    // Fractions are of ALL devices, so a run that left devices behind never reaches 1.
    std::string cdf = "0 0\n";
    for (size_t k = 0; k < times.size(); ++k) {
      cdf += fmt::format("{:.3f} {:.4f}\n", times[k], double(k + 1) / r.devices.size());
    }
    std::string origin;
    for (const auto& [t, bytes] : r.origin_timeline) origin += fmt::format("{:.3f} {}\n", t, bytes);
    std::string label = r.strategy + (reports.size() > 1 ? "" : " (" + r.scenario + ")");
    std::string cdf_file = fmt::format("{}/completion-{}.dat", out_dir, i);
    std::string origin_file = fmt::format("{}/origin-{}.dat", out_dir, i);
    RETURN_IF_ERROR(WriteFileAtomic(cdf_file, cdf));
    RETURN_IF_ERROR(WriteFileAtomic(origin_file, origin));
    cdf_plot += fmt::format("{}{} using 1:2 with steps lw 2 title {}", i ? ", " : "",
                            Quote(cdf_file), Quote(label));
    origin_plot += fmt::format("{}{} using 1:($2/1e6) with lines lw 2 title {}", i ? ", " : "",
                               Quote(origin_file), Quote(label));
  }
  std::string script = fmt::format(
      "set terminal png size 900,560\n"
      "set grid\nset key bottom right\n"
      "set output {}\n"
      "set title 'Release completion ({})'\n"
      "set xlabel 'seconds since publish'\nset ylabel 'fraction of devices'\n"
      "set yrange [0:1.05]\n"
      "plot {}\n"
      "set output {}\n"
      "set title 'Origin egress'\nset key top left\n"
      "set ylabel 'MB sent by the origin (cumulative)'\nset yrange [0:*]\n"
      "plot {}\n",
      Quote(out_dir + "/completion-cdf.png"), reports.front().scenario, cdf_plot,
      Quote(out_dir + "/origin-egress.png"), origin_plot);
  std::string gp = out_dir + "/plots.gp";
  RETURN_IF_ERROR(WriteFileAtomic(gp, script));
  return RunChecked({"gnuplot", gp}).status();
}

}  // namespace flotilla::sim
