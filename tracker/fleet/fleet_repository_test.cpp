// The fleet repository as a device will read it: metadata::TufClient trusts
// the fleet root the image repository offers, verifies a device's
// repository from it and reads device.json.
#include "tracker/fleet/fleet_repository.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "tracker/publish/offline.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/device_state.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;
using metadata::RoleType;

metadata::Release KioskRelease(uint64_t version) {
  const std::string bytes = "artifact " + std::to_string(version);
  metadata::Release r;
  r.app = "kiosk";
  r.version = version;
  r.image = {Digest::Of("m" + bytes), Digest::Of("c"), "linux/arm64", {{Digest::Of(bytes), 10}}};
  r.artifacts = {{Digest::Of(bytes),
                  metadata::ArtifactKind::kFull,
                  {},
                  Digest::Of(bytes),
                  bytes.size(),
                  Digest::Of("t" + bytes).bytes(),
                  "zstd"}};
  return r;
}

class FleetRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::remove_all(dir_);
    InitOptions options;
    if (OfflineTargets()) options.offline_keys_dir = dir_ + "/off";
    ASSERT_TRUE(InitRepository(repo_.root, options, clock_).ok());
    if (OfflineTargets()) return;
    auto image = metadata::Repository::Open(repo_.root, clock_).value();
    auto keys = LoadRoleKeys(repo_, image->root(),
                             {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp});
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    for (uint64_t v : {5, 6, 7}) {
      ASSERT_TRUE(metadata::PublishRelease(*image, KioskRelease(v), *keys).ok());
    }
    state_.releases["kiosk"] = {5, 6, 7};
    for (const std::string name : {"screen-7", "screen-8"}) {
      state_.devices[name] = FleetDevice{"dev-" + name, name, "shop-12", {"window"}};
    }
    state_.groups["windows"] =
        FleetGroup{"windows", Selector::Parse("site=shop-12").value(), {"kiosk"}, {}};
    auto init = InitFleet({repo_.root, "", dir_ + "/fleet-off"}, clock_);
    ASSERT_TRUE(init.ok()) << init.status().ToString();
    EXPECT_TRUE(init->pending_file.empty());
  }
  void TearDown() override {
    if (!getenv("KEEP")) fs::remove_all(dir_);
  }
  virtual bool OfflineTargets() const { return false; }

  Result<FleetPublishOutcome> Publish(std::optional<std::string> device = std::nullopt) {
    return PublishFleet(repo_.root, state_, device, clock_);
  }
  std::string DeviceDir(const std::string& name) {
    return DeviceRepositoryDir(repo_, "dev-" + name).value();
  }
  // The fleet root as a device gets it: the image repository's target.
  std::string FleetRootFromImage() {
    auto image = metadata::Repository::Open(repo_.root, clock_).value();
    const auto& target = image->targets().targets.at(kFleetRootTarget);
    return ReadTextFileBounded(
               image->targets_dir() + "/fleet/" + target.hashes.at("sha256") + ".root.json",
               1 << 20)
        .value();
  }
  // What a device's TufClient reads as device.json from `device`'s repository
  // (as serve's fleet route serves it), trusting the fleet root in a client
  // directory of its own (kept across calls).
  Result<Json> ReadAsDevice(const std::string& device) {
    const std::string client_dir = dir_ + "/client-" + device;
    if (!fs::exists(client_dir)) {
      RETURN_IF_ERROR(metadata::TufClient::Initialize(client_dir, FleetRootFromImage()));
    }
    DeviceRepositoryRemote remote(repo_, "dev-" + device);
    ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(client_dir, remote, clock_));
    RETURN_IF_ERROR(client->Refresh());
    ASSIGN_OR_RETURN(metadata::TargetFile info, client->GetTargetInfo(kFleetDocumentTarget));
    ASSIGN_OR_RETURN(auto got, client->DownloadTarget(info, client_dir + "/targets"));
    ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(got.path, 1 << 20));
    return Json::parse(bytes);
  }
  // The device's state file as the fleet signer reads it.
  DeviceState State(const std::string& device) {
    auto state = ReadDeviceState(DeviceDir(device));
    EXPECT_TRUE(state.ok() && *state) << device << ": " << state.status().ToString();
    return state.ok() && *state ? **state : DeviceState{};
  }
  uint64_t TargetsVersion(const std::string& device) { return State(device).targets; }
  // The online fleet keys, as the signer holds them.
  metadata::KeyRing OnlineKeys() {
    auto doc = metadata::ParseSignedDocument(
        ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value(), 1 << 20);
    auto root = metadata::ParseRoot(doc->signed_json).value();
    metadata::KeyRing ring;
    for (RoleType role : {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp}) {
      ring.Add(metadata::LoadRoleKey(FleetKeyPath(repo_, role), root, role).value());
    }
    return ring;
  }
  // `device`'s repository as an older tracker laid it out: metadata/ and
  // targets/ directories written by metadata::Repository, listing `document`
  // after `changes` versions.
  void MakeDirectoryRepository(const std::string& device, const std::string& document,
                               int changes = 1) {
    const metadata::KeyRing keys = OnlineKeys();
    auto made = metadata::Repository::CreateWithRoot(
        DeviceDir(device), ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value(), keys, clock_,
        FleetRepositoryOptions());
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    for (int i = 0; i < changes; ++i) {
      const std::string text = i + 1 == changes ? document : document + std::string(i + 1, ' ');
      ASSERT_TRUE((*made)->AddTargets({{kFleetDocumentTarget, text, nullptr}}, keys).ok());
    }
  }

  FakeClock clock_;
  // tmpfs when there is one: the test makes hundreds of durable writes.
  std::string dir_ =
      (fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path()) /
      ("flotilla-fleetrepo-" + std::to_string(getpid()));
  RepositoryLayout repo_{dir_ + "/repo"};
  FleetState state_;
};

