// The node daemon's deployment, end to end: the real tracker and
// real flotilla-node daemons on loopback, apps running in the built-in
// runtime from published images; upgrades by delta, a bad release rolled
// back everywhere, the node SIGKILLed at every step of a deployment, and a
// data directory that fills up during an update.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr char kApp[] = "web";

// The app of every release: prints the release's /etc/motd, then sleeps;
// healthy once it has run for a second. `healthy` false: an exec check that
// always fails, and a short deadline, so the switch rolls back quickly.
Json AppSpec(bool healthy = true) {
  Json spec = {{"name", kApp},
               {"command", {"/bin/sh", "-c", "echo up $(cat /etc/motd); exec sleep 1000"}},
               {"health", {{"type", "running"}, {"seconds", 1}}},
               {"restart", {{"policy", "always"}}}};
  if (!healthy) {
    spec["health"] = {
        {"type", "exec"}, {"command", {"/bin/sh", "-c", "exit 1"}}, {"interval_ms", 200}};
    spec["switch"] = {{"healthy_deadline_ms", 2000}};
  }
  return spec;
}

// `flotilla-node app ls --json` of a node's runtime: the app's entry.
Json RuntimeApp(const std::string& data_dir) {
  auto r = RunShell(BinaryPath("flotilla-node") + " app ls --json --state-dir " + data_dir +
                    "/runtime 2>/dev/null");
  auto list = Json::parse(r.output, nullptr, false);
  if (list.is_discarded() || !list.is_array()) return nullptr;
  for (const auto& app : list) {
    if (app["name"] == kApp) return app;
  }
  return nullptr;
}

std::string AppLogs(const std::string& data_dir) {
  return RunShell(BinaryPath("flotilla-node") + " app logs --state-dir " + data_dir + "/runtime " +
                  kApp + " 2>&1")
      .output;
}

// Exactly one container of the app runs, it is release `version`, and the
// node's state says so (its phase may say a newer release failed).
bool RunsOnly(const std::string& data_dir, uint64_t version) {
  Json app = RuntimeApp(data_dir);
  Json state = AppState(data_dir, kApp);
  return !app.is_null() && !state.is_null() && app["current"] == "r" + std::to_string(version) &&
         app["state"] == "running" && app["running_releases"].size() == 1 &&
         state["running_release"] == version &&
         (state["phase"] == "running" || state["phase"] == "failed");
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool StoreVerifies(const std::string& data_dir) {
  return RunShell(BinaryPath("flotilla-node") + " store --store " + data_dir + "/store verify")
             .exit_code == 0;
}

class NodeDeploy : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-deploy-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_));
  }
  void TearDown() override {
    for (auto& node : nodes_) node->Stop();
    // The apps outlive their node by design: stop them through the runtime.
    for (const auto& data : data_dirs_) {
      RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data + "/runtime " + kApp +
               " >/dev/null 2>&1");
    }
    tracker_.Stop();
    if (!mount_.empty()) ::umount2(mount_.c_str(), MNT_DETACH);
    RunShell("rm -rf " + dir_);
  }

  void Publish(int kib, const std::string& variant, bool healthy = true) {
    ASSERT_TRUE(PublishImage(dir_, repo_, kApp, kib, "deploy", variant, AppSpec(healthy)))
        << ReadTextFileBounded(dir_ + "/publish.log", 1 << 20).value_or("");
  }

  Json ConfigFor(const std::string& name, const std::string& data_dir) {
    Json c = NodeConfigFor(name, data_dir, tracker_.url(), repo_ + "/metadata/1.root.json", kApp);
    c["deploy"] = true;
    data_dirs_.push_back(data_dir);
    return c;
  }

  NodeProcess& StartNode(const std::string& name, const Json& config) {
    RunShell("mkdir -p " + dir_ + "/" + name);
    nodes_.push_back(std::make_unique<NodeProcess>());
    EXPECT_TRUE(nodes_.back()->Start(dir_ + "/" + name, config));
    return *nodes_.back();
  }

  std::string dir_, repo_, mount_;
  TrackerProcess tracker_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::string> data_dirs_;
};

