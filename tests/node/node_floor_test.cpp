// The release floor end to end (docs/signing.md, "The release floor";
// docs/fleet.md, "What a node checks"): a real tracker whose image repository
// keys are offline (init --offline-keys, an ECDSA app key) and a real
// flotilla-node following its fleet document. The floor is raised by the app
// key (floor, sign, accept); the node then refuses the document that still
// pins it below, and fleet publish moves it up. An attacker holding the
// tracker's whole keys/ directory and database signs, with the online fleet
// keys, a document pinning the device below the floor: the node refuses it and
// keeps its release.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"
#include "tracker/fleet/fleet_repository.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

class NodeFloorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-floor-");
    repo_ = dir_ + "/repo";
    data_ = dir_ + "/node";
    ASSERT_TRUE(InitOfflineRepository(dir_, repo_, "kiosk", /*ecdsa=*/true))
        << FileText(dir_ + "/offline.log");
    for (int release : {1, 2}) {
      ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "1", std::to_string(release)))
          << FileText(dir_ + "/publish.log");
      ASSERT_TRUE(SignRelease(dir_, repo_, "kiosk", release)) << FileText(dir_ + "/offline.log");
    }
    // The fleet root is offered through the offline top-level targets key.
    Json init = Json::parse(Tracker("fleet init --json --offline-keys " + dir_ + "/fleet-off"));
    const std::string pending = init["pending"];
    Run("sign '" + pending + "' --key " + dir_ + "/off/targets.key");
    Tracker("accept '" + pending + "'");
    // serve's rollout duty would send the raised floor by itself (tested in
    // tests/tracker/rollout_e2e_test.cpp); here it looks once, at start, so
    // the document below the floor stays until the test's `fleet publish`.
    ASSERT_TRUE(tracker_.Start(dir_, repo_, {"--rollout-interval", "3600"})) << tracker_.Log();
  }
  void TearDown() override {
    node_.Stop();
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  static std::string FileText(const std::string& path) {
    return ReadTextFileBounded(path, 1 << 20).value_or("");
  }
  // Runs flotilla-tracker ARGS on the repository (stderr too); expects `exit_code`.
  std::string Tracker(const std::string& args, int exit_code = 0) {
    return Run(args + " --repository " + repo_, exit_code);
  }
  // Runs flotilla-tracker ARGS as given (sign: no repository, where the key lives).
  std::string Run(const std::string& args, int exit_code = 0) {
    auto run = RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
    EXPECT_EQ(run.exit_code, exit_code) << args << "\n" << run.output;
    return run.output;
  }
  Json Status() {
    auto run = RunShell(BinaryPath("flotilla-node") + " status --json --config " + dir_ +
                        "/node.json 2>&1");
    auto json = ParseJsonStrict(run.output);
    return run.exit_code == 0 && json.ok() ? *json : Json();
  }
  bool WaitReady(uint64_t release) {
    return WaitFor(
        [&] {
          Json a = AppState(data_, "kiosk");
          return a.is_object() && a["ready_release"] == release;
        },
        seconds(60));
  }
  bool WaitFleetError(const std::string& part) {
    return WaitFor(
        [&] {
          Json s = Status();
          return s.is_object() &&
                 s["fleet"]["last_error"].get<std::string>().find(part) != std::string::npos;
        },
        seconds(30));
  }
  // The node holds release `release`, fetches nothing and says why.
  void ExpectKeepsRunning(uint64_t release, const std::string& why) {
    std::this_thread::sleep_for(seconds(2));  // a few more polls
    Json a = AppState(data_, "kiosk");
    EXPECT_EQ(a["ready_release"], release) << why;
    EXPECT_EQ(a["target_release"], 0) << why;
    Json s = Status();
    EXPECT_EQ(s["fleet"]["state"], "holding") << s.dump();
    EXPECT_NE(s["fleet"]["last_error"].get<std::string>().find(why), std::string::npos) << s.dump();
    EXPECT_NE(node_.Log().find(why), std::string::npos) << why;
  }
  // A fleet document for this device naming release `release` of kiosk with
  // the exact length and hashes the app role signed for it.
  std::string Document(int release) {
    Json role = Json::parse(FileText(repo_ + "/metadata/apps%2Fkiosk.json"));
    const std::string name = "apps/kiosk/release-" + std::to_string(release) + ".json";
    Json target = role["signed"]["targets"][name];
    Json doc = {{"device", device_id_},
                {"apps",
                 {{"kiosk",
                   {{"release", release},
                    {"target", name},
                    {"length", target["length"]},
                    {"hashes", target["hashes"]}}}}}};
    return *CanonicalJson(doc);
  }

  std::string dir_, repo_, data_, device_id_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

TEST_F(NodeFloorTest, TheAppKeysFloorHoldsAgainstTheTrackersKeysAndDatabase) {
  Json config =
      NodeConfigFor("kiosk-1", data_, tracker_.url(), repo_ + "/metadata/1.root.json", "kiosk");
  config["max_backoff_s"] = 2;
  ASSERT_TRUE(node_.Start(dir_, config));
  ASSERT_TRUE(WaitReady(2)) << node_.Log();
  device_id_ = Json::parse(FileText(data_ + "/credentials.json"))["device_id"];

  // Pinned to release 1 by the fleet.
  Tracker("group create all --select all");
  Tracker("app assign kiosk --group all");
  Tracker("pin --device kiosk-1 --app kiosk --release 1");
  Tracker("fleet publish");
  ASSERT_TRUE(WaitReady(1)) << node_.Log();

  // The floor, staged for the app key: not in force until signed and accepted.
  Json staged = Json::parse(Tracker("floor --app kiosk --release 2 --json"));
  EXPECT_EQ(staged["role"], "apps/kiosk");
  const std::string pending = staged["pending"];
  EXPECT_EQ(Json::parse(Tracker("floor --show --app kiosk --json"))["floor"], 0);
  EXPECT_NE(Tracker("accept '" + pending + "'", 1).find("signature"), std::string::npos);
  const std::string summary = Run("sign '" + pending + "' --key " + dir_ + "/kiosk.pem");
  EXPECT_NE(summary.find("the floor of kiosk is release 2"), std::string::npos) << summary;
  Tracker("accept '" + pending + "'");
  EXPECT_EQ(Json::parse(Tracker("floor --show --app kiosk --json"))["floor"], 2);
  // It only goes up, and only to a release that exists.
  EXPECT_NE(Tracker("floor --app kiosk --release 1", 1).find("only goes up"), std::string::npos);
  EXPECT_NE(Tracker("floor --app kiosk --release 9", 1).find("no release 9"), std::string::npos);

  // The document that pins 1 is now below the floor: refused as a whole,
  // the node keeps running 1 until the fleet sends something at the floor.
  ASSERT_TRUE(WaitFleetError("below the floor 2")) << node_.Log();
  ExpectKeepsRunning(1, "below the floor 2");
  EXPECT_NE(Tracker("pin --device kiosk-1 --app kiosk --release 1", 1).find("below its floor 2"),
            std::string::npos);
  Json desired = Json::parse(Tracker("fleet desired --device kiosk-1 --json"));
  EXPECT_EQ(desired["apps"][0]["release"], 2) << desired.dump();
  EXPECT_NE(desired["apps"][0]["reason"].get<std::string>().find("below the floor 2"),
            std::string::npos)
      << desired.dump();
  Tracker("fleet publish");
  ASSERT_TRUE(WaitReady(2)) << node_.Log();
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
      << node_.Log();

  // The attacker: the tracker's keys/ (online fleet keys) sign a document
  // pinning release 1, with the length and hashes the app key signed for it.
  {
    auto signer =
        tracker::FleetSigner::Open(tracker::RepositoryLayout{repo_}, SystemClock::Instance());
    ASSERT_TRUE(signer.ok()) << signer.status().ToString();
    auto published = (*signer)->Publish(device_id_, Document(1));
    ASSERT_TRUE(published.ok()) << published.status().ToString();
    ASSERT_TRUE(*published);
  }
  ASSERT_TRUE(WaitFleetError("below the floor 2")) << node_.Log();
  ExpectKeepsRunning(2, "app kiosk release 1 is below the floor 2");
}

}  // namespace
}  // namespace flotilla::testing
