// A node following its signed fleet document, end to end: the real tracker
// (init, publish, fleet init, fleet publish, serve) and a real flotilla-node
// daemon on loopback in http-only mode. The node follows an app assignment,
// a pin to an older release (installed) and the unpin (newest again); keeps
// its releases across a restart with the tracker away; and refuses, each with
// its reason in its log and status, a document naming a release whose hashes
// differ from the image repository's, a forged document (bad signature), another
// device's document, a replayed older version and expired metadata, running
// what it ran all along. After `fleet rotate-root` (a new root key and new
// online keys) it walks to the new root and keeps following; metadata the
// old timestamp key signs is refused; a node that first trusts the fleet
// root after the rotation takes the new root and follows too.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "layerstore/types.h"
#include "metadata/repository.h"
#include "metadata/tuf_signing.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/storage/device_state.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

class NodeFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-fleet-");
    repo_ = dir_ + "/repo";
    data_ = dir_ + "/node";
    ASSERT_TRUE(InitRepository(dir_, repo_)) << FileText(dir_ + "/init.log");
    for (const char* seed : {"1", "2"}) {
      ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, seed)) << FileText(dir_ + "/publish.log");
    }
    ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
    auto init = Tracker("fleet init --offline-keys " + dir_ + "/fleet-off");
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  void TearDown() override {
    node_.Stop();
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  static std::string FileText(const std::string& path) {
    return ReadTextFileBounded(path, 1 << 20).value_or("");
  }
  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ +
                    " 2>&1");
  }
  void Fleet(const std::string& args) {
    auto run = Tracker(args);
    ASSERT_EQ(run.exit_code, 0) << args << "\n" << run.output;
  }
  void StartNode(const std::vector<std::string>& apps) {
    Json config =
        NodeConfigFor("kiosk-1", data_, tracker_.url(), repo_ + "/metadata/1.root.json", "kiosk");
    config["apps"] = apps;
    config["max_backoff_s"] = 2;
    ASSERT_TRUE(node_.Start(dir_, config));
    ASSERT_TRUE(
        WaitFor([&] { return std::filesystem::exists(data_ + "/credentials.json"); }, seconds(30)))
        << node_.Log();
    device_id_ = Json::parse(FileText(data_ + "/credentials.json"))["device_id"];
  }
  Json Status() {
    auto run = RunShell(BinaryPath("flotilla-node") + " status --json --config " + dir_ +
                        "/node.json 2>&1");
    auto json = ParseJsonStrict(run.output);
    return run.exit_code == 0 && json.ok() ? *json : Json();
  }
  Json AppOf(const Json& status, const std::string& app) {
    if (!status.is_object()) return Json();
    for (const auto& a : status["apps"]) {
      if (a["name"] == app) return a;
    }
    return Json();
  }
  bool WaitReady(const std::string& app, uint64_t release, seconds timeout = seconds(60)) {
    return WaitFor(
        [&] {
          Json a = AppState(data_, app);
          return a.is_object() && a["ready_release"] == release;
        },
        timeout);
  }
  // Waits until `status` shows a fleet error holding `part`.
  bool WaitFleetError(const std::string& part, seconds timeout = seconds(30)) {
    return WaitFor(
        [&] {
          Json s = Status();
          return s.is_object() &&
                 s["fleet"]["last_error"].get<std::string>().find(part) != std::string::npos;
        },
        timeout);
  }
  // The node still has release `release` of kiosk ready and fetches nothing.
  void ExpectKeepsRunning(uint64_t release, const std::string& why) {
    Json a = AppState(data_, "kiosk");
    EXPECT_EQ(a["ready_release"], release) << why;
    EXPECT_EQ(a["target_release"], 0) << why;
    Json s = Status();
    EXPECT_EQ(s["fleet"]["state"], "holding") << why << ": " << s.dump();
    EXPECT_NE(node_.Log().find(why), std::string::npos) << why;
  }
  // Starts the node following kiosk, assigns kiosk to every device, publishes
  // the fleet and waits until the node follows it and has release 2 ready.
  void FollowKioskFromTheFleet() {
    ASSERT_NO_FATAL_FAILURE(StartNode({"kiosk"}));
    Fleet("group create all --select all");
    Fleet("app assign kiosk --group all");
    Fleet("fleet publish");
    ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
        << node_.Log();
    ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
  }
  std::string DeviceDir(const std::string& id) { return repo_ + "/fleet/devices/" + id; }
  // A fleet document for `device` choosing release `release` of kiosk, with
  // the image repository's length and hashes unless `sha256` is given.
  std::string Document(const std::string& device, int release, const std::string& sha256 = "") {
    Json targets = Json::parse(FileText(repo_ + "/metadata/targets.json"));
    const std::string name = "apps/kiosk/release-" + std::to_string(release) + ".json";
    Json target = targets["signed"]["targets"][name];
    Json hashes = sha256.empty() ? target["hashes"] : Json{{"sha256", sha256}};
    Json doc = {{"device", device},
                {"apps",
                 {{"kiosk",
                   {{"release", release},
                    {"target", name},
                    {"length", target["length"]},
                    {"hashes", hashes}}}}}};
    return *CanonicalJson(doc);
  }
  // Publishes `document` for device `id` with the fleet's online keys, as
  // the tracker (or a thief of its keys) would, at `clock`'s time.
  void SignDocument(const std::string& id, const std::string& document,
                    const Clock& clock = SystemClock::Instance()) {
    auto signer = tracker::FleetSigner::Open(tracker::RepositoryLayout{repo_}, clock);
    ASSERT_TRUE(signer.ok()) << signer.status().ToString();
    auto published = (*signer)->Publish(id, document);
    ASSERT_TRUE(published.ok()) << published.status().ToString();
  }
  // Device `id`'s repository as the tracker holds it (its state file).
  tracker::DeviceState StateOf(const std::string& id) {
    auto state = tracker::ReadDeviceState(DeviceDir(id));
    EXPECT_TRUE(state.ok() && *state) << id << ": " << state.status().ToString();
    return state.ok() && *state ? **state : tracker::DeviceState{};
  }
  void WriteState(const std::string& id, const tracker::DeviceState& state) {
    ASSERT_TRUE(WriteFileAtomic(DeviceDir(id) + "/state", tracker::FormatDeviceState(state)).ok());
  }
  uint64_t VersionOf(const std::string& path) {
    auto json = ParseJsonStrict(FileText(path));
    return json.ok() ? (*json)["signed"]["version"].get<uint64_t>() : 0;
  }
  void RestartTracker() {
    const int port = tracker_.port();
    tracker_.Stop();
    ASSERT_TRUE(tracker_.Start(dir_, repo_, {}, port)) << tracker_.Log();
  }

  std::string dir_, repo_, data_, device_id_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

