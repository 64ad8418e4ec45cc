// `flotilla-sim topo ...`, `clean` and `scenario check`: building and
// removing a scenario's network by hand, and cleaning up after crashes.
#include <fmt/core.h>
#include <signal.h>

#include <cstdio>
#include <memory>

#include "sim/commands.h"
#include "sim/names.h"
#include "sim/run_state.h"
#include "sim/scenario.h"
#include "sim/topology.h"

namespace flotilla::sim {
namespace {

struct TopoOptions {
  std::string scenario;
  std::string run_id;
  double seconds = 0;
  bool all = false;
  bool json = false;
};

Json TopologyJson(const Topology& topo) {
  Json sites = Json::array();
  for (int i = 0; i < static_cast<int>(topo.spec().sites.size()); ++i) {
    Json devices = Json::array();
    for (int j = 0; j < topo.spec().sites[i].devices; ++j) {
      devices.push_back(
          {{"netns", topo.DeviceNetns(i, j)}, {"address", Topology::DeviceAddress(i, j)}});
    }
    sites.push_back({{"name", topo.spec().sites[i].name},
                     {"router_netns", topo.RouterNetns(i)},
                     {"wan_address", Topology::RouterWanAddress(i)},
                     {"devices", devices}});
  }
  return {{"run_id", topo.run_id()},
          {"cloud_netns", topo.CloudNetns()},
          {"cloud_address", Topology::CloudAddress()},
          {"sites", sites},
          {"netns", topo.AllNetns()}};
}

// Claims a run and builds the scenario's network in it.
Result<std::unique_ptr<Topology>> BuildFor(const std::string& path,
                                           std::optional<RunClaim>& claim) {
  ASSIGN_OR_RETURN(Scenario scenario, LoadScenario(path));
  ASSIGN_OR_RETURN(RunClaim made, RunClaim::Create(NewRunId(), "topology of " + path));
  claim.emplace(std::move(made));
  auto topo = Topology::Up(claim->run_id(), scenario.topology);
  if (!topo.ok()) claim->Finish().IgnoreError();
  return topo;
}

int TopoUp(const TopoOptions& o) {
  std::optional<RunClaim> claim;
  auto topo = BuildFor(o.scenario, claim);
  if (!topo.ok()) return SimFail("topo up", topo.status());
  if (Status st = claim->MarkDetached(); !st.ok()) return SimFail("topo up", st);
  (*topo)->Detach();
  fmt::print("{}\n", TopologyJson(**topo).dump());
  return 0;
}

// Builds, says so, waits for SIGINT/SIGTERM/SIGHUP (or --seconds), tears down.
int TopoHold(const TopoOptions& o) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, nullptr);  // pending signals wait for the teardown below
  std::optional<RunClaim> claim;
  auto topo = BuildFor(o.scenario, claim);
  if (!topo.ok()) return SimFail("topo hold", topo.status());
  fmt::print("{}\n", TopologyJson(**topo).dump());
  std::fflush(stdout);
  int sig;
  if (o.seconds > 0) {
    timespec limit{static_cast<time_t>(o.seconds),
                   static_cast<long>((o.seconds - int64_t(o.seconds)) * 1e9)};
    sig = sigtimedwait(&set, nullptr, &limit);
  } else {
    while (sigwait(&set, &sig) != 0) {
    }
  }
  fmt::print(stderr, "flotilla-sim: {}, tearing down run {}\n",
             sig > 0 ? strsignal(sig) : "time is up", (*topo)->run_id());
  Status down = (*topo)->Down();
  Status finish = claim->Finish();
  if (!down.ok()) return SimFail("topo hold: teardown", down);
  if (!finish.ok()) return SimFail("topo hold: teardown", finish);
  return 0;
}

int TopoLs(const TopoOptions& o) {
  auto runs = ListRuns();
  if (!runs.ok()) return SimFail("topo ls", runs.status());
  Json out = Json::array();
  for (const RunInfo& r : *runs) {
    out.push_back({{"run_id", r.run_id},
                   {"state", RunLivenessName(r.liveness)},
                   {"description", r.description},
                   {"netns", r.netns}});
    if (!o.json) {
      fmt::print("{}  {:8}  {:3} namespaces  {}\n", r.run_id, RunLivenessName(r.liveness),
                 r.netns.size(), r.description);
    }
  }
  if (o.json) fmt::print("{}\n", out.dump());
  return 0;
}

int Clean(const TopoOptions& o) {
  auto removed = CleanRuns(o.all);
  if (!removed.ok()) return SimFail("clean", removed.status());
  for (const std::string& id : *removed) fmt::print("removed run {}\n", id);
  if (removed->empty()) fmt::print("nothing to clean\n");
  return 0;
}

int ScenarioCheck(const TopoOptions& o) {
  auto scenario = LoadScenario(o.scenario);
  if (!scenario.ok()) return SimFail("scenario check", scenario.status());
  fmt::print("{}\n", ScenarioToJson(*scenario).dump(2));
  return 0;
}

}  // namespace

CommandAction RegisterTopoCommands(CLI::App& app) {
  auto o = std::make_shared<TopoOptions>();
  auto* topo = app.add_subcommand("topo", "Build, list and remove a scenario's network by hand");
  topo->require_subcommand(1);
  auto* up =
      topo->add_subcommand("up", "Build the network of SCENARIO and leave it running (detached)");
  auto* hold = topo->add_subcommand(
      "hold",
      "Build the network of SCENARIO, wait for Ctrl-C/SIGTERM (or --seconds), tear it down");
  auto* down = topo->add_subcommand("down", "Remove a detached or dead run");
  auto* ls = topo->add_subcommand("ls", "List runs: alive, detached, dead or orphaned");
  for (auto* c : {up, hold}) c->add_option("scenario", o->scenario, "Scenario file")->required();
  hold->add_option("--seconds", o->seconds, "Tear down after this long even without a signal");
  down->add_option("run", o->run_id, "Run id (see topo ls)")->required();
  ls->add_flag("--json", o->json, "One JSON array instead of a table");
  auto* clean = app.add_subcommand(
      "clean", "Remove the namespaces, processes and mounts of every dead or orphaned run");
  clean->add_flag("--all", o->all, "Also remove detached runs (topo up)");
  auto* scenario = app.add_subcommand("scenario", "Scenario files");
  scenario->require_subcommand(1);
  auto* check = scenario->add_subcommand("check", "Validate FILE and print it expanded");
  check->add_option("file", o->scenario, "Scenario file")->required();
  return [=]() -> int {
    if (*up) return TopoUp(*o);
    if (*hold) return TopoHold(*o);
    if (*down) {
      Status st = RemoveRun(o->run_id);
      return st.ok() ? 0 : SimFail("topo down", st);
    }
    if (*ls) return TopoLs(*o);
    if (*clean) return Clean(*o);
    if (*check) return ScenarioCheck(*o);
    return -1;
  };
}

}  // namespace flotilla::sim
