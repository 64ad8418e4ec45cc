#include "sim/scenario_run.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "core/bytes.h"
#include "core/file_io.h"
#include "runtime/runtime.h"
#include "sim/command.h"
#include "sim/daemon_process.h"
#include "sim/device_accounting.h"
#include "sim/lower_bound.h"
#include "sim/netns.h"
#include "sim/network_run.h"
#include "sim/run_containers.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::sim {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr char kApp[] = "sim";
constexpr int kTrackerPort = 8080;
// With a rollout: the group selecting every device, the app assigned to it.
constexpr char kFleetGroup[] = "sim-fleet";
// Seconds between two evaluations of the rollout in `serve` (its default, 30,
// is for soaks of minutes; a run measures the waves, not this interval).
constexpr int kRolloutIntervalS = 1;
// After a rollout halts, how long the run keeps watching: the failing wave
// rolls back, and no other device may start the release meanwhile.
constexpr double kWatchAfterHaltS = 30;
// The log line a node writes when it starts a release's health-gated switch
// (node/daemon/deployer.cpp): the device runs the release from then on.
constexpr char kDeployingLine[] = "app sim: deploying release ";
// The log line of a node that accepted a fleet document (fleet_follower.cpp).
constexpr char kFleetAcceptedLine[] = "fleet document v";

std::string TrackerUrl() {
  return fmt::format("http://{}:{}", Topology::CloudAddress(), kTrackerPort);
}

std::string DeviceName(const Scenario& s, int site, int device) {
  return fmt::format("{}-d{}", s.topology.sites[site].name, device);
}

std::string LanPrefix(int site) { return fmt::format("10.{}.0.0/24", site + 1); }

// What a node last told the tracker.
struct Reported {
  std::string release;
  std::string state;
  std::string health;
  uint64_t from_peers = 0;
  uint64_t from_origin = 0;
};

// A release has arrived on a device once its node reports it `running`:
// fetched, verified, deployed and past the runtime's health-gated switch.
bool Arrived(const Reported& r, uint64_t version) {
  return r.release == std::to_string(version) && r.state == "running";
}

// Every device's latest report, as the tracker's operator API tells it. The
// tracker listens inside the cloud namespace, so the call is made from there
// (over that namespace's loopback: no link counter sees it).
Result<std::map<std::string, Reported>> ReadReports(const std::string& cloud_ns,
                                                    tracker::TrackerClient& client) {
  Result<tracker::FleetSnapshot> fleet = Internal("not asked");
  RETURN_IF_ERROR(RunInNetns(cloud_ns, [&] { fleet = client.Fleet(); }));
  RETURN_IF_ERROR(fleet.status().WithContext("read device reports"));
  std::map<std::string, Reported> out;
  for (const tracker::DeviceRow& d : fleet->devices) {
    if (!d.reported) continue;
    out[d.identity.name] = Reported{d.report.release, d.report.state, d.report.health,
                                    d.report.bytes_from_peers, d.report.bytes_from_origin};
  }
  return out;
}

// Sum of the full artifacts of release `version`: what one plain copy costs.
Result<uint64_t> FullReleaseBytes(const std::string& repo, uint64_t version) {
  ASSIGN_OR_RETURN(Json release, ReadReleaseFile(repo, kApp, version));
  uint64_t total = 0;
  for (const Json& a : release.value("artifacts", Json::array())) {
    if (a.value("kind", "") == "full") total += a.value("length", uint64_t{0});
  }
  return total;
}

std::string DefaultAppSpec() {
  return Json{{"name", kApp}, {"command", {"/bin/sleep", "1000000"}}}.dump();
}

// A bad release: the same app, with a health check that always fails, so
// its health-gated switch rolls back after 10 s (docs/app-spec.md).
std::string FailingHealthAppSpec() {
  return Json{{"name", kApp},
              {"command", {"/bin/sleep", "1000000"}},
              {"health",
               {{"type", "exec"}, {"command", {"/bin/sh", "-c", "exit 1"}}, {"interval_ms", 1000}}},
              {"switch", {{"healthy_deadline_ms", 10000}}}}
      .dump();
}

