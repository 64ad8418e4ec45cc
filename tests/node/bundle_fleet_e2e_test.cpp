// Fleet documents in offline bundles (docs/bundle.md, "Fleet documents in a
// bundle"), end to end with the real binaries: a node the fleet manages runs
// release 1 of web, then its tracker goes away; release 2 is published and
// the fleet publishes each device's document; `flotilla-tracker bundle
// --device` carries them. The node, with no tracker:
//   - deploys release 2 when the bundle carries its own document naming it
//     (and waits, as without fleet files, when the bundle carries only
//     another device's document);
//   - refuses release 2 when its document pins it to release 1, and when
//     release 2 is recalled, keeps running release 1 with no layer written,
//     and accepts the newer document (the running daemon, then a stopped node).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "metadata/tuf_time.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr char kApp[] = "web";

class BundleFleetE2e : public ::testing::Test {
 protected:
  // The node follows the fleet's document (web release 1) and runs it; then
  // a second device enrols and the tracker stops: the site is offline.
  void SetUp() override {
    dir_ = std::filesystem::path(MakeTempDir("bundle-fleet-")).lexically_normal();
    repo_ = dir_ + "/repo";
    data_ = dir_ + "/node/data";
    ASSERT_TRUE(InitRepository(dir_, repo_));
    Publish("0");
    ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
    Tracker("fleet init --offline-keys " + dir_ + "/fleet-off");
    Json c = NodeConfigFor("n", data_, tracker_.url(), repo_ + "/metadata/1.root.json", kApp);
    c["deploy"] = true;
    c["max_backoff_s"] = 2;
    RunShell("mkdir -p " + dir_ + "/node");
    config_path_ = dir_ + "/node.json";
    ASSERT_TRUE(WriteFileAtomic(config_path_, c.dump()).ok());
    ASSERT_TRUE(node_.Start(dir_ + "/node", c));
    ASSERT_TRUE(
        WaitFor([&] { return std::filesystem::exists(data_ + "/credentials.json"); }, seconds(30)))
        << node_.Log();
    device_id_ = Json::parse(Text(data_ + "/credentials.json"))["device_id"];
    other_id_ = EnrolDevice(tracker_.port(), "other").device_id;
    ASSERT_FALSE(other_id_.empty());
    Tracker("group create all --select all");
    Tracker("app assign web --group all");
    Tracker("fleet publish");
    ASSERT_TRUE(WaitFor([&] { return Runs(1) && NodeStatus()["fleet"]["state"] == "following"; },
                        seconds(60)))
        << node_.Log();
    tracker_.Stop();
    Publish("1");
  }
  void TearDown() override {
    node_.Stop();
    tracker_.Stop();
    RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ + "/runtime " + kApp +
             " >/dev/null 2>&1");
    RunShell("rm -rf " + dir_);
  }

  static std::string Text(const std::string& path) {
    return ReadTextFileBounded(path, 1 << 20).value_or("");
  }
  void Publish(const std::string& variant) {
    Json spec = {{"name", kApp},
                 {"command", {"/bin/sh", "-c", "exec sleep 1000"}},
                 {"health", {{"type", "running"}, {"seconds", 1}}},
                 {"restart", {{"policy", "always"}}}};
    ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 64, "fleet", variant, spec))
        << Text(dir_ + "/publish.log");
  }
  // A tracker command on the repository (`serve` need not run).
  CommandResult Tracker(const std::string& args, bool must_succeed = true) {
    auto run =
        RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ + " 2>&1");
    if (must_succeed) {
      EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
    }
    return run;
  }
  // A bundle of web release 2 (deltas from 1) carrying the fleet files of `devices`.
  std::string Bundle(const std::string& name, const std::vector<std::string>& devices) {
    std::string args = "bundle --app web --release 2 --from 1 --out " + dir_ + "/" + name;
    for (const auto& d : devices) args += " --device " + d;
    auto made = Tracker(args);
    EXPECT_NE(
        made.output.find("the fleet documents of " + std::to_string(devices.size()) + " device(s)"),
        std::string::npos)
        << made.output;
    return dir_ + "/" + name;
  }
  CommandResult Import(const std::string& bundle) {
    return RunShell(BinaryPath("flotilla-node") + " import --config " + config_path_ + " " +
                    bundle + " 2>&1");
  }
  Json NodeStatus() {
    auto r = RunShell("timeout 10 " + BinaryPath("flotilla-node") + " status --json --config " +
                      config_path_ + " 2>/dev/null");
    auto json = Json::parse(r.output, nullptr, false);
    return json.is_discarded() ? Json::object() : json;
  }
  bool Runs(uint64_t version) {
    Json state = AppState(data_, kApp);
    return !state.is_null() && state["running_release"] == version && state["phase"] == "running";
  }
  // The layers in the store (the running daemon holds its lock: its directory, listed).
  std::set<std::string> StoreLayers() {
    std::set<std::string> layers;
    for (const auto& e : std::filesystem::directory_iterator(data_ + "/store/layers")) {
      layers.insert(e.path().filename());
    }
    return layers;
  }
  uint64_t AcceptedVersion() {
    auto json = ParseJsonStrict(Text(data_ + "/fleet/accepted.json"));
    return json.ok() ? (*json)["targets_version"].get<uint64_t>() : 0;
  }
  static uint64_t TimestampVersion(const std::string& dir) {
    auto json = ParseJsonStrict(Text(dir + "/timestamp.json"));
    return json.ok() ? (*json)["signed"]["version"].get<uint64_t>() : 0;
  }
  uint64_t PublishedVersion() {
    auto state = Text(repo_ + "/fleet/devices/" + device_id_ + "/state");
    // The header: fleet-device-state-1 ROOT TARGETS ...
    std::istringstream header(state.substr(0, state.find('\n')));
    std::string format;
    uint64_t root = 0, targets = 0;
    header >> format >> root >> targets;
    return targets;
  }

  std::string dir_, repo_, data_, config_path_, device_id_, other_id_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