TEST_F(FleetRepositoryTest, DeviceVerifiesItsDocumentFromTheFleetRootWithTheImageTargets) {
  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->devices, 2u);
  EXPECT_EQ(published->resigned, 2u);
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["device"], "dev-screen-7");
  const Json& kiosk = (*doc)["apps"]["kiosk"];
  EXPECT_EQ(kiosk["release"], 7);
  EXPECT_EQ(kiosk["target"], "apps/kiosk/release-7.json");
  auto image = metadata::Repository::Open(repo_.root, clock_).value();
  const auto& release = image->targets().targets.at("apps/kiosk/release-7.json");
  EXPECT_EQ(kiosk["length"], release.length);
  EXPECT_EQ(kiosk["hashes"]["sha256"], release.hashes.at("sha256"));
  // The online keys are 0600 in the 0700 keys directory; the fleet root key is not there.
  for (RoleType role : {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp}) {
    EXPECT_EQ(fs::status(FleetKeyPath(repo_, role)).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
  }
  EXPECT_TRUE(fs::exists(dir_ + "/fleet-off/fleet-root.key"));
  EXPECT_FALSE(fs::exists(KeysDir(repo_) + "/fleet-root.key"));
}

TEST_F(FleetRepositoryTest, AnotherDevicesDocumentVerifiesButNamesThatDevice) {
  ASSERT_TRUE(Publish().ok());
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());
  // screen-8's repository is signed by the same keys: it verifies from the
  // same root, so the node's own check is the device field.
  auto other = ReadAsDevice("screen-8");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ((*other)["device"], "dev-screen-8");
  EXPECT_NE((*other)["device"], "dev-screen-7");
}

TEST_F(FleetRepositoryTest, PinChangesOnlyThatDevicesVersionsAndNothingGoesBack) {
  ASSERT_TRUE(Publish().ok());
  const uint64_t seven = TargetsVersion("screen-7");
  const uint64_t eight = TargetsVersion("screen-8");
  auto again = Publish();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->resigned, 0u);
  EXPECT_EQ(TargetsVersion("screen-7"), seven);

  state_.device_pins["screen-7"]["kiosk"] = 5;
  auto pinned = Publish();
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->resigned, 1u);
  EXPECT_EQ(TargetsVersion("screen-7"), seven + 1);
  EXPECT_EQ(TargetsVersion("screen-8"), eight);
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 5);

  // Unpinned, the document is the first one again, at a higher version.
  state_.device_pins.clear();
  ASSERT_TRUE(Publish("screen-7").ok());
  EXPECT_EQ(TargetsVersion("screen-7"), seven + 2);
  doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7);
}

TEST_F(FleetRepositoryTest, ReleaseMissingFromTheImageRepositoryIsRefused) {
  state_.releases["kiosk"].insert(9);
  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->devices, 0u);
  ASSERT_EQ(published->failed.size(), 2u);
  for (const FleetDeviceFailure& failure : published->failed) {
    EXPECT_EQ(failure.status.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(failure.status.message().find("release 9 of kiosk"), std::string::npos);
  }
  EXPECT_EQ(Publish("nobody").status().code(), StatusCode::kNotFound);
}

// Configuration values go into each app's `config` when the release the
// device is sent declares them (docs/config.md); a device whose release
// does not is its own failure, the others are published.
TEST_F(FleetRepositoryTest, ConfigGoesIntoTheDocumentOnlyWhenTheReleaseAcceptsIt) {
  auto image = metadata::Repository::Open(repo_.root, clock_).value();
  auto keys = LoadRoleKeys(repo_, image->root(),
                           {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp});
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  metadata::Release eight = KioskRelease(8);
  eight.app_spec = Json{{"name", "kiosk"},
                        {"command", {"/kiosk"}},
                        {"config", {{{"name", "MODE"}, {"pattern", "[a-z]+"}}}}};
  metadata::Release nine = KioskRelease(9);
  nine.app_spec = Json{{"name", "kiosk"}, {"command", {"/kiosk"}}};
  ASSERT_TRUE(metadata::PublishRelease(*image, eight, *keys).ok());
  ASSERT_TRUE(metadata::PublishRelease(*image, nine, *keys).ok());
  state_.releases["kiosk"] = {5, 6, 7, 8, 9};
  state_.device_pins["screen-8"]["kiosk"] = 8;
  state_.config.push_back(ConfigEntry{"kiosk", ConfigLevel::kApp, "", "MODE", "night"});

  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->devices, 1u);
  ASSERT_EQ(published->failed.size(), 1u);
  EXPECT_EQ(published->failed[0].device, "screen-7");
  EXPECT_EQ(published->failed[0].status.message(),
            "device screen-7: kiosk release 9: does not accept MODE (its spec accepts no "
            "configuration)");
  auto doc = ReadAsDevice("screen-8");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["config"], (Json{{"MODE", "night"}}));
  EXPECT_EQ((*doc)["format"], 1);

  // A fleet-level value reaches only the releases that declare it.
  state_.config = {ConfigEntry{"", ConfigLevel::kFleet, "", "MODE", "day"}};
  published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_TRUE(published->failed.empty());
  EXPECT_EQ((*ReadAsDevice("screen-8"))["apps"]["kiosk"]["config"], (Json{{"MODE", "day"}}));
  EXPECT_FALSE((*ReadAsDevice("screen-7"))["apps"]["kiosk"].contains("config"));
}