// "60s", or "0" (what the tracker's duration flags take).
std::string DurationFlag(uint32_t seconds) {
  return seconds == 0 ? "0" : std::to_string(seconds) + "s";
}

std::string RandomToken() {
  uint8_t bytes[24];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) return {};
  return HexEncode(ByteSpan(bytes, sizeof bytes));
}

}  // namespace

Json NodeConfigFor(const Scenario& scenario, int site, int device, const std::string& data_dir,
                   const std::string& token_file, const std::string& root_file) {
  const bool p2p = scenario.strategy == Strategy::kFlotilla;
  const bool deltas = scenario.strategy != Strategy::kHttpFull;
  const std::string address = Topology::DeviceAddress(site, device);
  Json config{{"tracker_url", TrackerUrl()},
              {"enrolment_token_file", token_file},
              {"device_name", DeviceName(scenario, site, device)},
              {"data_dir", data_dir},
              {"root_of_trust", root_file},
              {"apps", {kApp}},
              {"site", scenario.topology.sites[site].name},
              {"listen", address + ":6881"},
              {"transfer_mode", p2p ? "p2p" : "http-only"},
              {"deltas", deltas},
              {"refresh_interval_s", 2},
              {"max_backoff_s", 10},
              {"report_interval_s", 1},
              {"deploy", true},  // "has the release" = runs it (docs/sim.md)
              {"lan", {{"http_listen", address + ":0"}, {"interface", address}}}};
  if (scenario.node_origin_wait_s > 0) config["origin_wait_s"] = scenario.node_origin_wait_s;
  return config;
}

namespace {

class Runner {
 public:
  Runner(const Scenario& scenario, const ScenarioRunOptions& options) : s_(scenario), o_(options) {}
  // Whatever way the run ends (an error included), nothing it started stays.
  ~Runner() { Teardown().IgnoreError(); }
  Result<RunReport> Run();

 private:
  struct Device {
    int site = 0, index = 0;
    std::string name, ns, dir;
    std::optional<DaemonProcess> process;
    bool switched_off = false;
    std::optional<double> arrived_s;
    Reported last;
    bool reported_running_release = false;  // a report named the measured release, running
  };

  Status Prepare();
  Status StartTracker();
  Status Publish(const std::string& image, const std::string& spec_file);
  // With a rollout: the fleet root, a group of every device, the app assigned.
  Status ManageFleet();
  // Signs every device's fleet document and waits until every node follows it.
  Status FollowFleet();
  Status StartRollout(uint64_t version);
  Status PollRollout(double t);
  bool RolloutSettled(double t) const;
  Status CollectRollout(RunReport& r, uint64_t version);
  Result<std::string> TrackerCommand(std::vector<std::string> args);
  Status StartNode(Device& d);
  // Ticks until every device has `version` or `limit_s` passed; with
  // `measured`, applies churn and samples the origin.
  Status WaitForRelease(uint64_t version, double limit_s, bool measured,
                        SteadyClock::time_point start);
  Status Tick(uint64_t version, double t, bool measured);
  Status ApplyChurn(double t);
  Status PowerCut(Device& d);
  Status ZeroCounters();
  Result<RunReport> Collect(uint64_t version);
  void Progress(double t, bool measured);
  void SaveLogs();
  void StopNodes();
  void StopApps();
  Status Teardown();
  bool Interrupted() const { return o_.interrupted && o_.interrupted->load(); }