TEST_F(NodeFleetTest, FollowsAssignmentPinAndUnpinAcrossARestart) {
  StartNode({"kiosk", "clock"});
  // No document yet: the local list, newest release.
  ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
  EXPECT_EQ(Status()["fleet"]["state"], "local");

  Fleet("group create all --select all");
  Fleet("app assign kiosk --group all");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
      << node_.Log();
  Json status = Status();
  EXPECT_EQ(status["fleet"]["version"], StateOf(device_id_).targets);
  EXPECT_GT(status["fleet"]["expires_unix"].get<int64_t>(), 0);
  EXPECT_EQ(AppOf(status, "kiosk")["desired_release"], 2);
  EXPECT_EQ(AppOf(status, "kiosk")["fleet_assigned"], true);
  EXPECT_EQ(AppOf(status, "clock")["fleet_assigned"], false);

  // A release of an app the document does not name is not fetched, though
  // the local list names it.
  ASSERT_TRUE(PublishImage(dir_, repo_, "clock", 64, "c1")) << FileText(dir_ + "/publish.log");
  std::this_thread::sleep_for(seconds(4));  // a few refreshes of the image repository
  EXPECT_EQ(AppState(data_, "clock")["ready_release"], 0) << node_.Log();
  EXPECT_EQ(AppState(data_, "clock")["target_release"], 0);
  Fleet("app assign clock --group all");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitReady("clock", 1)) << node_.Log();

  // A pin to the older release: installed.
  Fleet("pin --device kiosk-1 --app kiosk --release 1");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitReady("kiosk", 1)) << node_.Log();
  EXPECT_EQ(AppOf(Status(), "kiosk")["desired_release"], 1);
  auto text = RunShell(BinaryPath("flotilla-node") + " status --config " + dir_ + "/node.json");
  EXPECT_NE(text.output.find("fleet: following, document v"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("DESIRED"), std::string::npos) << text.output;

  // Restarted while the tracker is away: the accepted document holds, the
  // newest release on disk is not taken up.
  EXPECT_EQ(node_.Stop(), 0);
  const int port = tracker_.port();
  tracker_.Stop();
  ASSERT_TRUE(node_.Start(dir_, Json::parse(FileText(dir_ + "/node.json"))));
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "holding"; }, seconds(30)))
      << node_.Log();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(AppState(data_, "kiosk")["ready_release"], 1) << node_.Log();
  EXPECT_EQ(AppState(data_, "kiosk")["target_release"], 0);
  EXPECT_EQ(AppOf(Status(), "kiosk")["desired_release"], 1);
  ASSERT_TRUE(tracker_.Start(dir_, repo_, {}, port)) << tracker_.Log();
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
      << node_.Log();

  // Unpinned: the newest release again.
  Fleet("unpin --device kiosk-1 --app kiosk");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
}