TEST_F(NodeDeploy, ThreeNodesRunUpgradeByDeltaAndRollBackABadRelease) {
  Publish(512, "0");
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  std::vector<std::string> data;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "node-" + std::to_string(i);
    data.push_back(dir_ + "/" + name + "/data");
    Json c = ConfigFor(name, data.back());
    c["transfer_mode"] = "p2p";
    c["listen"] = "127.0.0." + std::to_string(2 + i) + ":0";
    StartNode(name, c);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] { return RunsOnly(data[i], 1); }, seconds(90))) << nodes_[i]->Log();
    EXPECT_NE(AppLogs(data[i]).find("up release deploy.0"), std::string::npos) << AppLogs(data[i]);
  }

  // Release 2 changes 4 KiB of the 512 KiB layer: each node rebuilds it from a delta.
  Publish(512, "1");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] { return RunsOnly(data[i], 2); }, seconds(90))) << nodes_[i]->Log();
    EXPECT_NE(AppLogs(data[i]).find("up release deploy.1"), std::string::npos) << AppLogs(data[i]);
    Json s = AppState(data[i], kApp);
    const uint64_t fetched =
        s["bytes_from_peers"].get<uint64_t>() + s["bytes_from_origin"].get<uint64_t>();
    EXPECT_LT(fetched, 128u << 10)
        << "release 2 came by delta, not as the 512 KiB layer: " << s.dump();
    EXPECT_EQ(s["previous_release"], 1);
  }

  // Release 3 never becomes healthy: rolled back on every node, 2 keeps running.
  Publish(512, "2", /*healthy=*/false);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        WaitFor([&] { return AppState(data[i], kApp)["failed_release"] == 3; }, seconds(90)))
        << nodes_[i]->Log();
    EXPECT_TRUE(RunsOnly(data[i], 2)) << RuntimeApp(data[i]).dump();
    EXPECT_NE(AppState(data[i], kApp)["last_error"].get<std::string>().find("rolled back"),
              std::string::npos);
  }
  // The tracker heard it from every node, with what failed: the health gate.
  EXPECT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(repo_ + "/tracker.db",
                              "SELECT count(*) FROM device_status WHERE state='rolled_back' AND "
                              "release='2' AND failure='health'") == "3\n";
      },
      seconds(15)))
      << QueryTrackerDb(repo_ + "/tracker.db", "SELECT * FROM device_status");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(nodes_[i]->Stop(), 0);
    EXPECT_TRUE(StoreVerifies(data[i]));
    EXPECT_TRUE(RunsOnly(data[i], 2)) << "the app outlives its node";
  }
}

