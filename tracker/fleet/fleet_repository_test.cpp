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
  // What a device's TufClient reads as device.json from `device`'s repository,
  // trusting the fleet root in a client directory of its own (kept across calls).
  Result<Json> ReadAsDevice(const std::string& device) {
    const std::string client_dir = dir_ + "/client-" + device;
    if (!fs::exists(client_dir)) {
      RETURN_IF_ERROR(metadata::TufClient::Initialize(client_dir, FleetRootFromImage()));
    }
    metadata::DirectoryRemote remote(DeviceDir(device) + "/metadata",
                                     DeviceDir(device) + "/targets");
    ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(client_dir, remote, clock_));
    RETURN_IF_ERROR(client->Refresh());
    ASSIGN_OR_RETURN(metadata::TargetFile info, client->GetTargetInfo(kFleetDocumentTarget));
    ASSIGN_OR_RETURN(auto got, client->DownloadTarget(info, client_dir + "/targets"));
    ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(got.path, 1 << 20));
    return Json::parse(bytes);
  }
  // The device's repository as the fleet signer opens it.
  std::unique_ptr<metadata::Repository> OpenDevice(const std::string& device) {
    return metadata::Repository::Open(DeviceDir(device), clock_, FleetRepositoryOptions()).value();
  }
  uint64_t TargetsVersion(const std::string& device) {
    return OpenDevice(device)->targets().common.version;
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
  EXPECT_EQ(published.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(published.status().message().find("release 9 of kiosk"), std::string::npos);
  EXPECT_EQ(Publish("nobody").status().code(), StatusCode::kNotFound);
}

TEST_F(FleetRepositoryTest, DeviceRepositoryWithoutATimestampIsMadeAgain) {
  // A power cut while a device's repository was first made leaves no
  // timestamp: nothing was published, and the next publish starts over.
  const std::string dir = DeviceDir("screen-7");
  ASSERT_TRUE(CreateDirectories(dir + "/metadata").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/metadata/root.json", FleetRootFromImage()).ok());
  ASSERT_TRUE(Publish().ok());
  EXPECT_TRUE(ReadAsDevice("screen-7").ok());
}

TEST_F(FleetRepositoryTest, PublishCutShortBeforeItsTimestampIsPutBackAndRedone) {
  ASSERT_TRUE(Publish().ok());
  const std::string timestamp = DeviceDir("screen-7") + "/metadata/timestamp.json";
  const std::string published = ReadTextFileBounded(timestamp, 1 << 20).value();
  state_.device_pins["screen-7"]["kiosk"] = 6;
  ASSERT_TRUE(Publish().ok());
  // As if the power went before the new timestamp: targets.json and
  // snapshot.json are a version ahead of the timestamp on disk.
  ASSERT_TRUE(WriteFileAtomic(timestamp, published).ok());
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 7) << "what the timestamp names";
  auto redone = Publish();
  ASSERT_TRUE(redone.ok()) << redone.status().ToString();
  EXPECT_EQ(redone->resigned, 1u);
  doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 6);
}

TEST_F(FleetRepositoryTest, IndexThatNamesAnotherTimestampIsNotTrustedAndVersionsStillGrow) {
  // As if the power went after a publish's timestamp but before its index:
  // the index left on disk names the timestamp before.
  ASSERT_TRUE(Publish().ok());
  const std::string index = DeviceDir("screen-7") + "/metadata/fleet-index";
  const std::string before = ReadTextFileBounded(index, 1 << 20).value();
  state_.device_pins["screen-7"]["kiosk"] = 6;
  ASSERT_TRUE(Publish().ok());
  const uint64_t pinned = TargetsVersion("screen-7");
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_TRUE(WriteFileAtomic(index, before).ok());

  state_.device_pins["screen-7"]["kiosk"] = 5;
  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->resigned, 1u);
  EXPECT_EQ(TargetsVersion("screen-7"), pinned + 1) << "never a version already used";
  doc = ReadAsDevice("screen-7");  // the client that trusted the pinned version
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 5);
  // The index is written again: it names the versions on disk.
  auto written = ParseDeviceIndex(ReadTextFileBounded(index, 1 << 20).value());
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->targets, pinned + 1);
}