// The operator API's pin and unpin reach the device by themselves: each
// action re-signs the documents of the devices whose desired release it
// changed, before it answers (no `fleet publish`).
TEST_F(NodeFleetTest, AnOperatorApiPinReachesTheDeviceWithoutAFleetPublish) {
  ASSERT_NO_FATAL_FAILURE(FollowKioskFromTheFleet());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/pass", "a-long-enough-passphrase-1\n").ok());
  Fleet("operator add alice --role admin --password-file " + dir_ + "/pass");
  Json token = Json::parse(Tracker("operator token create alice --json").output, nullptr, false);
  ASSERT_TRUE(token.is_object());
  const std::string bearer = "Authorization: Bearer " + token["token"].get<std::string>();
  const uint64_t before = StateOf(device_id_).targets;

  HttpResponse pinned =
      HttpRequestTo(tracker_.port(), "POST", "/api/v1/operator/pin", {bearer},
                    Json{{"device", "kiosk-1"}, {"app", "kiosk"}, {"release", 1}}.dump());
  ASSERT_EQ(pinned.status, 200) << pinned.raw;
  EXPECT_EQ(Json::parse(pinned.body)["resigned"], 1) << pinned.body;
  EXPECT_GT(StateOf(device_id_).targets, before) << "signed before the answer";
  ASSERT_TRUE(WaitReady("kiosk", 1)) << node_.Log();

  HttpResponse unpinned = HttpRequestTo(tracker_.port(), "POST", "/api/v1/operator/unpin", {bearer},
                                        Json{{"device", "kiosk-1"}, {"app", "kiosk"}}.dump());
  ASSERT_EQ(unpinned.status, 200) << unpinned.raw;
  EXPECT_EQ(Json::parse(unpinned.body)["resigned"], 1) << unpinned.body;
  ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
  // A pin that changes nothing (the newest release) re-signs nothing.
  HttpResponse again =
      HttpRequestTo(tracker_.port(), "POST", "/api/v1/operator/pin", {bearer},
                    Json{{"device", "kiosk-1"}, {"app", "kiosk"}, {"release", 2}}.dump());
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(Json::parse(again.body)["resigned"], 0) << again.body;
}