TEST_F(FleetRepositoryTest, SecretsGoIntoTheDocumentOnlyWhenTheReleaseDeclaresThem) {
  auto image = metadata::Repository::Open(repo_.root, clock_).value();
  auto keys = LoadRoleKeys(repo_, image->root(),
                           {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp});
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  metadata::Release eight = KioskRelease(8);
  eight.app_spec = Json{{"name", "kiosk"},
                        {"command", {"/kiosk"}},
                        {"config", {{{"name", "API_TOKEN"}, {"secret", true}}}}};
  metadata::Release nine = KioskRelease(9);
  nine.app_spec = Json{{"name", "kiosk"}, {"command", {"/kiosk"}}};
  ASSERT_TRUE(metadata::PublishRelease(*image, eight, *keys).ok());
  ASSERT_TRUE(metadata::PublishRelease(*image, nine, *keys).ok());
  state_.releases["kiosk"] = {5, 6, 7, 8, 9};
  state_.device_pins["screen-8"]["kiosk"] = 8;
  const std::string id7 = state_.devices.at("screen-7").device_id;
  const std::string id8 = state_.devices.at("screen-8").device_id;
  // Each device's own box; a box of another device never reaches it.
  state_.secrets = {{"kiosk", ConfigLevel::kApp, "", "API_TOKEN", id7, "Ym94LTc=", 0},
                    {"kiosk", ConfigLevel::kApp, "", "API_TOKEN", id8, "Ym94LTg=", 0}};

  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  ASSERT_EQ(published->failed.size(), 1u);
  EXPECT_EQ(published->failed[0].device, "screen-7");
  EXPECT_EQ(published->failed[0].status.message(),
            "device screen-7: kiosk release 9: does not declare the secret API_TOKEN");
  auto doc = ReadAsDevice("screen-8");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["secrets"], (Json{{"API_TOKEN", "Ym94LTg="}}));
  EXPECT_FALSE((*doc)["apps"]["kiosk"].contains("config"));

  // A fleet-level secret reaches only the releases that declare it.
  state_.secrets = {{"", ConfigLevel::kFleet, "", "API_TOKEN", id7, "Ym94LTc=", 0},
                    {"", ConfigLevel::kFleet, "", "API_TOKEN", id8, "Ym94LTg=", 0}};
  published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_TRUE(published->failed.empty());
  EXPECT_EQ((*ReadAsDevice("screen-8"))["apps"]["kiosk"]["secrets"],
            (Json{{"API_TOKEN", "Ym94LTg="}}));
  EXPECT_FALSE((*ReadAsDevice("screen-7"))["apps"]["kiosk"].contains("secrets"));
}

TEST_F(FleetRepositoryTest, APowerCutBeforeTheStateFileIsReplacedLeavesTheVersionBefore) {
  // A device's directory made, and a state file begun, when the power went:
  // nothing was published, and the next publish starts over.
  const std::string dir = DeviceDir("screen-7");
  ASSERT_TRUE(CreateDirectories(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/state.tmp.cut", std::string("fleet-device-st")).ok());
  ASSERT_TRUE(Publish().ok());
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const uint64_t published = TargetsVersion("screen-7");
  // A change cut short before its rename: the state file is the one before,
  // served as it was, and the next publish signs the version after it.
  const std::string before = ReadTextFileBounded(dir + "/state", 1 << 20).value();
  state_.device_pins["screen-7"]["kiosk"] = 6;
  ASSERT_TRUE(Publish().ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/state", before).ok());
  doc = ReadAsDevice("screen-7");  // a client that never saw the lost version
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7);
  auto redone = Publish();
  ASSERT_TRUE(redone.ok()) << redone.status().ToString();
  EXPECT_EQ(redone->resigned, 1u);
  EXPECT_EQ(TargetsVersion("screen-7"), published + 1);
  doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 6);
}

TEST_F(FleetRepositoryTest, AStateFileThatIsNotOneIsRefusedAndNotOverwritten) {
  ASSERT_TRUE(Publish().ok());
  const std::string path = DeviceDir("screen-7") + "/state";
  const std::string good = ReadTextFileBounded(path, 1 << 20).value();
  const std::string torn = good.substr(0, good.size() / 2);
  ASSERT_TRUE(WriteFileAtomic(path, torn).ok());
  state_.device_pins["screen-7"]["kiosk"] = 6;
  state_.device_pins["screen-8"]["kiosk"] = 6;
  const uint64_t other_before = TargetsVersion("screen-8");
  // The device with the torn file is named and left alone; the other one is
  // published all the same.
  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  ASSERT_EQ(published->failed.size(), 1u);
  EXPECT_EQ(published->failed[0].device, "screen-7");
  EXPECT_EQ(published->failed[0].status.code(), StatusCode::kCorruption);
  EXPECT_NE(published->failed[0].status.message().find(path), std::string::npos)
      << published->failed[0].status.ToString();
  EXPECT_EQ(published->devices, 1u);
  EXPECT_EQ(published->resigned, 1u);
  EXPECT_EQ(TargetsVersion("screen-8"), other_before + 1);
  EXPECT_EQ((*ReadAsDevice("screen-8"))["apps"]["kiosk"]["release"], 6);
  EXPECT_EQ(ReadTextFileBounded(path, 1 << 20).value(), torn);
  EXPECT_EQ(
      ReadDeviceRepositoryFile(repo_, "dev-screen-7", "metadata", "timestamp.json").status().code(),
      StatusCode::kCorruption);
}

// A repository an older tracker wrote as metadata/ and targets/ directories
// is served as it is until the signer first touches it, then read whole
// (and verified), replaced by a state file at the same versions, and its
// directories removed: a device that trusted it carries on.
TEST_F(FleetRepositoryTest, ARepositoryLaidOutAsDirectoriesIsReplacedByItsStateFile) {
  const std::string old_document = R"({"apps":{},"device":"dev-screen-7","format":1})";
  MakeDirectoryRepository("screen-7", old_document, /*changes=*/3);
  MakeDirectoryRepository("screen-8", old_document, /*changes=*/2);
  auto doc = ReadAsDevice("screen-7");  // through the directories
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"], Json::object());
  auto opened = metadata::Repository::Open(DeviceDir("screen-7"), clock_, FleetRepositoryOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const uint64_t targets = (*opened)->targets().common.version;
  const uint64_t timestamp = (*opened)->timestamp().common.version;

  // Refreshed before it is due: replaced by its state file, nothing re-signed.
  ASSERT_TRUE(ReadAsDevice("screen-8").ok());
  auto signer = FleetSigner::Open(repo_, clock_);
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  auto refreshed = (*signer)->Refresh("dev-screen-8", clock_.Now());
  ASSERT_TRUE(refreshed.ok() && *refreshed) << refreshed.status().ToString();
  EXPECT_FALSE((*refreshed)->resigned);
  EXPECT_FALSE(fs::exists(DeviceDir("screen-8") + "/metadata"));
  EXPECT_FALSE(fs::exists(DeviceDir("screen-8") + "/targets"));
  EXPECT_TRUE(ReadAsDevice("screen-8").ok());

  // A new document: the next versions after the directories' ones.
  auto published = Publish("screen-7");
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->resigned, 1u);
  const DeviceState state = State("screen-7");
  EXPECT_EQ(state.targets, targets + 1);
  EXPECT_EQ(state.timestamp, timestamp + 1);
  EXPECT_EQ(state.root, 1u);
  EXPECT_FALSE(fs::exists(DeviceDir("screen-7") + "/metadata"));
  doc = ReadAsDevice("screen-7");  // the client that trusted the directories
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7);
}

