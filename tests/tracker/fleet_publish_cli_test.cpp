// `fleet init` and `fleet publish` with the real flotilla-tracker binary on a
// repository made by `init`, with releases published in its image
// repository; each device's fleet repository is then read as a device will
// read it: metadata::TufClient trusting the fleet root the image repository
// offers.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"
#include "tests/support/test_util.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/device_state.h"

namespace flotilla::testing {
namespace {

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

class FleetPublishCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("fleet-publish-cli");
    ASSERT_FALSE(dir_.empty());
    repo_ = tracker::RepositoryLayout{dir_ + "/repo"};
    auto init = Tracker("init " + repo_.root + " --public-url http://127.0.0.1:9");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    auto image = metadata::Repository::Open(repo_.root, clock_);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    auto keys = tracker::LoadRoleKeys(
        repo_, (*image)->root(), {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp});
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    auto db = tracker::DeviceDb::Open(repo_.default_db_path(), clock_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (uint64_t v : {6, 7}) {
      ASSERT_TRUE(metadata::PublishRelease(**image, KioskRelease(v), *keys).ok());
      ASSERT_TRUE((*db)->RecordRelease("kiosk", std::to_string(v)).ok());
    }
    for (const char* name : {"screen-7", "screen-8"}) {
      auto enrolled = (*db)->Enroll(name, "shop-12");
      ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
      ids_[name] = enrolled->device_id;
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  }
  Json FleetJson(const std::string& args) {
    auto run = Tracker(args + " --repository " + repo_.root + " --json");
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
    auto json = ParseJsonStrict(run.output);
    EXPECT_TRUE(json.ok()) << args << ": " << run.output;
    return json.ok() ? *json : Json();
  }
  // device.json of `name`'s fleet repository, verified from the fleet root
  // that is the image repository's target fleet/root.json.
  Result<Json> ReadAsDevice(const std::string& name) {
    const std::string client_dir = dir_ + "/client-" + name;
    std::filesystem::remove_all(client_dir);
    ASSIGN_OR_RETURN(Seen seen, RefreshAsDevice(name, repo_.root, client_dir));
    return seen.document;
  }
  // What `name`'s TUF client in `client_dir` (made from the fleet root of
  // `repo_root`'s image repository when it has none yet) verifies in its
  // fleet repository of `repo_root`.
  struct Seen {
    uint64_t timestamp = 0, snapshot = 0, targets = 0;
    Json document;
  };
  Result<Seen> RefreshAsDevice(const std::string& name, const std::string& repo_root,
                               const std::string& client_dir) {
    const tracker::RepositoryLayout repo{repo_root};
    if (!std::filesystem::exists(client_dir)) {
      ASSIGN_OR_RETURN(auto image, metadata::Repository::Open(repo.root, clock_));
      const auto& root_target = image->targets().targets.at(tracker::kFleetRootTarget);
      ASSIGN_OR_RETURN(std::string root,
                       ReadTextFileBounded(image->targets_dir() + "/fleet/" +
                                               root_target.hashes.at("sha256") + ".root.json",
                                           1 << 20));
      RETURN_IF_ERROR(metadata::TufClient::Initialize(client_dir, root));
    }
    tracker::DeviceRepositoryRemote remote(repo, ids_.at(name));
    ASSIGN_OR_RETURN(auto client, metadata::TufClient::Open(client_dir, remote, clock_));
    RETURN_IF_ERROR(client->Refresh());
    ASSIGN_OR_RETURN(metadata::TargetFile info,
                     client->GetTargetInfo(tracker::kFleetDocumentTarget));
    ASSIGN_OR_RETURN(auto got, client->DownloadTarget(info, client_dir + "/targets"));
    ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(got.path, 1 << 20));
    Seen seen{client->timestamp()->common.version, client->snapshot()->common.version,
              client->targets()->common.version, Json()};
    ASSIGN_OR_RETURN(seen.document, ParseJsonStrict(bytes));
    return seen;
  }

  SystemClock& clock_ = SystemClock::Instance();
  std::string dir_;
  tracker::RepositoryLayout repo_;
  std::map<std::string, std::string> ids_;
};

TEST_F(FleetPublishCliTest, InitPublishPinAndEachDeviceReadsItsOwnDocument) {
  Json init = FleetJson("fleet init --offline-keys " + dir_ + "/fleet-off");
  EXPECT_EQ(init["root_version"], 1);
  EXPECT_EQ(init["pending"], "") << "the image repository's targets key is online";
  FleetJson("group create shop --select site=shop-12");
  FleetJson("app assign kiosk --group shop");

  Json published = FleetJson("fleet publish");
  EXPECT_EQ(published, Json::parse(R"({"devices":2,"failed":[],"resigned":2})"));
  auto seven = ReadAsDevice("screen-7");
  ASSERT_TRUE(seven.ok()) << seven.status().ToString();
  EXPECT_EQ((*seven)["device"], ids_["screen-7"]);
  EXPECT_EQ((*seven)["apps"]["kiosk"]["release"], 7);
  EXPECT_EQ((*seven)["apps"]["kiosk"]["target"], "apps/kiosk/release-7.json");

  FleetJson("pin --device screen-8 --app kiosk --release 6");
  EXPECT_EQ(FleetJson("fleet publish"), Json::parse(R"({"devices":2,"failed":[],"resigned":1})"));
  EXPECT_EQ(FleetJson("fleet publish --device screen-8"),
            Json::parse(R"({"devices":1,"failed":[],"resigned":0})"));
  auto eight = ReadAsDevice("screen-8");
  ASSERT_TRUE(eight.ok()) << eight.status().ToString();
  EXPECT_EQ((*eight)["device"], ids_["screen-8"]);
  EXPECT_EQ((*eight)["apps"]["kiosk"]["release"], 6);
  seven = ReadAsDevice("screen-7");
  ASSERT_TRUE(seven.ok()) << seven.status().ToString();
  EXPECT_EQ((*seven)["apps"]["kiosk"]["release"], 7);

  auto again =
      Tracker("fleet init --offline-keys " + dir_ + "/fleet-off --repository " + repo_.root);
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("offers it"), std::string::npos) << again.output;
  auto neither = Tracker("fleet init --repository " + repo_.root);
  EXPECT_EQ(neither.exit_code, 2) << neither.output;
}