// A node tells its platform in its first report; the tracker tags it, so a
// group selecting that tag (one per platform, docs/registry.md) gets it and
// assigns it its platform's app, with no operator tagging it by hand.
TEST_F(NodeFleetTest, ANodeTagsItselfWithItsPlatformAndAGroupOnTheTagAssignsItsApp) {
  std::string tag = "platform." + layerstore::Platform::Host().ToString();
  std::replace(tag.begin(), tag.end(), '/', '.');
  Fleet("group create here --select tag=" + tag);
  Fleet("group create elsewhere --select tag=platform.linux.s390x");
  Fleet("app assign kiosk --group here");
  StartNode({"kiosk"});
  Json members;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto run = Tracker("group show here --json");
        auto json = ParseJsonStrict(run.output);
        if (run.exit_code != 0 || !json.ok()) return false;
        members = (*json)["devices"];
        return members.size() == 1;
      },
      seconds(30)))
      << node_.Log();
  EXPECT_EQ(members[0]["device"], "kiosk-1");
  EXPECT_EQ(members[0]["tags"], Json::array({tag}));
  auto elsewhere = ParseJsonStrict(Tracker("group show elsewhere --json").output);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE((*elsewhere)["devices"].empty());
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
      << node_.Log();
  EXPECT_EQ(AppOf(Status(), "kiosk")["fleet_assigned"], true);
  ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
}