// An older tracker's repository made but never published (no document):
// the first publish signs the versions after its own. Directories a power
// cut left beside the state file that replaced them go at the next touch.
TEST_F(FleetRepositoryTest, DirectoriesWithoutADocumentOrLeftBesideAStateFile) {
  {
    auto made = metadata::Repository::CreateWithRoot(
        DeviceDir("screen-7"), ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value(),
        OnlineKeys(), clock_, FleetRepositoryOptions());
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    ASSERT_EQ((*made)->timestamp().common.version, 1u);
  }
  ASSERT_TRUE(Publish("screen-7").ok());
  EXPECT_EQ(State("screen-7").timestamp, 2u) << "after the directories' version 1";
  EXPECT_FALSE(fs::exists(DeviceDir("screen-7") + "/metadata"));
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());

  ASSERT_TRUE(CreateDirectories(DeviceDir("screen-7") + "/metadata").ok());
  ASSERT_TRUE(WriteFileAtomic(DeviceDir("screen-7") + "/metadata/timestamp.json", "{}").ok());
  auto again = Publish("screen-7");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->resigned, 0u);
  EXPECT_FALSE(fs::exists(DeviceDir("screen-7") + "/metadata"));
  EXPECT_TRUE(ReadAsDevice("screen-7").ok());
}

// A fleet root version only an older tracker's device repository held
// (fleet/ kept no versions then) is kept in fleet/ when the repository is
// replaced by its state file: a node trusting it still walks forward.
TEST_F(FleetRepositoryTest, ARootOnlyTheDirectoriesHeldIsKeptForTheNodesThatTrustIt) {
  const std::string root1 = ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value();
  MakeDirectoryRepository("screen-7", R"({"apps":{},"device":"dev-screen-7","format":1})");
  ASSERT_TRUE(metadata::TufClient::Initialize(dir_ + "/client-screen-7", root1).ok());
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());
  const std::string key2 = dir_ + "/fleet-root-2.key";
  ASSERT_TRUE(Ed25519PrivateKey::Generate().SaveFile(key2).ok());
  // Rotated with the repository left out (as a rotation run before it
  // existed), then fleet/1.root.json gone (as a fleet made before versions
  // were kept): only the device's directories hold root 1.
  const std::string moved_aside = dir_ + "/screen-7-aside";
  fs::rename(DeviceDir("screen-7"), moved_aside);
  auto rotated =
      RotateFleetRoot({repo_.root, dir_ + "/fleet-off/fleet-root.key", key2, {}}, clock_);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  fs::rename(moved_aside, DeviceDir("screen-7"));
  fs::remove(repo_.root + "/fleet/1.root.json");

  auto published = Publish("screen-7");
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(State("screen-7").root, 2u);
  EXPECT_EQ(ReadTextFileBounded(repo_.root + "/fleet/1.root.json", 1 << 20).value(), root1);
  auto doc = ReadAsDevice("screen-7");  // the client of root 1 walks to root 2
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7);
}

// Files of a device's state: versioned targets, versioned snapshots, documents.
struct RepositoryFiles {
  int targets = 0;
  int snapshots = 0;
  int documents = 0;
};
RepositoryFiles CountFiles(const DeviceState& state) {
  RepositoryFiles files;
  for (const auto& [name, bytes] : state.files) {
    files.targets += name.ends_with(".targets.json");
    files.snapshots += name.ends_with(".snapshot.json");
    files.documents += name.ends_with(".device.json");
  }
  return files;
}

constexpr auto kDay = std::chrono::hours(24);