  const Scenario& s_;
  const ScenarioRunOptions& o_;
  std::unique_ptr<NetworkRun> net_;
  std::string repo_, token_file_, spec_file_, failing_spec_file_;
  std::optional<DaemonProcess> tracker_;
  std::optional<tracker::TrackerClient> tracker_client_;
  std::vector<Device> devices_;
  size_t next_churn_ = 0;
  std::vector<bool> churn_started_;
  std::vector<InterfaceCounters> site_base_;
  InterfaceCounters origin_base_;
  std::vector<std::pair<double, uint64_t>> origin_timeline_;
  double measured_s_ = 0;
  std::optional<RolloutResult> rollout_;
  std::string ended_by_;
  std::vector<std::string> harness_errors_;
  bool torn_down_ = false;
};

Status Runner::Prepare() {
  ASSIGN_OR_RETURN(net_, NetworkRun::Start(s_.topology, "scenario " + s_.name));
  std::fprintf(stderr, "flotilla-sim: run %s in %s\n", net_->run_id().c_str(), net_->dir().c_str());
  repo_ = net_->dir() + "/tracker";
  token_file_ = net_->dir() + "/fleet-token";
  spec_file_ = net_->dir() + "/app-spec.json";
  failing_spec_file_ = net_->dir() + "/app-spec-failing-health.json";
  std::string token = RandomToken();
  if (token.empty()) return Internal("no randomness for the fleet token");
  RETURN_IF_ERROR(WriteFileAtomic(token_file_, token + "\n", 0600));
  RETURN_IF_ERROR(WriteFileAtomic(spec_file_, DefaultAppSpec()));
  RETURN_IF_ERROR(WriteFileAtomic(failing_spec_file_, FailingHealthAppSpec()));
  std::string listen = fmt::format("{}:{}", Topology::CloudAddress(), kTrackerPort);
  RETURN_IF_ERROR(RunChecked({o_.tracker_binary, "init", repo_, "--public-url", TrackerUrl(),
                              "--listen", listen})
                      .status());
  for (int site = 0; site < static_cast<int>(s_.topology.sites.size()); ++site) {
    for (int j = 0; j < s_.topology.sites[site].devices; ++j) {
      Device d;
      d.site = site;
      d.index = j;
      d.name = DeviceName(s_, site, j);
      d.ns = net_->topology().DeviceNetns(site, j);
      d.dir = net_->dir() + "/nodes/" + d.name;
      devices_.push_back(std::move(d));
    }
  }
  return CreateDirectories(net_->dir() + "/nodes");
}

Status Runner::StartTracker() {
  std::string port_file = net_->dir() + "/tracker.port";
  std::vector<std::string> argv = {
      o_.tracker_binary,    "serve",
      "--repository",       repo_,
      "--listen",           fmt::format("{}:{}", Topology::CloudAddress(), kTrackerPort),
      "--public-url",       TrackerUrl(),
      "--fleet-token-file", token_file_,
      "--port-file",        port_file};
  if (s_.rollout)
    argv.insert(argv.end(), {"--rollout-interval", std::to_string(kRolloutIntervalS)});
  ASSIGN_OR_RETURN(DaemonProcess p, DaemonProcess::Start(net_->topology().CloudNetns(), argv,
                                                         net_->dir() + "/tracker.log"));
  tracker_.emplace(std::move(p));
  tracker_client_.emplace(TrackerUrl(),
                          http::ClientOptions{.connect_timeout = std::chrono::seconds(2),
                                              .read_timeout = std::chrono::seconds(5),
                                              .proxy = ""});
  for (int i = 0; i < 200; ++i) {
    if (fs::exists(port_file)) return Status::Ok();
    if (!tracker_->Running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Unavailable("the tracker did not start: see " + tracker_->log_path());
}

Status Runner::Publish(const std::string& image, const std::string& spec_file) {
  return RunChecked({o_.tracker_binary, "publish", "--repository", repo_, "--app", kApp, "--spec",
                     spec_file, image})
      .status();
}

Result<std::string> Runner::TrackerCommand(std::vector<std::string> args) {
  args.insert(args.begin(), o_.tracker_binary);
  args.insert(args.end(), {"--repository", repo_});
  return RunChecked(args);
}

Status Runner::ManageFleet() {
  RETURN_IF_ERROR(
      TrackerCommand({"fleet", "init", "--offline-keys", net_->dir() + "/fleet-offline-keys"})
          .status());
  RETURN_IF_ERROR(TrackerCommand({"group", "create", kFleetGroup, "--select", "all"}).status());
  return TrackerCommand({"app", "assign", kApp, "--group", kFleetGroup}).status();
}

// Nodes enrol when they start, so their fleet repositories can be signed
// only once they have: after the warm-up, when every device has reported.
Status Runner::FollowFleet() {
  RETURN_IF_ERROR(TrackerCommand({"fleet", "publish"}).status());
  const auto deadline = SteadyClock::now() + std::chrono::seconds(120);
  while (true) {
    std::vector<std::string> waiting;
    for (const Device& d : devices_) {
      auto log = ReadTextFileBounded(d.dir + "/node.log", 64 << 20);
      if (!log.ok() || log->find(kFleetAcceptedLine) == std::string::npos) {
        waiting.push_back(d.name);
      }
    }
    if (waiting.empty()) return Status::Ok();
    if (SteadyClock::now() > deadline || Interrupted()) {
      SaveLogs();
      return Unavailable(
          fmt::format("{} device(s) did not accept a fleet document, e.g. {}; logs in {}/logs",
                      waiting.size(), waiting.front(), o_.out_dir));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

Status Runner::StartRollout(uint64_t version) {
  const RolloutSpec& spec = *s_.rollout;
  ASSIGN_OR_RETURN(
      std::string out,
      TrackerCommand({"rollout", "start", "--app", kApp, "--release", std::to_string(version),
                      "--waves", spec.waves_text, "--max-failures", spec.max_failures_text,
                      "--soak", DurationFlag(spec.soak_s), "--wave-timeout",
                      DurationFlag(spec.wave_timeout_s), "--json"}));
  ASSIGN_OR_RETURN(Json started, ParseJsonStrict(out.substr(0, out.find('\n'))));
  RolloutResult r;
  r.id = started.value("id", int64_t{0});
  r.waves = spec.waves_text;
  r.max_failures = spec.max_failures_text;
  r.soak_s = spec.soak_s;
  r.wave_timeout_s = spec.wave_timeout_s;
  r.wave_started_s.assign(spec.waves.size(), -1);
  r.status = started;
  r.state = started.value("state", "");
  if (r.id <= 0) return Internal("rollout start printed no id: " + out);
  rollout_ = std::move(r);
  return Status::Ok();
}

// The rollout as `rollout status --json` tells it; the run's view of when
// each wave started and when it halted or completed.
Status Runner::PollRollout(double t) {
  ASSIGN_OR_RETURN(std::string out,
                   TrackerCommand({"rollout", "status", std::to_string(rollout_->id), "--json"}));
  ASSIGN_OR_RETURN(Json status, ParseJsonStrict(out));
  rollout_->status = status;
  rollout_->state = status.value("state", "");
  rollout_->reason = status.value("reason", "");
  const Json waves = status.value("waves", Json::array());
  for (size_t w = 0; w < waves.size() && w < rollout_->wave_started_s.size(); ++w) {
    if (waves[w].value("started", false) && rollout_->wave_started_s[w] < 0) {
      rollout_->wave_started_s[w] = t;
    }
  }
  if (rollout_->ended_s < 0 && rollout_->state != "running" && rollout_->state != "paused") {
    rollout_->ended_s = t;
  }
  return Status::Ok();
}

// A halted (or aborted) rollout: watched for a while, until no device is
// mid-switch.
bool Runner::RolloutSettled(double t) const {
  if (!rollout_ || rollout_->ended_s < 0 || rollout_->state == "completed") return false;
  if (t < rollout_->ended_s + kWatchAfterHaltS) return false;
  return std::none_of(devices_.begin(), devices_.end(),
                      [](const Device& d) { return d.last.state == "deploying"; });
}

Status Runner::StartNode(Device& d) {
  RETURN_IF_ERROR(CreateDirectories(d.dir));
  Json config = NodeConfigFor(s_, d.site, d.index, d.dir + "/data", token_file_,
                              repo_ + "/metadata/1.root.json");
  std::string config_file = d.dir + "/node.json";
  RETURN_IF_ERROR(WriteFileAtomic(config_file, config.dump(2)));
  ASSIGN_OR_RETURN(DaemonProcess p,
                   DaemonProcess::Start(d.ns, {o_.node_binary, "run", "--config", config_file},
                                        d.dir + "/node.log"));
  d.process.emplace(std::move(p));
  return Status::Ok();
}

Status Runner::ZeroCounters() {
  site_base_.clear();
  for (size_t i = 0; i < s_.topology.sites.size(); ++i) {
    ASSIGN_OR_RETURN(InterfaceCounters c, net_->topology().SiteWanCounters(i));
    site_base_.push_back(c);
  }
  ASSIGN_OR_RETURN(origin_base_, net_->topology().OriginCounters());
  for (Device& d : devices_) {
    RETURN_IF_ERROR(InstallDeviceAccounting(d.ns, LanPrefix(d.site), Topology::CloudAddress()));
  }
  return Status::Ok();
}

// A power cut, not a shutdown: the node and the device's app die at once.
Status Runner::PowerCut(Device& d) {
  if (d.process) d.process->Kill();
  const std::string state_dir = d.dir + "/data/runtime";
  if (!fs::is_directory(state_dir)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string parent, runtime::CgroupParentFor(state_dir));
  return SweepContainers(d.dir, {parent}).status();
}

Status Runner::ApplyChurn(double t) {
  for (size_t i = 0; i < s_.churn.size(); ++i) {
    const ChurnEvent& e = s_.churn[i];
    bool want_active = t >= e.from_s && t < e.to_s;
    if (want_active == churn_started_[i]) continue;
    churn_started_[i] = want_active;
    if (e.kind == ChurnEvent::Kind::kWanDown) {
      RETURN_IF_ERROR(net_->topology().SetSiteWanUp(e.site, !want_active));
      continue;
    }
    for (Device& d : devices_) {
      if (d.site != e.site || d.index != e.device) continue;
      RETURN_IF_ERROR(net_->topology().SetDeviceLinkUp(d.site, d.index, !want_active));
      d.switched_off = want_active;
      if (want_active) RETURN_IF_ERROR(PowerCut(d));
      if (!want_active) RETURN_IF_ERROR(StartNode(d));
    }
  }
  return Status::Ok();
}

Status Runner::Tick(uint64_t version, double t, bool measured) {
  if (measured) {
    RETURN_IF_ERROR(ApplyChurn(t));
    ASSIGN_OR_RETURN(InterfaceCounters origin, net_->topology().OriginCounters());
    origin_timeline_.emplace_back(t, origin.tx_bytes - origin_base_.tx_bytes);
  }
  if (measured && rollout_) RETURN_IF_ERROR(PollRollout(t));
  ASSIGN_OR_RETURN(auto reports, ReadReports(net_->topology().CloudNetns(), *tracker_client_));
  for (Device& d : devices_) {
    if (auto it = reports.find(d.name); it != reports.end()) d.last = it->second;
    if (measured && !d.arrived_s && Arrived(d.last, version)) d.arrived_s = t;
    if (measured && d.last.release == std::to_string(version) &&
        (d.last.state == "deploying" || d.last.state == "running")) {
      d.reported_running_release = true;
    }
    if (!d.switched_off && d.process && !d.process->Running()) {
      harness_errors_.push_back(
          fmt::format("{}: node exited (status {}), restarted", d.name, d.process->wait_status()));
      RETURN_IF_ERROR(StartNode(d));
    }
  }
  if (!tracker_->Running()) return Unavailable("the tracker exited: see " + tracker_->log_path());
  return Status::Ok();
}

Status Runner::WaitForRelease(uint64_t version, double limit_s, bool measured,
                              SteadyClock::time_point start) {
  for (int tick = 0;; ++tick) {
    double t = std::chrono::duration<double>(SteadyClock::now() - start).count();
    RETURN_IF_ERROR(Tick(version, t, measured));
    size_t arrived = 0;
    for (const Device& d : devices_)
      arrived += measured ? d.arrived_s.has_value() : Arrived(d.last, version);
    if (measured) measured_s_ = t;
    Progress(t, measured);
    // With a rollout the run also waits for it to complete (its last
    // evaluation), or watches a halted one settle.
    const bool rollout_done = !measured || !rollout_ || rollout_->state == "completed";
    if (arrived == devices_.size() && rollout_done) {
      ended_by_ = "all devices completed";
      return Status::Ok();
    }
    if (measured && RolloutSettled(t)) {
      ended_by_ = "rollout " + rollout_->state;
      return Status::Ok();
    }
    if (Interrupted()) {
      ended_by_ = "interrupted";
      return Status::Ok();
    }
    if (t >= limit_s) {
      ended_by_ = measured ? "time limit" : "time limit during the previous release's warm-up";
      return Status::Ok();
    }
    auto next = start + std::chrono::duration<double>((tick + 1) * kTickSeconds);
    std::this_thread::sleep_until(std::chrono::time_point_cast<SteadyClock::duration>(next));
  }
}

void Runner::Progress(double t, bool measured) {
  if (!o_.progress) return;
  size_t arrived = 0, downloading = 0;
  for (const Device& d : devices_) {
    arrived += measured ? d.arrived_s.has_value() : 0;
    downloading += d.last.state == "downloading";
  }
  uint64_t origin = origin_timeline_.empty() ? 0 : origin_timeline_.back().second;
  std::string line =
      measured ? fmt::format(
                     "[{:5.0f} s] {}/{} devices have it · {} downloading · origin sent {:.1f} MB",
                     t, arrived, devices_.size(), downloading, origin / 1e6)
               : fmt::format("[{:5.0f} s] warm-up: devices fetching the previous release", t);
  if (measured && rollout_) {
    line += fmt::format(" · rollout {}, wave {}", rollout_->state,
                        rollout_->status.value("current_wave", 0));
  }
  bool tty = ::isatty(STDERR_FILENO);
  if (tty) {
    std::fprintf(stderr, "\r%-90s", line.c_str());
  } else if (static_cast<int>(t) % 10 == 0) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

Result<RunReport> Runner::Collect(uint64_t version) {
  RunReport r;
  r.scenario = s_.name;
  r.strategy = std::string(StrategyName(s_.strategy));
  r.seed = s_.seed;
  r.time_limit_s = s_.time_limit_s;
  r.origin_wait_s = s_.node_origin_wait_s;
  r.release = std::to_string(version);
  ASSIGN_OR_RETURN(r.release_bytes, FullReleaseBytes(repo_, version));
  r.duration_s = measured_s_;
  r.ended_by = ended_by_;
  for (Device& d : devices_) {
    DeviceResult out;
    out.name = d.name;
    out.site = s_.topology.sites[d.site].name;
    out.completed = d.arrived_s.has_value();
    out.completion_s = d.arrived_s.value_or(0);
    out.state = d.last.state;
    out.reported_from_peers = d.last.from_peers;
    out.reported_from_origin = d.last.from_origin;
    ASSIGN_OR_RETURN(out.traffic, ReadDeviceAccounting(d.ns));
    for (const std::string& e : harness_errors_) {
      if (e.starts_with(d.name + ":")) out.errors.push_back(e);
    }
    r.devices.push_back(std::move(out));
  }
  for (size_t i = 0; i < s_.topology.sites.size(); ++i) {
    ASSIGN_OR_RETURN(InterfaceCounters c, net_->topology().SiteWanCounters(i));
    r.sites.push_back({s_.topology.sites[i].name, c.rx_bytes - site_base_[i].rx_bytes,
                       c.tx_bytes - site_base_[i].tx_bytes});
  }
  ASSIGN_OR_RETURN(InterfaceCounters origin, net_->topology().OriginCounters());
  r.origin_egress_bytes = origin.tx_bytes - origin_base_.tx_bytes;
  r.origin_timeline = origin_timeline_;
  ASSIGN_OR_RETURN(uint64_t min_bytes, MinimalReleaseBytes(repo_, kApp, version));
  r.lower_bound = Json(ComputeT95LowerBound(s_, min_bytes));
  if (rollout_) RETURN_IF_ERROR(CollectRollout(r, version));
  return r;
}

// Each device's wave (`rollout status --members`), whether it ever started
// the release (its log, else its reports), and what it runs at the end (its
// own status).
Status Runner::CollectRollout(RunReport& r, uint64_t version) {
  RETURN_IF_ERROR(PollRollout(measured_s_));
  r.rollout = rollout_;
  std::map<std::string, int> wave_of;
  {
    ASSIGN_OR_RETURN(
        std::string out,
        TrackerCommand({"rollout", "status", std::to_string(rollout_->id), "--members", "--json"}));
    ASSIGN_OR_RETURN(Json status, ParseJsonStrict(out));
    for (const Json& member : status.value("members", Json::array())) {
      wave_of[member.value("device", "")] = member.value("wave", 0);
    }
  }
  const std::string deploying = kDeployingLine + std::to_string(version) + " ";
  for (size_t i = 0; i < devices_.size(); ++i) {
    const Device& d = devices_[i];
    DeviceResult& out = r.devices[i];
    out.wave = wave_of.count(d.name) ? wave_of[d.name] : 0;
    auto log = ReadTextFileBounded(d.dir + "/node.log", 64 << 20);
    out.ran_release =
        d.reported_running_release || (log.ok() && log->find(deploying) != std::string::npos);
    out.final_health = d.last.health;
    auto status =
        RunCommand({o_.node_binary, "status", "--json", "--config", d.dir + "/node.json"});
    if (!status.ok() || status->exit_code != 0) {
      out.errors.push_back(d.name + ": no status at the end: " +
                           (status.ok() ? status->err : status.status().ToString()));
      continue;
    }
    auto json = ParseJsonStrict(status->out);
    if (!json.ok()) {
      out.errors.push_back(d.name + ": unreadable status at the end: " + json.status().ToString());
      continue;
    }
    for (const Json& app : json->value("apps", Json::array())) {
      if (app.value("name", "") != kApp) continue;
      out.final_release = app.value("running_release", uint64_t{0});
      out.final_container = app.value("container_state", "");
    }
  }
  return Status::Ok();
}

// The run directory goes with the network; logs are worth keeping.
void Runner::SaveLogs() {
  if (!net_) return;
  std::error_code ec;
  fs::create_directories(o_.out_dir + "/logs", ec);
  fs::copy_file(net_->dir() + "/tracker.log", o_.out_dir + "/logs/tracker.log",
                fs::copy_options::overwrite_existing, ec);
  for (const Device& d : devices_) {
    fs::copy_file(d.dir + "/node.log", o_.out_dir + "/logs/" + d.name + ".log",
                  fs::copy_options::overwrite_existing, ec);
  }
}

// SIGTERM to every node at once, then each is waited for (SIGKILL after 3 s).
void Runner::StopNodes() {
  for (Device& d : devices_) {
    if (d.process) d.process->Signal(SIGTERM);
  }
  for (Device& d : devices_) d.process.reset();
}

// `flotilla-node app stop` per device, all at once: the runtime's own
// graceful stop (SIGTERM to the app, its monitor removes the cgroups).
void Runner::StopApps() {
  std::vector<DaemonProcess> stopping;
  for (Device& d : devices_) {
    const std::string state_dir = d.dir + "/data/runtime";
    if (!fs::is_directory(state_dir)) continue;
    auto p =
        DaemonProcess::Start(d.ns, {o_.node_binary, "app", "stop", "--state-dir", state_dir, kApp},
                             d.dir + "/app-stop.log");
    if (p.ok()) stopping.push_back(std::move(*p));
  }
  const auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  for (DaemonProcess& process : stopping) {
    while (process.Running() && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    process.Kill();  // past the deadline; the sweep below finishes the job
  }
}

Status Runner::Teardown() {
  if (!net_ || torn_down_) return Status::Ok();
  torn_down_ = true;
  StopNodes();
  StopApps();
  tracker_.reset();
  // Whatever the graceful stops left (a monitor of a node killed mid-deploy).
  Result<SweepResult> swept_result = SweepRunContainers(net_->dir());
  Status swept = swept_result.status();
  if (swept.ok() && swept_result->processes_killed > 0) {
    std::fprintf(stderr, "flotilla-sim: %zu process(es) of the run outlived the stops: killed\n",
                 swept_result->processes_killed);
  }
  Status down = net_->Stop();
  if (!swept.ok()) std::fprintf(stderr, "flotilla-sim: %s\n", swept.ToString().c_str());
  if (!down.ok()) std::fprintf(stderr, "flotilla-sim: %s\n", down.ToString().c_str());
  return swept.ok() ? down : swept;
}

Result<RunReport> Runner::Run() {
  RETURN_IF_ERROR(Prepare());
  churn_started_.assign(s_.churn.size(), false);
  uint64_t version = 1;
  if (!s_.release.previous.empty()) {
    RETURN_IF_ERROR(Publish(s_.release.previous, spec_file_));
    version = 2;
  }
  if (s_.rollout) RETURN_IF_ERROR(ManageFleet());
  RETURN_IF_ERROR(StartTracker());
  for (Device& d : devices_) RETURN_IF_ERROR(StartNode(d));
  if (version == 2) {
    RETURN_IF_ERROR(WaitForRelease(1, s_.time_limit_s, /*measured=*/false, SteadyClock::now()));
    if (ended_by_ != "all devices completed") {
      SaveLogs();
      return Unavailable("the fleet did not get the previous release (" + ended_by_ +
                         "); logs in " + o_.out_dir + "/logs");
    }
  }
  if (s_.rollout) RETURN_IF_ERROR(FollowFleet());
  RETURN_IF_ERROR(ZeroCounters());
  RETURN_IF_ERROR(
      Publish(s_.release.image, s_.release.health_fails ? failing_spec_file_ : spec_file_));
  const auto published = SteadyClock::now();
  if (s_.rollout) RETURN_IF_ERROR(StartRollout(version));
  RETURN_IF_ERROR(WaitForRelease(version, s_.time_limit_s, /*measured=*/true, published));
  if (o_.progress) std::fputc('\n', stderr);
  Result<RunReport> report = Collect(version);
  SaveLogs();
  RETURN_IF_ERROR(Teardown());
  return report;
}

}  // namespace

Result<RunReport> RunScenario(const Scenario& scenario, const ScenarioRunOptions& options) {
  RETURN_IF_ERROR(CreateDirectories(options.out_dir));
  for (const std::string* image : {&scenario.release.image, &scenario.release.previous}) {
    if (!image->empty() && !fs::exists(*image)) {
      return NotFound(*image +
                      " does not exist (sim/scenarios/images/make.sh builds the "
                      "scenario images)");
    }
  }
  Runner runner(scenario, options);
  return runner.Run();
}

}  // namespace flotilla::sim
