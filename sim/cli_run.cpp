// `flotilla-sim run` and `flotilla-sim plot`: running a scenario with the
// real binaries, and comparing the reports of several runs.
#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>

#include "core/file_io.h"
#include "sim/commands.h"
#include "sim/run_report.h"
#include "sim/scenario.h"
#include "sim/scenario_run.h"

namespace flotilla::sim {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

struct RunOptions {
  std::string scenario;
  std::string out = "sim-out";
  std::string strategy;
  uint32_t time_limit_s = 0;
  uint32_t origin_wait_s = 0;
  std::string tracker, node;
  bool quiet = false;
  std::vector<std::string> reports;
};

// The sibling binaries of this one: same directory (installed), or the
// build tree's tracker/ and node/ beside sim/.
std::string FindBinary(const std::string& given, const std::string& name,
                       const std::string& subdir) {
  if (!given.empty()) return given;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path candidate : {self / name, self.parent_path() / subdir / name}) {
    if (fs::exists(candidate, ec)) return candidate;
  }
  return name;  // from PATH
}

int Run(const RunOptions& o) {
  auto scenario = LoadScenario(o.scenario);
  if (!scenario.ok()) return SimFail("run", scenario.status());
  if (!o.strategy.empty()) {
    auto strategy = ParseStrategy(o.strategy);
    if (!strategy.ok()) return SimFail("run", strategy.status());
    scenario->strategy = *strategy;
  }
  if (o.time_limit_s > 0) scenario->time_limit_s = o.time_limit_s;
  scenario->node_origin_wait_s = o.origin_wait_s;
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  ScenarioRunOptions options;
  options.tracker_binary = FindBinary(o.tracker, "flotilla-tracker", "tracker");
  options.node_binary = FindBinary(o.node, "flotilla-node", "node");
  options.out_dir = o.out;
  options.progress = !o.quiet;
  options.interrupted = &g_interrupted;
  fmt::print(stderr, "flotilla-sim: scenario {} ({} sites, strategy {}, limit {} s) -> {}\n",
             scenario->name, scenario->topology.sites.size(), StrategyName(scenario->strategy),
             scenario->time_limit_s, o.out);
  auto report = RunScenario(*scenario, options);
  if (!report.ok()) return SimFail("run", report.status());
  Status st = WriteFileAtomic(o.out + "/report.json", RunReportToJson(*report).dump(2) + "\n");
  if (st.ok()) st = WritePlots({*report}, o.out);
  if (!st.ok()) return SimFail("run", st);
  fmt::print("{}\nreport: {}/report.json, plots: {}/completion-cdf.png, {}/origin-egress.png\n",
             SummaryTable(*report), o.out, o.out, o.out);
  return g_interrupted.load() ? 130 : 0;
}

int Plot(const RunOptions& o) {
  std::vector<RunReport> reports;
  for (const std::string& path : o.reports) {
    auto text = ReadFileBounded(path, 64 << 20);
    if (!text.ok()) return SimFail("plot", text.status());
    auto doc = ParseJsonStrict(AsStringView(*text), JsonLimits{64 << 20, 16});
    if (!doc.ok()) return SimFail("plot", doc.status().WithContext(path));
    auto report = RunReportFromJson(*doc);
    if (!report.ok()) return SimFail("plot", report.status());
    reports.push_back(std::move(*report));
  }
  if (Status st = WritePlots(reports, o.out); !st.ok()) return SimFail("plot", st);
  fmt::print("{}/completion-cdf.png, {}/origin-egress.png\n", o.out, o.out);
  return 0;
}

// The required input FILE argument(s) of `cmd`, which must exist, and its --out.
template <typename Input>
void AddInputAndOut(CLI::App* cmd, const char* name, Input& input, const char* help,
                    std::string& out) {
  cmd->add_option(name, input, help)->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", out, "output directory")->capture_default_str();
}

}  // namespace

CommandAction RegisterRunCommands(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Run a scenario: build its network, start the real tracker and one real node per "
      "device, publish the release (after the previous one, when the scenario names one), "
      "watch until every device has it or the time limit, apply churn, then write "
      "OUT/report.json, OUT/completion-cdf.png, OUT/origin-egress.png and OUT/logs/, and "
      "print a summary. Ctrl-C stops early and still reports. After a crash, "
      "`flotilla-sim clean` removes what is left.");
  AddInputAndOut(run, "scenario", o->scenario, "scenario file (sim/scenarios/*.json)", o->out);
  run->add_option("--strategy", o->strategy,
                  "override the scenario's strategy: flotilla, http-full, http-delta");
  run->add_option("--time-limit", o->time_limit_s, "override the scenario's time limit (s)");
  run->add_option("--origin-wait", o->origin_wait_s,
                  "the nodes' origin_wait_s: seconds a transfer with peers waits for their "
                  "bytes before the origin (default: the node's, 10; a node alone in its swarm "
                  "does not wait it)")
      ->check(CLI::Range(1, 3600));
  run->add_option("--tracker", o->tracker, "flotilla-tracker binary (default: beside this one)");
  run->add_option("--node", o->node, "flotilla-node binary (default: beside this one)");
  run->add_flag("--quiet", o->quiet, "no progress line");
  CLI::App* plot = app.add_subcommand(
      "plot",
      "Draw the completion CDFs and origin egress of several runs' reports in one plot "
      "each (e.g. one run per strategy).");
  AddInputAndOut(plot, "reports", o->reports, "report.json files", o->out);
  return [o, run, plot]() {
    if (run->parsed()) return Run(*o);
    if (plot->parsed()) return Plot(*o);
    return -1;
  };
}

}  // namespace flotilla::sim