TEST_F(NodeFleetTest, RefusesBadDocumentsAndKeepsRunning) {
  StartNode({"kiosk"});
  auto other = EnrolDevice(tracker_.port(), "other-screen", "shop-2");
  ASSERT_FALSE(other.device_id.empty());
  Fleet("group create all --select all");
  Fleet("app assign kiosk --group all");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
      << node_.Log();
  ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
  const std::string ours = DeviceDir(device_id_);
  std::filesystem::copy(ours, dir_ + "/ours-v1", std::filesystem::copy_options::recursive);

  // A document signed with the fleet's keys naming release 1 with hashes the
  // image repository did not sign.
  SignDocument(device_id_, Document(device_id_, 1, std::string(64, 'a')));
  ASSERT_TRUE(WaitFleetError("differ from the image repository's")) << node_.Log();
  ExpectKeepsRunning(2, "differ from the image repository's");

  // A forged document: targets metadata changed without the targets key
  // (snapshot and timestamp re-signed with theirs, as a thief of those two would).
  tracker_.Stop();
  SignDocument(device_id_, Document(device_id_, 2));
  {
    tracker::DeviceState state = StateOf(device_id_);
    const std::string forged = Document(device_id_, 1);
    const std::string forged_hex = Digest::Of(forged).Hex();
    state.files.emplace_back(forged_hex + ".device.json", forged);
    auto root = metadata::ParseSignedDocument(FileText(repo_ + "/fleet/root.json"), 1 << 20);
    ASSERT_TRUE(root.ok());
    auto root_metadata = metadata::ParseRoot(root->signed_json);
    ASSERT_TRUE(root_metadata.ok());
    auto key = [&](metadata::RoleType role) {
      return *metadata::LoadRoleKey(tracker::FleetKeyPath(tracker::RepositoryLayout{repo_}, role),
                                    *root_metadata, role);
    };
    auto file = [&](const std::string& name) -> std::string& {
      for (auto& [file_name, bytes] : state.files) {
        if (file_name == name) return bytes;
      }
      ADD_FAILURE() << "no " << name;
      static std::string none;
      return none;
    };
    auto rewrite = [&](const std::string& name, const std::function<void(Json&)>& change,
                       const Ed25519PrivateKey* signer) {
      Json old = Json::parse(file(name));
      Json signed_json = old["signed"];
      change(signed_json);
      auto doc = metadata::MakeUnsignedDocument(signed_json);
      ASSERT_TRUE(doc.ok());
      if (signer) {
        metadata::AddSignature(*doc, *signer);
      } else {  // the old signature, over other bytes
        doc->signatures.push_back({old["signatures"][0]["keyid"].get<std::string>(),
                                   old["signatures"][0]["sig"].get<std::string>()});
      }
      file(name) = metadata::SerializeDocument(*doc);
    };
    const std::string targets_name = std::to_string(state.targets) + ".targets.json";
    const std::string snapshot_name = std::to_string(state.snapshot) + ".snapshot.json";
    rewrite(
        targets_name,
        [&](Json& s) {
          s["targets"]["device.json"] = {{"hashes", {{"sha256", forged_hex}}},
                                         {"length", forged.size()}};
        },
        nullptr);
    const std::string targets = file(targets_name);
    const Ed25519PrivateKey snapshot_key = key(metadata::RoleType::kSnapshot);
    const Ed25519PrivateKey timestamp_key = key(metadata::RoleType::kTimestamp);
    rewrite(
        snapshot_name,
        [&](Json& s) {
          s["meta"]["targets.json"]["length"] = targets.size();
          s["meta"]["targets.json"]["hashes"] = {{"sha256", Digest::Of(targets).Hex()}};
        },
        &snapshot_key);
    const std::string snapshot = file(snapshot_name);
    rewrite(
        "timestamp.json",
        [&](Json& s) {
          s["meta"]["snapshot.json"]["length"] = snapshot.size();
          s["meta"]["snapshot.json"]["hashes"] = {{"sha256", Digest::Of(snapshot).Hex()}};
        },
        &timestamp_key);
    WriteState(device_id_, state);
  }
  RestartTracker();
  ASSERT_TRUE(WaitFleetError("valid signature(s)")) << node_.Log();
  ExpectKeepsRunning(2, "valid signature(s)");

  // Another device's repository, newer than ours, served under our id: it
  // verifies (the same keys sign every device) and its `device` refuses it.
  const uint64_t trusted = VersionOf(data_ + "/fleet/tuf/timestamp.json");
  for (uint64_t i = 0; StateOf(other.device_id).timestamp <= trusted + 1; ++i) {
    SignDocument(other.device_id, Document(other.device_id, i % 2 == 0 ? 1 : 2));
  }
  tracker_.Stop();
  std::filesystem::remove_all(ours);
  std::filesystem::copy(DeviceDir(other.device_id), ours, std::filesystem::copy_options::recursive);
  RestartTracker();
  ASSERT_TRUE(WaitFleetError("is for device '" + other.device_id + "'")) << node_.Log();
  ExpectKeepsRunning(2, "is for device '" + other.device_id + "'");

  // Our first repository again: a replay of older versions.
  tracker_.Stop();
  std::filesystem::remove_all(ours);
  std::filesystem::copy(dir_ + "/ours-v1", ours, std::filesystem::copy_options::recursive);
  RestartTracker();
  ASSERT_TRUE(WaitFleetError("version rollback")) << node_.Log();
  ExpectKeepsRunning(2, "version rollback");

  // Newer versions that expired (signed 8 days ago, 7 days' expiry): the
  // node keeps what it runs and does not fall back to its local list.
  tracker_.Stop();
  FakeClock past(SystemClock::Instance().Now() - std::chrono::hours(24 * 8));
  const uint64_t now_trusted = VersionOf(data_ + "/fleet/tuf/timestamp.json");
  for (int i = 0; StateOf(device_id_).timestamp <= now_trusted; ++i) {
    SignDocument(device_id_, Document(device_id_, i % 2 == 0 ? 1 : 2), past);
  }
  // A tracker holding the online fleet keys re-signs them at once (serve's
  // refresher): this one has them away, as one gone for a week would.
  for (auto role : {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                    metadata::RoleType::kTimestamp}) {
    const std::string path = tracker::FleetKeyPath(tracker::RepositoryLayout{repo_}, role);
    std::filesystem::rename(path, path + ".away");
  }
  RestartTracker();
  ASSERT_TRUE(WaitFleetError("expired")) << node_.Log();
  ExpectKeepsRunning(2, "expired");
  Json status = Status();
  EXPECT_EQ(AppOf(status, "kiosk")["desired_release"], 2) << "the accepted document still holds";

  // Its keys back, the tracker re-signs the expired repository as it starts
  // (the same document, new versions) and the node takes it.
  const std::string expired_document = StateOf(device_id_).document_sha256;
  const uint64_t expired_timestamp = StateOf(device_id_).timestamp;
  for (auto role : {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                    metadata::RoleType::kTimestamp}) {
    const std::string path = tracker::FleetKeyPath(tracker::RepositoryLayout{repo_}, role);
    std::filesystem::rename(path + ".away", path);
  }
  RestartTracker();
  ASSERT_TRUE(
      WaitFor([&] { return VersionOf(data_ + "/fleet/tuf/timestamp.json") > expired_timestamp; },
              seconds(30)))
      << node_.Log();
  EXPECT_EQ(StateOf(device_id_).document_sha256, expired_document);
}