TEST_F(FleetRepositoryTest, VersionedFilesACrashLeftUnnamedAreWrittenAgain) {
  // A power cut after the next targets and snapshot were begun, before the
  // timestamp named them: torn files under the next version numbers.
  ASSERT_TRUE(Publish().ok());
  const uint64_t seven = TargetsVersion("screen-7");
  const std::string md = DeviceDir("screen-7") + "/metadata/";
  auto snapshot = OpenDevice("screen-7")->snapshot();
  ASSERT_TRUE(WriteFileAtomic(md + std::to_string(seven + 1) + ".targets.json", "{\"sig").ok());
  ASSERT_TRUE(
      WriteFileAtomic(md + std::to_string(snapshot.common.version + 1) + ".snapshot.json", "")
          .ok());
  state_.device_pins["screen-7"]["kiosk"] = 6;
  auto published = Publish();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->resigned, 1u);
  EXPECT_EQ(TargetsVersion("screen-7"), seven + 1);
  auto doc = ReadAsDevice("screen-7");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 6);
}

TEST_F(FleetRepositoryTest, MissingOrUnreadableIndexFallsBackToTheRepository) {
  ASSERT_TRUE(Publish().ok());
  const uint64_t seven = TargetsVersion("screen-7");
  const std::string index = DeviceDir("screen-7") + "/metadata/fleet-index";
  const std::string good = ReadTextFileBounded(index, 1 << 20).value();
  // Gone (a repository an older tracker wrote): the document is the same,
  // nothing is re-signed, and the index is made.
  fs::remove(index);
  auto again = Publish();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->resigned, 0u);
  EXPECT_EQ(TargetsVersion("screen-7"), seven);
  EXPECT_EQ(ReadTextFileBounded(index, 1 << 20).value(), good);
  // Unreadable, or naming another root (and versions below the
  // repository's): not trusted; the versions still come from the repository.
  // The index of another root names the current timestamp.
  auto other_root = [&] {
    FleetSigner::DeviceIndex current =
        ParseDeviceIndex(ReadTextFileBounded(index, 1 << 20).value()).value();
    current.root_sha256 = std::string(64, '0');
    current.targets = current.snapshot = current.timestamp = 1;
    return FormatDeviceIndex(current);
  };
  for (int i = 0; i < 4; ++i) {
    const std::string bad = i == 0   ? "fleet-index-2 2 2 2\n"
                            : i == 1 ? "[]"
                            : i == 2 ? ""
                                     : other_root();
    ASSERT_TRUE(WriteFileAtomic(index, bad).ok());
    state_.device_pins["screen-7"]["kiosk"] = state_.device_pins["screen-7"]["kiosk"] == 5 ? 6 : 5;
    const uint64_t before = TargetsVersion("screen-7");
    auto published = Publish();
    ASSERT_TRUE(published.ok()) << bad << ": " << published.status().ToString();
    EXPECT_EQ(published->resigned, 1u) << bad;
    EXPECT_EQ(TargetsVersion("screen-7"), before + 1) << bad;
    auto doc = ReadAsDevice("screen-7");
    ASSERT_TRUE(doc.ok()) << bad << ": " << doc.status().ToString();
    EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], state_.device_pins["screen-7"]["kiosk"]);
  }
}

// Files of a device repository: versioned targets, versioned snapshots, documents.
struct RepositoryFiles {
  int targets = 0;
  int snapshots = 0;
  int documents = 0;
  bool root = false;
};
RepositoryFiles CountFiles(const std::string& device_dir) {
  RepositoryFiles files;
  for (const auto& entry : fs::directory_iterator(device_dir + "/metadata")) {
    const std::string name = entry.path().filename().string();
    files.targets += name.ends_with(".targets.json") && name != "targets.json";
    files.snapshots += name.ends_with(".snapshot.json") && name != "snapshot.json";
    files.root = files.root || name == "1.root.json";
  }
  for (const auto& entry : fs::directory_iterator(device_dir + "/targets")) {
    files.documents += entry.path().filename().string().ends_with(".device.json");
  }
  return files;
}

constexpr auto kDay = std::chrono::hours(24);