TEST_F(FleetRepositoryTest, ManyChangesLeaveTheCurrentAndPreviousVersionsOnly) {
  ASSERT_TRUE(Publish().ok());
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());
  // Three documents in turn (and each back again).
  const uint64_t pins[] = {5, 6, 7, 5, 6, 7, 6, 7};
  for (int i = 0; i < 8; ++i) {
    state_.device_pins["screen-7"]["kiosk"] = pins[i];
    auto published = Publish();
    ASSERT_TRUE(published.ok()) << published.status().ToString();
    ASSERT_EQ(published->resigned, 1u);
    const DeviceState state = State("screen-7");
    const RepositoryFiles files = CountFiles(state);
    EXPECT_EQ(files.targets, 2) << i;
    EXPECT_EQ(files.snapshots, 2) << i;
    EXPECT_EQ(files.documents, 2) << i;
    // What the previous timestamp names is still there: its snapshot, that
    // snapshot's targets and the document it lists.
    const std::string* previous_targets =
        state.Find(std::to_string(state.targets - 1) + ".targets.json");
    ASSERT_NE(previous_targets, nullptr) << i;
    EXPECT_NE(state.Find(std::to_string(state.snapshot - 1) + ".snapshot.json"), nullptr) << i;
    auto previous = metadata::ParseTargets(
        metadata::ParseSignedDocument(*previous_targets, 1 << 20).value().signed_json);
    ASSERT_TRUE(previous.ok()) << previous.status().ToString();
    EXPECT_NE(
        state.Find(previous->targets.at(kFleetDocumentTarget).hashes.at("sha256") + ".device.json"),
        nullptr)
        << i;
    auto doc = ReadAsDevice("screen-7");  // a client that followed every change
    ASSERT_TRUE(doc.ok()) << i << ": " << doc.status().ToString();
    EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], pins[i]);
  }
}

TEST_F(FleetRepositoryTest, RefresherResignsRepositoriesNearExpiryOnlyAndTheyKeepVerifying) {
  ASSERT_TRUE(Publish().ok());
  clock_.Advance(kDay);
  state_.device_pins["screen-8"]["kiosk"] = 6;  // screen-8 signed a day later
  ASSERT_TRUE(Publish().ok());
  const uint64_t seven = TargetsVersion("screen-7");
  const uint64_t eight = TargetsVersion("screen-8");
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());
  ASSERT_TRUE(ReadAsDevice("screen-8").ok());

  FleetRefresher refresher(repo_.root, clock_);
  auto wait = refresher.Refresh(clock_.Now());  // nothing due
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 0u);
  EXPECT_EQ(*wait, std::chrono::hours(1)) << "the next scan";

  // 3.6 days after the first publish: screen-7 has under half its week left.
  clock_.Advance(std::chrono::hours(62));
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 1u);
  EXPECT_EQ(TargetsVersion("screen-7"), seven + 1);
  EXPECT_EQ(TargetsVersion("screen-8"), eight) << "not due: untouched";
  EXPECT_GE(WallTime(std::chrono::seconds(State("screen-7").expires)), clock_.Now() + 6 * kDay);
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7) << "the same document";

  // Past the first week: both would have expired without the refresher.
  clock_.Advance(5 * kDay);
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 2u);
  for (const std::string device : {"screen-7", "screen-8"}) {
    doc = ReadAsDevice(device);
    ASSERT_TRUE(doc.ok()) << device << ": " << doc.status().ToString();
    EXPECT_EQ(CountFiles(State(device)).targets, 2) << "the current and previous versions";
  }
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 6);
}

TEST_F(FleetRepositoryTest, RefresherReadsDirectoriesAndUnreadableStateFilesAsDue) {
  // screen-7 as an older tracker laid it out; screen-8's state file torn.
  MakeDirectoryRepository("screen-7", R"({"apps":{},"device":"dev-screen-7","format":1})");
  ASSERT_TRUE(Publish("screen-8").ok());
  const std::string state8 = DeviceDir("screen-8") + "/state";
  const std::string good = ReadTextFileBounded(state8, 1 << 20).value();
  ASSERT_TRUE(WriteFileAtomic(state8, good.substr(0, 40)).ok());
  clock_.Advance(4 * kDay);
  FleetRefresher refresher(repo_.root, clock_);
  // The torn one stops the round (it is read when due) and waits ten minutes.
  auto failed = refresher.Refresh(clock_.Now());
  EXPECT_EQ(failed.status().code(), StatusCode::kCorruption) << failed.status().ToString();
  ASSERT_TRUE(WriteFileAtomic(state8, good).ok());
  auto wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  clock_.Advance(std::chrono::minutes(11));
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  for (const std::string device : {"screen-7", "screen-8"}) {
    const DeviceState state = State(device);
    EXPECT_GE(WallTime(std::chrono::seconds(state.expires)), clock_.Now() + 6 * kDay) << device;
    auto doc = ReadAsDevice(device);
    ASSERT_TRUE(doc.ok()) << device << ": " << doc.status().ToString();
  }
  EXPECT_FALSE(fs::exists(DeviceDir("screen-7") + "/metadata"));
}

