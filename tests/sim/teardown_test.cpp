// Nothing is left behind: after a normal stop, Ctrl-C/SIGTERM of
// `flotilla-sim topo hold`, and SIGKILL followed by `flotilla-sim clean`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/file_io.h"
#include "sim/netns.h"
#include "sim/network_run.h"
#include "sim/run_state.h"
#include "tests/sim/sim_test_util.h"
#include "tests/support/test_util.h"

namespace flotilla::sim::testing {
namespace {

using flotilla::testing::BinaryPath;
using flotilla::testing::RunShell;

// Two sites with delayed WANs (so delay-line processes exist), shaped LANs, loss.
constexpr char kScenario[] = R"({
  "name": "teardown", "time_limit_s": 60, "release": {"image": "none.tar"},
  "links": {"wan": {"down": {"rate_kbit": 4000, "delay_ms": 20, "jitter_ms": 5, "loss_percent": 1},
                    "up": {"rate_kbit": 1000, "delay_ms": 20}},
            "lan": {"down": {"rate_kbit": 100000}, "up": {"rate_kbit": 100000}}},
  "sites": [{"name": "s{i}", "count": 2, "devices": 2, "wan": "wan", "lan": "lan"}]
})";

std::vector<std::string> HostLinks() {
  auto r = RunShell("ip -o link show | awk -F': ' '{print $2}' | sort");
  std::vector<std::string> names;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) names.push_back(line);
  return names;
}

// Running (a zombie waiting for init to reap it is not).
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

class TeardownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = flotilla::testing::MakeTempDir("teardown");
    scenario_ = dir_ + "/scenario.json";
    ASSERT_TRUE(WriteFileAtomic(scenario_, kScenario).ok());
    host_links_ = HostLinks();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts `topo hold` and returns its topology JSON once it is up.
  Json Hold(Background& hold) {
    hold = Background::Start(
        {BinaryPath("flotilla-sim"), "topo", "hold", scenario_, "--seconds", "60"},
        dir_ + "/hold.log");
    EXPECT_TRUE(hold.WaitForOutput("\"run_id\"", 30)) << hold.Output();
    return LastJson(hold.Output());
  }

  // Pids of every process in the run's namespaces.
  std::vector<pid_t> PidsOf(const std::string& run_id) {
    std::vector<pid_t> all;
    for (const std::string& ns : NetnsOf(run_id)) {
      auto pids = NetnsPids(ns).value();
      all.insert(all.end(), pids.begin(), pids.end());
    }
    return all;
  }

  void ExpectNothingLeft(const std::string& run_id, const std::vector<pid_t>& pids) {
    EXPECT_TRUE(NetnsOf(run_id).empty());
    EXPECT_FALSE(std::filesystem::exists(std::string(kStateRoot) + "/" + run_id));
    for (pid_t pid : pids) EXPECT_FALSE(Alive(pid)) << "process " << pid << " survived";
    EXPECT_EQ(HostLinks(), host_links_);
    auto mounts = RunShell("grep -c " + run_id + " /proc/self/mountinfo");
    EXPECT_EQ(mounts.output, "0\n") << "a mount of the run is left";
  }

  std::string dir_, scenario_;
  std::vector<std::string> host_links_;
};

TEST_F(TeardownTest, StopRemovesNamespacesProcessesAndRunDirectory) {
  TopologySpec spec = OneSite(LinkShape{.delay_us = 5000}, LinkShape{.delay_us = 5000}, true, 3);
  spec.sites[0].lan_down.delay_us = 1000;
  auto run = NetworkRun::Start(spec, "stop test");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const std::string id = (*run)->run_id();
  auto pids = PidsOf(id);
  EXPECT_EQ(pids.size(), 1u + 3) << "one delay line for the WAN, one per delayed LAN port";
  EXPECT_EQ(NetnsOf(id).size(), (*run)->topology().AllNetns().size());
  ASSERT_TRUE((*run)->Stop().ok());
  ExpectNothingLeft(id, pids);
}

TEST_F(TeardownTest, DestructorTearsDownToo) {
  std::string id;
  std::vector<pid_t> pids;
  {
    auto run = NetworkRun::Start(OneSite(LinkShape{.delay_us = 5000}, {}), "destructor test");
    ASSERT_TRUE(run.ok());
    id = (*run)->run_id();
    pids = PidsOf(id);
    ASSERT_FALSE(pids.empty());
  }
  ExpectNothingLeft(id, pids);
}

TEST_F(TeardownTest, HoldTearsDownOnSigint) {
  Background hold;
  Json topo = Hold(hold);
  const std::string id = topo["run_id"];
  auto pids = PidsOf(id);
  EXPECT_EQ(pids.size(), 2u) << "one delay line per WAN";
  EXPECT_EQ(NetnsOf(id).size(), topo["netns"].size());
  ASSERT_EQ(::kill(hold.pid(), SIGINT), 0);
  EXPECT_EQ(hold.Wait(), 0) << hold.Output();
  ExpectNothingLeft(id, pids);
}