TEST_F(FleetRepositoryTest, ManyChangesLeaveTheCurrentAndPreviousVersionsOnly) {
  ASSERT_TRUE(Publish().ok());
  ASSERT_TRUE(ReadAsDevice("screen-7").ok());
  const std::string md = DeviceDir("screen-7") + "/metadata/";
  // Three documents in turn (and each back again), so a document the
  // previous targets no longer lists is removed by name.
  const uint64_t pins[] = {5, 6, 7, 5, 6, 7, 6, 7};
  for (int i = 0; i < 8; ++i) {
    // One change goes through the whole repository (no index), as after a
    // power cut: it prunes too.
    if (i == 3) fs::remove(md + "fleet-index");
    state_.device_pins["screen-7"]["kiosk"] = pins[i];
    auto published = Publish();
    ASSERT_TRUE(published.ok()) << published.status().ToString();
    ASSERT_EQ(published->resigned, 1u);
    const RepositoryFiles files = CountFiles(DeviceDir("screen-7"));
    EXPECT_EQ(files.targets, 2) << i;
    EXPECT_EQ(files.snapshots, 2) << i;
    EXPECT_EQ(files.documents, 2) << i;
    EXPECT_TRUE(files.root) << "root files stay";
    // What the previous timestamp names is still there: its snapshot, that
    // snapshot's targets and the document it lists.
    const uint64_t targets = TargetsVersion("screen-7");
    auto previous = metadata::ParseTargets(
        metadata::ParseSignedDocument(
            ReadTextFileBounded(md + std::to_string(targets - 1) + ".targets.json", 1 << 20)
                .value(),
            1 << 20)
            .value()
            .signed_json);
    ASSERT_TRUE(previous.ok()) << previous.status().ToString();
    EXPECT_TRUE(fs::exists(DeviceDir("screen-7") + "/targets/" +
                           previous->targets.at(kFleetDocumentTarget).hashes.at("sha256") +
                           ".device.json"));
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
  auto repo7 = OpenDevice("screen-7");
  EXPECT_GE(repo7->timestamp().common.expires, clock_.Now() + 6 * kDay);
  EXPECT_GE(repo7->targets().common.expires, clock_.Now() + 6 * kDay);
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
    EXPECT_EQ(CountFiles(DeviceDir(device)).targets, 2) << "pruned";
  }
  EXPECT_EQ((*doc)["apps"]["kiosk"]["release"], 6);
}