// A device whose state file is corrupt is named and left alone; the others
// are published, and the command says it did not finish (exit 1).
TEST_F(FleetPublishCliTest, ACorruptDeviceIsNamedAndTheOthersArePublished) {
  FleetJson("fleet init --offline-keys " + dir_ + "/fleet-off");
  FleetJson("group create shop --select site=shop-12");
  FleetJson("app assign kiosk --group shop");
  FleetJson("fleet publish");
  const std::string state = repo_.fleet_device_dir(ids_["screen-7"]) + "/state";
  ASSERT_TRUE(WriteFileAtomic(state, "not a state file\n").ok());
  FleetJson("pin --device screen-8 --app kiosk --release 6");

  auto run = Tracker("fleet publish --repository " + repo_.root);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("1 device(s), 1 re-signed"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("device screen-7: "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(state), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("1 device(s) not published"), std::string::npos) << run.output;
  auto eight = ReadAsDevice("screen-8");
  ASSERT_TRUE(eight.ok()) << eight.status().ToString();
  EXPECT_EQ((*eight)["apps"]["kiosk"]["release"], 6);

  const std::string out = dir_ + "/publish.json";
  auto json =
      RunShell("{ " + BinaryPath("flotilla-tracker") + " fleet publish --json --repository " +
               repo_.root + " >" + out + " 2>/dev/null; }");
  EXPECT_EQ(json.exit_code, 1) << json.output;
  auto parsed = ParseJsonStrict(ReadTextFileBounded(out, 1 << 20).value_or(""));
  ASSERT_TRUE(parsed.ok()) << ReadTextFileBounded(out, 1 << 20).value_or("");
  ASSERT_EQ((*parsed)["failed"].size(), 1u) << *parsed;
  EXPECT_EQ((*parsed)["failed"][0]["device"], "screen-7");
  EXPECT_EQ(ReadTextFileBounded(state, 1 << 20).value(), "not a state file\n");
}

TEST_F(FleetPublishCliTest, PublishBeforeInitSaysWhatToRun) {
  auto run = Tracker("fleet publish --repository " + repo_.root);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("fleet init"), std::string::npos) << run.output;
}

TEST_F(FleetPublishCliTest, RestoreSignsEachDevicesFleetVersionsPastThoseSignedAfterTheBackup) {
  FleetJson("fleet init --offline-keys " + dir_ + "/fleet-off");
  FleetJson("group create shop --select site=shop-12");
  FleetJson("app assign kiosk --group shop");
  FleetJson("fleet publish");
  const std::string client = dir_ + "/client-kept";
  auto backed_up = RefreshAsDevice("screen-8", repo_.root, client);
  ASSERT_TRUE(backed_up.ok()) << backed_up.status().ToString();
  auto backup = Tracker("backup --repository " + repo_.root + " " + dir_ + "/backup");
  ASSERT_EQ(backup.exit_code, 0) << backup.output;

  // After the backup the old tracker signs two more versions for screen-8,
  // and its device trusts them.
  FleetJson("pin --device screen-8 --app kiosk --release 6");
  FleetJson("fleet publish");
  FleetJson("unpin --device screen-8 --app kiosk");
  FleetJson("fleet publish");
  auto seen = RefreshAsDevice("screen-8", repo_.root, client);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  ASSERT_EQ(seen->timestamp, backed_up->timestamp + 2);

  const std::string restored = dir_ + "/restored";
  auto restore =
      Tracker("restore " + dir_ + "/backup --version-step 1 --repository " + restored + " --json");
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  auto outcome = ParseJsonStrict(restore.output);
  ASSERT_TRUE(outcome.ok()) << restore.output;
  EXPECT_EQ((*outcome)["fleet_devices"], 2) << restore.output;

  // The device accepts the restored tracker's metadata: every version is
  // above what it trusts, and the document is the backup's.
  auto after = RefreshAsDevice("screen-8", restored, client);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_GT(after->timestamp, seen->timestamp);
  EXPECT_GT(after->snapshot, seen->snapshot);
  EXPECT_GT(after->targets, seen->targets);
  EXPECT_EQ(after->document["apps"]["kiosk"]["release"], 7) << after->document.dump();
  // The versions skipped past are gone; a device new to the restored
  // tracker reads it too.
  auto dir = tracker::DeviceRepositoryDir(tracker::RepositoryLayout{restored}, ids_["screen-8"]);
  ASSERT_TRUE(dir.ok());
  auto state = tracker::ReadDeviceState(*dir);
  ASSERT_TRUE(state.ok() && *state) << state.status().ToString();
  EXPECT_EQ((*state)->files.size(), 4u) << "the current version only";
  EXPECT_EQ((*state)->targets, after->targets);
  auto fresh = RefreshAsDevice("screen-7", restored, dir_ + "/client-new");
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->targets, after->targets);
}

}  // namespace
}  // namespace flotilla::testing