TEST_F(FleetRepositoryTest, RefresherSignsInBoundedBatchesAndACrashMidBatchLeavesEachVerifying) {
  state_.devices["screen-9"] = FleetDevice{"dev-screen-9", "screen-9", "shop-12", {"window"}};
  ASSERT_TRUE(Publish().ok());
  std::map<std::string, uint64_t> before;
  for (const std::string device : {"screen-7", "screen-8", "screen-9"}) {
    before[device] = TargetsVersion(device);
    ASSERT_TRUE(ReadAsDevice(device).ok());
  }
  clock_.Advance(4 * kDay);
  // screen-8's state file names a fleet root newer than the tracker's (as a
  // state file from another tracker would): its re-signing fails, and a
  // device still verifies what it holds.
  const std::string path8 = DeviceDir("screen-8") + "/state";
  const std::string good8 = ReadTextFileBounded(path8, 1 << 20).value();
  std::string newer = good8;
  ASSERT_EQ(newer.compare(kDeviceStateFormat.size(), 3, " 1 "), 0) << newer.substr(0, 80);
  newer.replace(kDeviceStateFormat.size(), 3, " 5 ");
  ASSERT_TRUE(WriteFileAtomic(path8, newer).ok());
  FleetRefresher refresher(repo_.root, clock_, /*batch=*/2);
  auto failed = refresher.Refresh(clock_.Now());
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(TargetsVersion("screen-7"), before["screen-7"] + 1) << "signed before the failure";
  EXPECT_EQ(TargetsVersion("screen-9"), before["screen-9"]) << "not reached";
  for (const std::string device : {"screen-7", "screen-8", "screen-9"}) {
    auto doc = ReadAsDevice(device);
    ASSERT_TRUE(doc.ok()) << device << ": " << doc.status().ToString();
  }

  ASSERT_TRUE(WriteFileAtomic(path8, good8).ok());
  auto wait = refresher.Refresh(clock_.Now());  // screen-8 waits ten minutes
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 1u);
  EXPECT_EQ(TargetsVersion("screen-9"), before["screen-9"] + 1);
  clock_.Advance(std::chrono::minutes(11));
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 1u);
  EXPECT_EQ(TargetsVersion("screen-8"), before["screen-8"] + 1);
  for (const std::string device : {"screen-7", "screen-8", "screen-9"}) {
    auto doc = ReadAsDevice(device);
    ASSERT_TRUE(doc.ok()) << device << ": " << doc.status().ToString();
    EXPECT_EQ(CountFiles(State(device)).snapshots, 2) << device;
  }

  // Three due, two per round: the round says when to go on.
  clock_.Advance(4 * kDay);
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 2u);
  EXPECT_EQ(*wait, std::chrono::seconds(1));
  wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 1u);
  EXPECT_GT(*wait, std::chrono::minutes(1));
}