TEST_F(NodeFleetTest, FollowsARotatedRootAndRefusesTheOldOnlineKeys) {
  ASSERT_NO_FATAL_FAILURE(FollowKioskFromTheFleet());
  const std::string old_timestamp_key = dir_ + "/old-fleet-timestamp.key";
  std::filesystem::copy_file(
      tracker::FleetKeyPath(tracker::RepositoryLayout{repo_}, metadata::RoleType::kTimestamp),
      old_timestamp_key);
  auto keygen =
      RunShell(BinaryPath("flotilla-tracker") + " keygen " + dir_ + "/fleet-root-2.key 2>&1");
  ASSERT_EQ(keygen.exit_code, 0) << keygen.output;

  auto rotated = Tracker("fleet rotate-root --json --root-key " + dir_ +
                         "/fleet-off/fleet-root.key --new-root-key " + dir_ +
                         "/fleet-root-2.key --rotate targets,snapshot,timestamp");
  ASSERT_EQ(rotated.exit_code, 0) << rotated.output;
  auto outcome = ParseJsonStrict(rotated.output);
  ASSERT_TRUE(outcome.ok()) << rotated.output;
  EXPECT_EQ((*outcome)["root_version"], 2);
  EXPECT_EQ((*outcome)["devices"], 1);

  // A pin after the rotation: the node walks from root 1 to root 2 and takes
  // what the new online keys sign.
  Fleet("pin --device kiosk-1 --app kiosk --release 1");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitReady("kiosk", 1)) << node_.Log();
  EXPECT_EQ(VersionOf(data_ + "/fleet/tuf/root.json"), 2u);

  // A newer timestamp signed by the old timestamp key: refused.
  tracker_.Stop();
  uint64_t forged = 0;
  {
    // A whole state file, as a thief of the old key with write access to
    // the tracker's storage would make it.
    tracker::DeviceState state = StateOf(device_id_);
    for (auto& [name, bytes] : state.files) {
      if (name != "timestamp.json") continue;
      Json signed_json = Json::parse(bytes)["signed"];
      signed_json["version"] = signed_json["version"].get<uint64_t>() + 1;
      forged = signed_json["version"];
      auto doc = metadata::MakeUnsignedDocument(signed_json);
      ASSERT_TRUE(doc.ok());
      metadata::AddSignature(*doc, Ed25519PrivateKey::LoadFile(old_timestamp_key).value());
      bytes = metadata::SerializeDocument(*doc);
    }
    state.timestamp = forged;
    WriteState(device_id_, state);
  }
  RestartTracker();
  ASSERT_TRUE(WaitFleetError("timestamp: 0 valid signature(s)")) << node_.Log();
  ExpectKeepsRunning(1, "timestamp: 0 valid signature(s)");
  // fleet publish signs it again with the new key (it is not signed by a
  // key the root names), and the node follows again.
  Fleet("fleet publish");
  EXPECT_GT(StateOf(device_id_).timestamp, forged);
  ASSERT_TRUE(WaitFor([&] { return Status()["fleet"]["state"] == "following"; }, seconds(30)))
      << node_.Log();

  // A node that first trusts the fleet root now: the image repository
  // offers root 2, and it follows from there.
  EXPECT_EQ(node_.Stop(), 0);
  std::filesystem::remove_all(data_ + "/fleet/tuf");
  std::filesystem::remove_all(data_ + "/fleet/root-target");
  ASSERT_TRUE(node_.Start(dir_, Json::parse(FileText(dir_ + "/node.json"))));
  ASSERT_TRUE(
      WaitFor([&] { return VersionOf(data_ + "/fleet/tuf/timestamp.json") > forged; }, seconds(30)))
      << node_.Log();
  EXPECT_EQ(VersionOf(data_ + "/fleet/tuf/root.json"), 2u);
  Fleet("unpin --device kiosk-1 --app kiosk");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitReady("kiosk", 2)) << node_.Log();
}

}  // namespace
}  // namespace flotilla::testing