TEST_F(NodeDeploy, KilledAtEveryStepOfADeploymentOneHealthyReleaseRuns) {
  Publish(256, "0");
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  const std::string data = dir_ + "/n/data";
  Json config = ConfigFor("n", data);
  {
    NodeProcess& node = StartNode("n", config);
    ASSERT_TRUE(WaitFor([&] { return RunsOnly(data, 1); }, seconds(60))) << node.Log();
    EXPECT_EQ(node.Stop(), 0);
  }
  // The node is SIGKILLed from outside the moment its log shows the step
  // (each line is written right after that step's state is saved), so every
  // kill lands in that step or just after it. The runtime's own steps (the
  // switch) are interrupted at every durable boundary by
  // tests/runtime/runtime_crash_test.cpp.
  uint64_t version = 1;
  for (const char* step : {"fetched", "deploying", "deployed", "collecting"}) {
    SCOPED_TRACE(std::string("killed at ") + step);
    ++version;
    const std::string release = "release " + std::to_string(version);
    // The lines that show the step, in this order.
    const std::map<std::string, std::vector<std::string>> lines = {
        {"fetched", {release + " fetched, every layer rebuilt"}},
        {"deploying", {"deploying " + release}},
        {"deployed", {release + " runs and is healthy"}},
        {"collecting", {release + " runs and is healthy", "collecting garbage"}},
    };
    Publish(256, std::to_string(version));
    const size_t skip = nodes_.back()->Log().size();  // the log of this data directory so far
    NodeProcess& killed = StartNode("n", config);
    auto seen = [&] {
      const std::string log = killed.Log();
      size_t at = skip;
      for (const std::string& line : lines.at(step)) {
        at = log.find(line, at);
        if (at == std::string::npos) return false;
      }
      return true;
    };
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (!seen() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    killed.Kill();  // SIGKILL, reaped
    ASSERT_TRUE(seen()) << "the node never reached " << step << killed.Log();
    // The state already names the new release when the kill came after the
    // switch: wait for this process to be up before stopping it.
    const size_t starts = Count(killed.Log(), "node n started");
    NodeProcess& restarted = StartNode("n", config);
    ASSERT_TRUE(
        WaitFor([&] { return Count(restarted.Log(), "node n started") > starts; }, seconds(30)))
        << restarted.Log();
    ASSERT_TRUE(WaitFor([&] { return RunsOnly(data, version); }, seconds(60)))
        << RuntimeApp(data).dump() << AppState(data, kApp).dump() << restarted.Log();
    if (std::string_view(step) == "collecting") {
      // The runtime's old releases are pruned on the app's worker, after the
      // switch: the last node stops once that is done.
      WaitFor(
          [&] {
            return RunShell("ls " + data + "/runtime/apps/web/releases | wc -l").output == "2\n";
          },
          seconds(30));
    }
    EXPECT_EQ(restarted.Stop(), 0);
    EXPECT_TRUE(StoreVerifies(data));
    EXPECT_TRUE(RunsOnly(data, version));
  }
  // Collected: only the running and the previous release stay (two layers
  // each: /etc/motd differs in the bottom one too).
  EXPECT_EQ(RunShell("ls " + data + "/store/layers | wc -l").output, "4\n") << nodes_.back()->Log();
  EXPECT_EQ(RunShell("ls " + data + "/runtime/apps/web/releases").output,
            "r" + std::to_string(version - 1) + "\nr" + std::to_string(version) + "\n");
  EXPECT_EQ(AppState(data, kApp)["kept"].size(), 2u);
}

// The data directory on a small filesystem of its own.
TEST_F(NodeDeploy, AFullDiskFailsTheUpdateCleanlyAndTheRunningAppStays) {
  mount_ = dir_ + "/disk";
  ASSERT_EQ(RunShell("truncate -s 128M " + dir_ + "/disk.img && mkfs.ext4 -q -F " + dir_ +
                     "/disk.img && mkdir -p " + mount_ + " && mount -o loop " + dir_ +
                     "/disk.img " + mount_)
                .exit_code,
            0);
  Publish(256, "0");
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  const std::string data = mount_ + "/data";
  Json config = ConfigFor("n", data);
  config["bandwidth"] = {{"down_kib_s", 1024}};
  config["http_chunk_kib"] = 64;
  config["max_backoff_s"] = 4;  // the retries of release 2 wait 1, 2, then 4 s
  NodeProcess& node = StartNode("n", config);
  ASSERT_TRUE(WaitFor([&] { return RunsOnly(data, 1); }, seconds(60))) << node.Log();

  // Release 2 brings 6 MiB of new bytes at 1 MiB/s; once they flow, the
  // disk fills up under the node.
  ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 6 << 10, "other", "0", AppSpec()));
  ASSERT_TRUE(WaitFor(  // the node reports its progress every second
      [&] {
        auto done = QueryTrackerDb(repo_ + "/tracker.db",
                                   "SELECT progress_done FROM device_status WHERE release='2'");
        return std::strtoull(done.c_str(), nullptr, 10) > 256 << 10;
      },
      seconds(60)))
      << node.Log();
  RunShell("dd if=/dev/zero of=" + mount_ + "/filler bs=1M 2>/dev/null; sync");
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(mount_.c_str(), &fs), 0);
  ASSERT_LT(uint64_t{fs.f_bavail} * fs.f_frsize, 1u << 20) << "the disk is full";
  // The write fails with ENOSPC; the retries that follow are refused by the
  // free-space check until there is room again.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string error = AppState(data, kApp)["last_error"];
        return node.Log().find("No space left on device") != std::string::npos &&
               error.find("ResourceExhausted") != std::string::npos;
      },
      seconds(60)))
      << AppState(data, kApp).dump() << node.Log();
  // Each retry waits twice as long as the one before, up to max_backoff_s.
  EXPECT_TRUE(
      WaitFor([&] { return node.Log().find("release 2 is retried in 4 s") != std::string::npos; },
              seconds(30)))
      << node.Log();
  EXPECT_NE(node.Log().find("release 2 is retried in 2 s"), std::string::npos);
  EXPECT_EQ(node.Log().find("release 2 is retried in 8 s"), std::string::npos);
  // Partial files are gone; release 1 runs as before and was not marked bad.
  const std::string partial_files = "find " + data + "/artifacts -type f; [ ! -d " + data +
                                    "/tmp ] || find " + data + "/tmp -type f";
  EXPECT_TRUE(WaitFor([&] { return RunShell(partial_files).output.empty(); }, seconds(10)))
      << RunShell(partial_files).output;
  EXPECT_TRUE(std::filesystem::is_empty(data + "/store/staging"));
  EXPECT_TRUE(RunsOnly(data, 1));
  EXPECT_EQ(AppState(data, kApp)["failed_release"], 0);
  EXPECT_NE(AppLogs(data).find("up release deploy.0"), std::string::npos);

  // Room again: the next refresh retries release 2, and it runs.
  ::unlink((mount_ + "/filler").c_str());
  ASSERT_TRUE(WaitFor([&] { return RunsOnly(data, 2); }, seconds(90)))
      << AppState(data, kApp).dump() << node.Log();
  EXPECT_EQ(node.Stop(), 0);
  EXPECT_TRUE(StoreVerifies(data));
}