TEST(FleetDeviceStateTest, StateFileRoundTripsAndAnythingElseIsRefused) {
  const std::string a(64, 'a'), b(64, 'b');
  DeviceState state{2, 7, 8, 9, 1800604800, a, {}};
  state.files = {{"timestamp.json", "{\"t\":1}"},
                 {"7.targets.json", "{\"x\":\"a\\nb\"}"},
                 {"8.snapshot.json", ""},
                 {a + ".device.json", "{}"},
                 {b + ".device.json", "{\"old\":1}"}};
  const std::string text = FormatDeviceState(state);
  EXPECT_TRUE(text.starts_with("fleet-device-state-1 2 7 8 9 1800604800 " + a +
                               " 5\n"
                               "timestamp.json 7\n{\"t\":1}\n7.targets.json "))
      << text;
  auto parsed = ParseDeviceState(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->root, 2u);
  EXPECT_EQ(parsed->targets, 7u);
  EXPECT_EQ(parsed->snapshot, 8u);
  EXPECT_EQ(parsed->timestamp, 9u);
  EXPECT_EQ(parsed->expires, 1800604800);
  EXPECT_EQ(parsed->document_sha256, a);
  EXPECT_EQ(parsed->files, state.files);

  const std::string header = "fleet-device-state-1 2 7 8 9 1800604800 " + a + " ";
  const std::string body = text.substr(text.find('\n') + 1);
  auto with_file = [&](const std::string& name, const std::string& bytes) {
    return header + "6\n" + body + name + " " + std::to_string(bytes.size()) + "\n" + bytes + "\n";
  };
  for (const std::string& bad : {
           text.substr(0, text.size() - 1),           // torn
           text.substr(0, text.size() / 2),           // torn
           text + "x",                                // trailing bytes
           "fleet-device-state-2" + text.substr(20),  // another format
           header + "4\n" + body,                     // fewer files than said
           header + "9\n" + body,                     // more files than the bound
           "fleet-device-state-1 0 7 8 9 1800604800 " + a + " 5\n" + body,   // version 0
           "fleet-device-state-1 2 7 8 -9 1800604800 " + a + " 5\n" + body,  // not a number
           "fleet-device-state-1 2 7 8 99999999999999999999 1 " + a + " 5\n" + body,
           "fleet-device-state-1 2 7 8 9 1800604800 " + std::string(64, 'A') + " 5\n" + body,
           "fleet-device-state-1  2 7 8 9 1800604800 " + a + " 5\n" + body,
           with_file("../escape.json", "{}"),                        // not a name the layout has
           with_file("root.json", "{}"),                             // roots are not in it
           with_file("timestamp.json", "{}"),                        // twice
           header + "6\n" + body + "9.targets.json 2\n{} longer\n",  // length says less
       }) {
    EXPECT_EQ(ParseDeviceState(bad).status().code(), StatusCode::kCorruption) << bad;
  }
  // What the current timestamp names must be there.
  DeviceState partial = state;
  partial.files.erase(partial.files.begin() + 3);  // the current document
  EXPECT_EQ(ParseDeviceState(FormatDeviceState(partial)).status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(IsDeviceStateFileName("12.snapshot.json"));
  for (const char* name : {"012.snapshot.json", "x.targets.json", "targets.json", "a.device.json",
                           "1.root.json", ".timestamp.json"}) {
    EXPECT_FALSE(IsDeviceStateFileName(name)) << name;
  }
}

TEST(FleetDeviceIdTest, DeviceIdThatCannotNameADirectoryIsRefused) {
  RepositoryLayout repo{"/r"};
  EXPECT_EQ(DeviceRepositoryDir(repo, "dev-1").value(), "/r/fleet/devices/dev-1");
  for (const std::string& bad :
       std::vector<std::string>{"", "..", ".hidden", "a/b", std::string(65, 'a')}) {
    EXPECT_EQ(DeviceRepositoryDir(repo, bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

class OfflineFleetRepositoryTest : public FleetRepositoryTest {
 protected:
  bool OfflineTargets() const override { return true; }
};

TEST_F(OfflineFleetRepositoryTest, FleetRootIsStagedForTheOfflineTargetsKeyThenAccepted) {
  auto init = InitFleet({repo_.root, "", dir_ + "/fleet-off"}, clock_);
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  ASSERT_FALSE(init->pending_file.empty());
  ASSERT_TRUE(metadata::SignMetadataFile(init->pending_file, dir_ + "/off/targets.key",
                                         std::nullopt, init->pending_file)
                  .ok());
  auto accepted = AcceptSigned(repo_.root, init->pending_file, "", clock_);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(FleetRootFromImage(), ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value());
  // Run again, it has nothing left to do.
  EXPECT_EQ(InitFleet({repo_.root, "", dir_ + "/fleet-off"}, clock_).status().code(),
            StatusCode::kAlreadyExists);
}

// Rotating the fleet root (docs/fleet.md, "Rotating the fleet root"): a
// client trusting root 1 walks to root 2 and verifies what the new online
// keys sign; one that first trusts now takes root 2 from the image
// repository; a device repository made after the rotation can be walked to
// from root 1; a rotation cut short leaves a repository a client of the old
// root verifies, and the next publish moves it.
TEST_F(FleetRepositoryTest, RotatedRootIsWalkedToAndACutShortRotationIsFinished) {
  ASSERT_TRUE(Publish().ok());
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());  // its client trusts root 1
  const std::string screen8_before = dir_ + "/screen-8-before";
  fs::copy(DeviceDir("screen-8"), screen8_before, fs::copy_options::recursive);
  const std::string old_timestamp_key =
      ReadTextFileBounded(FleetKeyPath(repo_, RoleType::kTimestamp), 1 << 10).value();
  const std::string old_root_key = dir_ + "/fleet-off/fleet-root.key";
  const std::string new_root_key = dir_ + "/fleet-root-2.key";
  ASSERT_TRUE(Ed25519PrivateKey::Generate().SaveFile(new_root_key).ok());

  auto rotated = RotateFleetRoot({repo_.root,
                                  old_root_key,
                                  new_root_key,
                                  {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp}},
                                 clock_);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(rotated->root_version, 2u);
  EXPECT_EQ(rotated->devices, 2u);
  EXPECT_TRUE(rotated->pending_file.empty());
  EXPECT_GT(rotated->targets_version, 0u);
  EXPECT_NE(ReadTextFileBounded(FleetKeyPath(repo_, RoleType::kTimestamp), 1 << 10).value(),
            old_timestamp_key);
  EXPECT_FALSE(fs::exists(repo_.root + "/keys/fleet-timestamp.next.key"));
  EXPECT_TRUE(fs::exists(repo_.root + "/fleet/1.root.json"));
  EXPECT_EQ(ReadTextFileBounded(repo_.root + "/fleet/2.root.json", 1 << 20).value(),
            ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value());
  EXPECT_EQ(FleetRootFromImage(), ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value());
  EXPECT_EQ(State("screen-7").root, 2u);
  // The old root key alone no longer rotates anything; nothing is written.
  auto again = RotateFleetRoot({repo_.root, old_root_key, "", {RoleType::kTimestamp}}, clock_);
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument) << again.status().ToString();
  EXPECT_FALSE(fs::exists(repo_.root + "/fleet/3.root.json"));

  // Walked from root 1, the new keys' metadata verifies.
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7);
  auto client_root = metadata::ParseSignedDocument(
      ReadTextFileBounded(dir_ + "/client-screen-7/root.json", 1 << 20).value(), 1 << 20);
  ASSERT_TRUE(client_root.ok());
  EXPECT_EQ(client_root->signed_json["version"], 2);
  // First trusting now: root 2 from the image repository.
  ASSERT_TRUE(ReadAsDevice("screen-8").ok());
  // A device repository made after the rotation, read by a client of root 1.
  state_.devices["screen-9"] = FleetDevice{"dev-screen-9", "screen-9", "shop-12", {}};
  ASSERT_TRUE(Publish().ok());
  ASSERT_TRUE(metadata::TufClient::Initialize(
                  dir_ + "/client-screen-9",
                  ReadTextFileBounded(repo_.root + "/fleet/1.root.json", 1 << 20).value())
                  .ok());
  EXPECT_TRUE(ReadAsDevice("screen-9").ok());

  // Cut short before screen-8's repository was moved: still root 1 and the
  // old keys, which a client of root 1 verifies.
  const std::string screen8 = DeviceDir("screen-8");
  fs::remove_all(screen8);
  fs::copy(screen8_before, screen8, fs::copy_options::recursive);
  const std::string root1 = ReadTextFileBounded(repo_.root + "/fleet/1.root.json", 1 << 20).value();
  ASSERT_TRUE(metadata::TufClient::Initialize(dir_ + "/client-old-8", root1).ok());
  auto read_old = [&]() -> Status {
    DeviceRepositoryRemote remote(repo_, "dev-screen-8");
    ASSIGN_OR_RETURN(auto client,
                     metadata::TufClient::Open(dir_ + "/client-old-8", remote, clock_));
    return client->Refresh();
  };
  // Root 2 is not offered to it yet: its roles are signed under root 1.
  EXPECT_TRUE(read_old().ok());
  EXPECT_EQ(
      ReadDeviceRepositoryFile(repo_, "dev-screen-8", "metadata", "2.root.json").status().code(),
      StatusCode::kNotFound);
  // The next publish moves it (its document unchanged).
  auto finished = Publish();
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->resigned, 1u);
  Status read = read_old();
  EXPECT_TRUE(read.ok()) << read.ToString();
}

// Two rotations, one device repository left on root 1 (as a crash before it
// was moved would leave it): the next publish writes root 2 and root 3
// into it, and a client of root 1 walks both.
TEST_F(FleetRepositoryTest, ARepositoryTwoRootsBehindIsWalkedForward) {
  ASSERT_TRUE(Publish().ok());
  const std::string screen8_before = dir_ + "/screen-8-before";
  fs::copy(DeviceDir("screen-8"), screen8_before, fs::copy_options::recursive);
  const std::string key1 = dir_ + "/fleet-off/fleet-root.key";
  const std::string key2 = dir_ + "/fleet-root-2.key";
  ASSERT_TRUE(Ed25519PrivateKey::Generate().SaveFile(key2).ok());
  auto second = RotateFleetRoot({repo_.root, key1, key2, {RoleType::kSnapshot}}, clock_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  auto third = RotateFleetRoot({repo_.root, key2, "", {RoleType::kTimestamp}}, clock_);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->root_version, 3u);
  EXPECT_EQ(third->devices, 2u);
  fs::remove_all(DeviceDir("screen-8"));
  fs::copy(screen8_before, DeviceDir("screen-8"), fs::copy_options::recursive);
  ASSERT_TRUE(metadata::TufClient::Initialize(
                  dir_ + "/client-screen-8",
                  ReadTextFileBounded(repo_.root + "/fleet/1.root.json", 1 << 20).value())
                  .ok());
  EXPECT_TRUE(ReadAsDevice("screen-8").ok()) << "still root 1 and its keys";
  auto moved = Publish();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->resigned, 1u);
  EXPECT_EQ(State("screen-8").root, 3u);
  auto doc = ReadAsDevice("screen-8");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  auto client_root = metadata::ParseSignedDocument(
      ReadTextFileBounded(dir_ + "/client-screen-8/root.json", 1 << 20).value(), 1 << 20);
  ASSERT_TRUE(client_root.ok());
  EXPECT_EQ(client_root->signed_json["version"], 3);
}