TEST_F(FleetRepositoryTest, RefresherReadsTheRepositoryWhenItsIndexIsMissingOrOld) {
  ASSERT_TRUE(Publish().ok());
  const std::string index7 = DeviceDir("screen-7") + "/metadata/fleet-index";
  const std::string index8 = DeviceDir("screen-8") + "/metadata/fleet-index";
  fs::remove(index7);
  // The line an older tracker wrote (no expiry): refused, and written again.
  std::string old = ReadTextFileBounded(index8, 1 << 20).value();
  old = "fleet-index-1" + old.substr(13, old.rfind(' ') - 13) + "\n";
  ASSERT_TRUE(WriteFileAtomic(index8, old).ok());
  const uint64_t seven = TargetsVersion("screen-7");
  clock_.Advance(4 * kDay);
  FleetRefresher refresher(repo_.root, clock_);
  auto wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_EQ(refresher.last_resigned(), 2u);
  EXPECT_EQ(TargetsVersion("screen-7"), seven + 1);
  for (const std::string& index : {index7, index8}) {
    auto written = ParseDeviceIndex(ReadTextFileBounded(index, 1 << 20).value());
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    EXPECT_GE(WallTime(std::chrono::seconds(written->expires)), clock_.Now() + 6 * kDay);
  }
  for (const std::string device : {"screen-7", "screen-8"}) {
    auto doc = ReadAsDevice(device);
    ASSERT_TRUE(doc.ok()) << device << ": " << doc.status().ToString();
  }
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
  // The next snapshot version of screen-8 cannot be written (a directory
  // holds its name): its re-signing fails after its new targets, as a
  // crash there would leave it.
  auto snapshot8 = OpenDevice("screen-8")->snapshot();
  const std::string obstacle = DeviceDir("screen-8") + "/metadata/" +
                               std::to_string(snapshot8.common.version + 1) + ".snapshot.json";
  ASSERT_TRUE(fs::create_directories(obstacle + "/x"));

  FleetRefresher refresher(repo_.root, clock_, /*batch=*/2);
  auto failed = refresher.Refresh(clock_.Now());
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(TargetsVersion("screen-7"), before["screen-7"] + 1) << "signed before the failure";
  EXPECT_EQ(TargetsVersion("screen-9"), before["screen-9"]) << "not reached";
  for (const std::string device : {"screen-7", "screen-8", "screen-9"}) {
    auto doc = ReadAsDevice(device);
    ASSERT_TRUE(doc.ok()) << device << ": " << doc.status().ToString();
  }

  fs::remove_all(obstacle);
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
    EXPECT_EQ(CountFiles(DeviceDir(device)).snapshots, 2) << device;
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

TEST(FleetDeviceIndexTest, IndexLineRoundTripsAndAnythingElseIsRefused) {
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c'), d(64, 'd');
  FleetSigner::DeviceIndex index{7, 8, 9, a, d, b, c, 1800604800};
  const std::string line = FormatDeviceIndex(index);
  EXPECT_EQ(line, "fleet-index-3 7 8 9 " + a + " " + d + " " + b + " " + c + " 1800604800\n");
  auto parsed = ParseDeviceIndex(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->targets, 7u);
  EXPECT_EQ(parsed->snapshot, 8u);
  EXPECT_EQ(parsed->timestamp, 9u);
  EXPECT_EQ(parsed->document_sha256, a);
  EXPECT_EQ(parsed->previous_document_sha256, d);
  EXPECT_EQ(parsed->timestamp_sha256, b);
  EXPECT_EQ(parsed->root_sha256, c);
  EXPECT_EQ(parsed->expires, 1800604800);

  // No previous document: "-"; an older tracker's fleet-index-2: not known.
  index.previous_document_sha256 = "";
  EXPECT_EQ(FormatDeviceIndex(index),
            "fleet-index-3 7 8 9 " + a + " - " + b + " " + c + " 1800604800\n");
  const std::pair<std::string, std::optional<std::string>> lines[] = {
      {FormatDeviceIndex(index), ""},
      {"fleet-index-2 7 8 9 " + a + " " + b + " " + c + " 5\n", std::nullopt}};
  for (const auto& [text, previous] : lines) {
    parsed = ParseDeviceIndex(text);
    ASSERT_TRUE(parsed.ok()) << text << parsed.status().ToString();
    EXPECT_EQ(parsed->previous_document_sha256, previous) << text;
    EXPECT_EQ(parsed->document_sha256, a) << text;
    EXPECT_EQ(parsed->timestamp_sha256, b) << text;
    EXPECT_EQ(parsed->root_sha256, c) << text;
  }

  const std::string hashes = " " + a + " " + d + " " + b + " " + c;
  const std::string old_hashes = " " + a + " " + b + " " + c;
  for (const std::string& bad : {
           line.substr(0, line.size() - 1),                             // torn
           "fleet-index-1 7 8 9" + old_hashes + "\n",                   // the oldest format
           "fleet-index-4 7 8 9" + hashes + " 5\n",                     // another format
           "fleet-index-3 7 8 9" + old_hashes + " 5\n",                 // a field missing
           "fleet-index-2 7 8 9" + hashes + " 5\n",                     // a field more
           "fleet-index-3 0 8 9" + hashes + " 5\n",                     // version 0
           "fleet-index-3 7 8 -9" + hashes + " 5\n",                    // not a number
           "fleet-index-3 7 8 99999999999999999999" + hashes + " 5\n",  // past 64 bits
           "fleet-index-3 7 8 9" + hashes + " 5 x\n",                   // a field more
           "fleet-index-3 7 8 9" + hashes + " 0\n",                     // no expiry
           "fleet-index-3 7 8 9" + hashes + " 5x\n",                    // not a number
           "fleet-index-3 7 8 9 " + std::string(64, 'A') + hashes.substr(65) + " 5\n",
           "fleet-index-3 7 8 9 " + a + " x" + old_hashes.substr(65) + " 5\n",  // not a hash
           "fleet-index-3  7 8 9" + hashes + " 5\n",
       }) {
    EXPECT_EQ(ParseDeviceIndex(bad).status().code(), StatusCode::kCorruption) << bad;
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
  EXPECT_EQ(OpenDevice("screen-7")->root().common.version, 2u);
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
    metadata::DirectoryRemote remote(screen8 + "/metadata", screen8 + "/targets");
    ASSIGN_OR_RETURN(auto client,
                     metadata::TufClient::Open(dir_ + "/client-old-8", remote, clock_));
    return client->Refresh();
  };
  EXPECT_TRUE(read_old().ok());
  // Cut short between its new root and its new timestamp: root 2 beside
  // metadata the old keys signed, which no client takes...
  const std::string root2 = ReadTextFileBounded(FleetRootPath(repo_), 1 << 20).value();
  ASSERT_TRUE(WriteFileAtomic(screen8 + "/metadata/2.root.json", root2).ok());
  ASSERT_TRUE(WriteFileAtomic(screen8 + "/metadata/root.json", root2).ok());
  EXPECT_FALSE(read_old().ok());
  // ... until the next publish moves it (its document unchanged).
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
  EXPECT_EQ(OpenDevice("screen-8")->root().common.version, 3u);
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