// Another device's document only: imported, not deployed (the node's own
// document still names release 1). Its own document naming release 2: the
// running daemon deploys it with the tracker unreachable.
TEST_F(BundleFleetE2e, AManagedNodeDeploysTheReleaseItsCarriedDocumentNames) {
  Tracker("fleet publish");
  const std::string others = Bundle("others.bundle", {other_id_});
  auto imported = Import(others);
  ASSERT_EQ(imported.exit_code, 0) << imported.output << node_.Log();
  EXPECT_NE(imported.output.find("the bundle carries no fleet document for this device"),
            std::string::npos)
      << imported.output;
  EXPECT_NE(imported.output.find("a fleet document governs this node: it deploys release 2 when "
                                 "the document names it"),
            std::string::npos)
      << imported.output;
  std::this_thread::sleep_for(seconds(3));
  EXPECT_TRUE(Runs(1));

  const std::string own = Bundle("own.bundle", {other_id_, device_id_});
  imported = Import(own);
  ASSERT_EQ(imported.exit_code, 0) << imported.output << node_.Log();
  EXPECT_NE(imported.output.find("it names web release 2"), std::string::npos) << imported.output;
  EXPECT_NE(imported.output.find("names it; the node deploys it now"), std::string::npos)
      << imported.output;
  ASSERT_TRUE(WaitFor([&] { return Runs(2); }, seconds(30))) << node_.Log();
  EXPECT_EQ(AcceptedVersion(), PublishedVersion());
  EXPECT_EQ(AppState(data_, kApp)["bytes_from_origin"], 0);
}

// Pinned to release 1, then release 2 recalled: each bundle is refused for
// deployment with the document's words, no layer is written, release 1 keeps
// running, and the newer document is accepted (by the running daemon, then
// by a stopped node's import).
TEST_F(BundleFleetE2e, APinnedDeviceOrARecalledReleaseRefusesTheBundle) {
  const std::string refusal = "the fleet holds this device at web release 1 (its fleet document v";
  const std::string ending = "not release 2: release 2 is not deployed";
  Tracker("pin --device n --app web --release 1");
  Tracker("fleet publish");
  const std::set<std::string> layers_before = StoreLayers();
  ASSERT_FALSE(layers_before.empty());
  auto refused = Import(Bundle("pinned.bundle", {device_id_}));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find(refusal), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find(ending), std::string::npos) << refused.output;
  EXPECT_EQ(NodeStatus()["import"]["step"], "refused");
  EXPECT_EQ(StoreLayers(), layers_before);
  EXPECT_EQ(AcceptedVersion(), PublishedVersion());
  // The bundle's image metadata is trusted (the document was checked against it).
  EXPECT_EQ(TimestampVersion(data_ + "/tuf"), TimestampVersion(repo_ + "/metadata"));
  std::this_thread::sleep_for(seconds(2));
  EXPECT_TRUE(Runs(1));
  EXPECT_EQ(AppState(data_, kApp)["ready_release"], 1);
  ASSERT_EQ(node_.Stop(), 0);

  Tracker("unpin --device n --app web");
  Tracker("recall --app web --release 2");
  Tracker("fleet publish");
  const std::string state_before = Text(data_ + "/state.json");
  refused = Import(Bundle("recalled.bundle", {device_id_}));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("import: refused"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find(refusal), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find(ending), std::string::npos) << refused.output;
  EXPECT_EQ(StoreLayers(), layers_before);
  EXPECT_EQ(Text(data_ + "/state.json"), state_before);
  EXPECT_EQ(AcceptedVersion(), PublishedVersion());
  EXPECT_FALSE(std::filesystem::exists(data_ + "/tmp/import"));
}