TEST_F(FleetRepositoryTest, RotateRootRefusesBadInputAndWritesNothing) {
  const std::string old_root_key = dir_ + "/fleet-off/fleet-root.key";
  auto nothing = RotateFleetRoot({repo_.root, old_root_key, "", {}}, clock_);
  EXPECT_EQ(nothing.status().code(), StatusCode::kInvalidArgument);
  auto root_role = RotateFleetRoot({repo_.root, old_root_key, "", {RoleType::kRoot}}, clock_);
  EXPECT_EQ(root_role.status().code(), StatusCode::kInvalidArgument);
  const std::string stranger = dir_ + "/stranger.key";
  ASSERT_TRUE(Ed25519PrivateKey::Generate().SaveFile(stranger).ok());
  auto wrong = RotateFleetRoot({repo_.root, stranger, "", {RoleType::kTimestamp}}, clock_);
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("is not a root key of fleet root version 1"),
            std::string::npos)
      << wrong.status().ToString();
  EXPECT_FALSE(fs::exists(repo_.root + "/fleet/2.root.json"));
  EXPECT_FALSE(fs::exists(repo_.root + "/keys/fleet-timestamp.next.key"));
}

TEST_F(OfflineFleetRepositoryTest, RotatedRootIsStagedForTheOfflineTargetsKeyThenAccepted) {
  auto init = InitFleet({repo_.root, "", dir_ + "/fleet-off"}, clock_);
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  auto sign_and_accept = [&](const std::string& pending) {
    ASSERT_TRUE(
        metadata::SignMetadataFile(pending, dir_ + "/off/targets.key", std::nullopt, pending).ok());
    auto accepted = AcceptSigned(repo_.root, pending, "", clock_);
    ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  };
  sign_and_accept(init->pending_file);
  auto rotated = RotateFleetRoot(
      {repo_.root, dir_ + "/fleet-off/fleet-root.key", "", {RoleType::kTimestamp}}, clock_);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(rotated->root_version, 2u);
  ASSERT_FALSE(rotated->pending_file.empty());
  EXPECT_NE(FleetRootFromImage(), ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value());
  sign_and_accept(rotated->pending_file);
  EXPECT_EQ(FleetRootFromImage(), ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value());
}

// The image repository's floor (metadata/release_floor.h) holds whatever the
// fleet model says: a pin below it is published at the floor.
TEST_F(FleetRepositoryTest, APinBelowTheSignedFloorIsPublishedAtTheFloor) {
  state_.device_pins["screen-7"]["kiosk"] = 5;
  ASSERT_TRUE(Publish().ok());
  EXPECT_EQ((*ReadAsDevice("screen-7"))["apps"]["kiosk"]["release"], 5);
  {
    auto image = metadata::Repository::Open(repo_.root, clock_).value();
    auto keys = LoadRoleKeys(repo_, image->root(),
                             {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp});
    ASSERT_TRUE(keys.ok());
    ASSERT_TRUE(metadata::PublishFloor(*image, {"kiosk", 6}, *keys).ok());
  }
  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->resigned, 1u) << "screen-8 runs 7 already";
  EXPECT_EQ((*ReadAsDevice("screen-7"))["apps"]["kiosk"]["release"], 6);
  EXPECT_EQ((*ReadAsDevice("screen-8"))["apps"]["kiosk"]["release"], 7);
}

}  // namespace
}  // namespace flotilla::tracker