TEST_F(NodeDeploy, AReleaseOverTheDiskBudgetIsRefusedBeforeAnyByteMoves) {
  Publish(256, "0");
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  const std::string data = dir_ + "/n/data";
  Json config = ConfigFor("n", data);
  config["disk_budget_mib"] = 8;  // release 1 needs ~4 MiB: its artifacts and layers
  NodeProcess& node = StartNode("n", config);
  ASSERT_TRUE(WaitFor([&] { return RunsOnly(data, 1); }, seconds(60))) << node.Log();
  ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 6 << 10, "other", "0", AppSpec()));
  ASSERT_TRUE(WaitFor(
      [&] {
        return AppState(data, kApp)["last_error"].get<std::string>().find("disk_budget_mib") !=
               std::string::npos;
      },
      seconds(30)))
      << node.Log();
  Json s = AppState(data, kApp);
  EXPECT_EQ(s["bytes_from_origin"], 0) << s.dump();
  EXPECT_EQ(s["failure"], "disk") << s.dump();
  // The tracker hears a failure the node retries by itself (a rollout keeps it pending).
  EXPECT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(repo_ + "/tracker.db",
                              "SELECT state, failure FROM device_status WHERE release='2'") ==
               "failed|disk\n";
      },
      seconds(15)))
      << QueryTrackerDb(repo_ + "/tracker.db", "SELECT * FROM device_status");
  EXPECT_TRUE(RunsOnly(data, 1));
  EXPECT_EQ(node.Stop(), 0);
}

// The newest release is another platform's (an arm64 image on this amd64
// host, or the other way round): the node fetches none of its bytes (its
// counters, and the tracker's per artifact), keeps the running release, and
// says why in its state and its report.
TEST_F(NodeDeploy, AReleaseOfAnotherPlatformIsNeverFetchedAndTheRunningAppStays) {
  Publish(256, "0");
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  const std::string data = dir_ + "/n/data";
  NodeProcess& node = StartNode("n", ConfigFor("n", data));
  ASSERT_TRUE(WaitFor([&] { return RunsOnly(data, 1); }, seconds(60))) << node.Log();
  const std::string host = RunShell("uname -m").output;
  const std::string other = host == "aarch64\n" ? "amd64" : "arm64";
  ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 256, "deploy", "2", AppSpec(), other))
      << ReadTextFileBounded(dir_ + "/publish.log", 1 << 20).value_or("");
  const std::string why = "release 2 of web is for linux/" + other + "; this device runs linux/";
  ASSERT_TRUE(WaitFor(
      [&] {
        return AppState(data, kApp)["last_error"].get<std::string>().find(why) != std::string::npos;
      },
      seconds(30)))
      << node.Log();
  Json s = AppState(data, kApp);
  EXPECT_EQ(s["failed_release"], 2) << s.dump();
  EXPECT_EQ(s["bytes_from_origin"], 0) << s.dump();
  EXPECT_EQ(s["failure"], "verification") << s.dump();
  auto artifacts = RunShell(
      "python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))[\"signed\"][\"targets\"]"
      "[\"apps/web/release-2.json\"][\"custom\"][\"flotilla\"]; "
      "[print(a[\"sha256\"]) for a in t[\"artifacts\"]]' " +
      repo_ + "/metadata/targets.json");
  ASSERT_EQ(artifacts.exit_code, 0) << artifacts.output;
  std::istringstream shas(artifacts.output);
  int count = 0;
  for (std::string sha; shas >> sha; ++count) {
    EXPECT_EQ(ArtifactBytesServed(tracker_.port(), sha), 0u) << sha;
  }
  EXPECT_GE(count, 2);
  EXPECT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(repo_ + "/tracker.db",
                              "SELECT state, failure FROM device_status WHERE release='2'") ==
               "failed|verification\n";
      },
      seconds(15)))
      << QueryTrackerDb(repo_ + "/tracker.db", "SELECT * FROM device_status");
  EXPECT_NE(QueryTrackerDb(repo_ + "/tracker.db",
                           "SELECT count(*) FROM failures WHERE message LIKE '%" + why + "%'"),
            "0\n");
  EXPECT_TRUE(RunsOnly(data, 1));
  EXPECT_EQ(node.Stop(), 0);
}

}  // namespace
}  // namespace flotilla::testing