TEST_F(TeardownTest, HoldTearsDownOnSigterm) {
  Background hold;
  Json topo = Hold(hold);
  const std::string id = topo["run_id"];
  auto pids = PidsOf(id);
  ASSERT_EQ(::kill(hold.pid(), SIGTERM), 0);
  EXPECT_EQ(hold.Wait(), 0) << hold.Output();
  ExpectNothingLeft(id, pids);
}

TEST_F(TeardownTest, HoldTearsDownWhenItsTimeIsUp) {
  Background hold =
      Background::Start({BinaryPath("flotilla-sim"), "topo", "hold", scenario_, "--seconds", "1"},
                        dir_ + "/hold.log");
  ASSERT_TRUE(hold.WaitForOutput("\"run_id\"", 30)) << hold.Output();
  const std::string id = LastJson(hold.Output())["run_id"];
  auto pids = PidsOf(id);
  EXPECT_EQ(hold.Wait(), 0) << hold.Output();
  EXPECT_NE(hold.Output().find("time is up"), std::string::npos) << hold.Output();
  ExpectNothingLeft(id, pids);
}

TEST_F(TeardownTest, AbandonedClaimsAreCleaned) {
  // What RunClaim::Create leaves if it is killed before its rename.
  const std::string temp = std::string(kStateRoot) + "/.zz8abn.new";
  ASSERT_TRUE(CreateDirectories(temp).ok());
  ASSERT_TRUE(WriteFileAtomic(temp + "/lock", "").ok());
  auto clean = RunShell(BinaryPath("flotilla-sim") + " clean");
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_FALSE(std::filesystem::exists(temp));
}

TEST_F(TeardownTest, CleanRemovesEverythingAfterSigkill) {
  Background hold;
  Json topo = Hold(hold);
  const std::string id = topo["run_id"];
  // Leftovers of every kind: a process started in a device, a mount under the run.
  const std::string device = topo["sites"][0]["devices"][0]["netns"];
  Background sleeper =
      Background::Start({"ip", "netns", "exec", device, "sleep", "600"}, dir_ + "/sleep.log");
  const std::string mount = std::string(kStateRoot) + "/" + id + "/store";
  ASSERT_TRUE(CreateDirectories(mount).ok());
  ASSERT_EQ(::mount("fsim-test", mount.c_str(), "tmpfs", 0, "size=1m"), 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 250 && pids.size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pids = PidsOf(id);
  }
  ASSERT_EQ(pids.size(), 3u) << "two delay lines and the sleeper";
  ASSERT_EQ(::kill(hold.pid(), SIGKILL), 0);
  hold.Wait();
  EXPECT_EQ(PidsOf(id).size(), 3u) << "they outlive the harness";
  EXPECT_EQ(NetnsOf(id).size(), topo["netns"].size());

  auto ls = RunShell(BinaryPath("flotilla-sim") + " topo ls --json");
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  bool listed_dead = false;
  auto runs = ParseJsonStrict(ls.output);
  ASSERT_TRUE(runs.ok()) << ls.output;
  for (const Json& run : *runs) {
    if (run["run_id"] == id) listed_dead = run["state"] == "dead";
  }
  EXPECT_TRUE(listed_dead) << ls.output;

  auto clean = RunShell(BinaryPath("flotilla-sim") + " clean");
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_NE(clean.output.find("removed run " + id), std::string::npos) << clean.output;
  sleeper.Wait();
  ExpectNothingLeft(id, pids);
}

TEST_F(TeardownTest, DetachedRunsLiveUntilTopoDownAndLiveRunsAreNeverCleaned) {
  auto up = RunShell(BinaryPath("flotilla-sim") + " topo up " + scenario_);
  ASSERT_EQ(up.exit_code, 0) << up.output;
  const std::string detached = LastJson(up.output)["run_id"];
  auto pids = PidsOf(detached);
  EXPECT_EQ(pids.size(), 2u);
  auto live = NetworkRun::Start(OneSite({}, {}), "a live run");
  ASSERT_TRUE(live.ok());

  auto clean = RunShell(BinaryPath("flotilla-sim") + " clean");
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_FALSE(NetnsOf(detached).empty()) << "clean without --all keeps detached runs";
  EXPECT_EQ(NetnsOf((*live)->run_id()).size(), (*live)->topology().AllNetns().size())
      << "clean must never touch a live run";
  auto refuse = RunShell(BinaryPath("flotilla-sim") + " topo down " + (*live)->run_id());
  EXPECT_NE(refuse.exit_code, 0);
  EXPECT_NE(refuse.output.find("alive"), std::string::npos) << refuse.output;

  auto down = RunShell(BinaryPath("flotilla-sim") + " topo down " + detached);
  EXPECT_EQ(down.exit_code, 0) << down.output;
  ExpectNothingLeft(detached, pids);
  EXPECT_TRUE((*live)->Stop().ok());
}

TEST_F(TeardownTest, OrphanNamespacesWithoutARunDirectoryAreCleaned) {
  const std::string ns = "fsim-zz9orp-s0";
  ASSERT_TRUE(CreateNetns(ns).ok());
  auto clean = RunShell(BinaryPath("flotilla-sim") + " clean");
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_TRUE(NetnsOf("zz9orp").empty()) << clean.output;
}

}  // namespace
}  // namespace flotilla::sim::testing