// Weeks offline: release 3 carries a 30-day offline window under a root that
// caps windows at 90 days; the device's clock is 10 days past the window's
// start, so its image and fleet metadata (1 and 7 days) have expired and the
// tracker is away. A bundle whose carried document names release 3 is
// imported and deployed; the fleet floor moves only to the window's start.
// Pinned to release 1, the same expired fleet files are refused, naming why.
TEST_F(BundleFleetE2e, UnderAnOfflineWindowExpiredFleetFilesStandOnlyForTheWindowedRelease) {
  ASSERT_EQ(node_.Stop(), 0);
  Tracker("stage-root --offline-window-max-days 90");
  const std::string root2 = repo_ + "/pending/2.root.json";
  auto signed_root = RunShell(BinaryPath("flotilla-tracker") + " sign " + root2 + " --key " +
                              repo_ + "/keys/root.key 2>&1");
  ASSERT_EQ(signed_root.exit_code, 0) << signed_root.output;
  Tracker("accept " + root2);
  Json spec = {{"name", kApp},
               {"command", {"/bin/sh", "-c", "exec sleep 1000"}},
               {"health", {{"type", "running"}, {"seconds", 1}}},
               {"restart", {{"policy", "always"}}}};
  ASSERT_TRUE(
      PublishImage(dir_, repo_, kApp, 64, "fleet", "2", spec, "", "--offline-valid-days 30"))
      << Text(dir_ + "/publish.log");
  auto targets = Json::parse(Text(repo_ + "/metadata/targets.json"));
  const std::string start_text =
      targets["signed"]["targets"]["apps/web/release-3.json"]["custom"]["offline_window"]["start"];
  const WallTime start = *metadata::ParseTufTime(start_text);
  const std::chrono::hours day(24);
  auto set_device_time = [&](WallTime t) {
    for (const std::string dir : {data_ + "/tuf", data_ + "/fleet/tuf"}) {
      ASSERT_TRUE(WriteFileAtomic(dir + "/time-floor", metadata::FormatTufTime(t) + "\n").ok());
    }
  };
  auto bundle = [&](const std::string& name) {
    Tracker("bundle --app web --release 3 --out " + dir_ + "/" + name + " --device " + device_id_);
    return dir_ + "/" + name;
  };

  Tracker("pin --device n --app web --release 1");
  Tracker("fleet publish");
  const std::string pinned = bundle("pinned.bundle");
  set_device_time(start + 10 * day);
  auto refused = Import(pinned);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("fleet metadata expired at"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("offline it stands only for the release whose window it names, "
                                "and it names web release 1, not release 3"),
            std::string::npos)
      << refused.output;

  Tracker("unpin --device n --app web");
  Tracker("fleet publish");
  const std::string chosen = bundle("chosen.bundle");
  set_device_time(start + 10 * day);
  auto imported = Import(chosen);
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_NE(imported.output.find("imported web release 3"), std::string::npos) << imported.output;
  EXPECT_EQ(Text(data_ + "/fleet/tuf/time-floor"),
            metadata::FormatTufTime(start + 10 * day) + "\n");
  ASSERT_TRUE(node_.Start(dir_ + "/node", Json::parse(Text(config_path_))));
  EXPECT_TRUE(WaitFor([&] { return Runs(3); }, seconds(60))) << node_.Log();
}

// The tracker refuses a device it has no fleet repository for, writing nothing.
TEST_F(BundleFleetE2e, TheBundleCommandRefusesAnUnknownDevice) {
  auto made = Tracker(
      "bundle --app web --release 2 --from 1 --out " + dir_ + "/x.bundle --device no-such-device",
      /*must_succeed=*/false);
  EXPECT_EQ(made.exit_code, 1) << made.output;
  EXPECT_NE(made.output.find("--device no-such-device: no fleet repository for it"),
            std::string::npos)
      << made.output;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.bundle"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.bundle.tmp"));
}

}  // namespace
}  // namespace flotilla::testing
