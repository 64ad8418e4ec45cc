#include "tracker/storage/device_db.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace flotilla::tracker {
namespace {

class DeviceDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/devicedb-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<DeviceDb> OpenDb() { return DeviceDb::Open(dir_ + "/t.db", clock_).value(); }

  std::string dir_;
  FakeClock clock_;
};

DeviceReport Report(const std::string& state, std::vector<std::string> errors = {}) {
  DeviceReport r;
  r.app = "web";
  r.release = "r2";
  r.state = state;
  r.progress_done = 5;
  r.progress_total = 10;
  r.bytes_from_peers = 300;
  r.bytes_from_origin = 100;
  r.health = "unknown";
  r.errors = std::move(errors);
  return r;
}

TEST_F(DeviceDbTest, EnrolAuthenticatesAndStoresOnlyHashes) {
  std::string credential, passkey, id;
  {
    auto db = OpenDb();
    auto e = db->Enroll("pi-1", "shop");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    credential = e->credential;
    passkey = e->passkey;
    id = e->device_id;
    EXPECT_EQ(credential.size(), 64u);
    EXPECT_NE(credential, passkey);
    EXPECT_EQ(db->AuthenticateCredential(credential)->device_id, id);
    EXPECT_EQ(db->AuthenticatePasskey(passkey)->site, "shop");
    EXPECT_EQ(db->AuthenticatePasskey(credential).status().code(), StatusCode::kPermissionDenied);
  }
  // The secrets survive a restart, and the file holds no secret in clear.
  auto db = OpenDb();
  EXPECT_EQ(db->AuthenticatePasskey(passkey)->device_id, id);
  std::string bytes;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::ifstream in(entry.path(), std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_EQ(bytes.find(credential), std::string::npos);
  EXPECT_EQ(bytes.find(passkey), std::string::npos);
  EXPECT_NE(bytes.find(HashSecret(passkey)), std::string::npos);
}

TEST_F(DeviceDbTest, ReEnrolmentKeepsTheIdAndRevokesOldSecrets) {
  auto db = OpenDb();
  auto first = db->Enroll("pi-1", "").value();
  auto second = db->Enroll("pi-1", "lab").value();
  EXPECT_EQ(first.device_id, second.device_id);
  EXPECT_FALSE(db->AuthenticateCredential(first.credential).ok());
  EXPECT_FALSE(db->AuthenticatePasskey(first.passkey).ok());
  EXPECT_EQ(db->AuthenticatePasskey(second.passkey)->site, "lab");
}

TEST_F(DeviceDbTest, ReportsFeedTheSnapshotAndStateCounts) {
  auto db = OpenDb();
  auto a = db->Enroll("pi-a", "shop").value();
  auto b = db->Enroll("pi-b", "shop").value();
  db->Enroll("pi-c", "").value();
  ASSERT_TRUE(db->RecordRelease("web", "r2").ok());
  ASSERT_TRUE(db->RecordReport(a.device_id, Report("downloading")).ok());
  ASSERT_TRUE(db->RecordReport(b.device_id, Report("failed", {"health check failed"})).ok());

  auto snap = db->Snapshot(10).value();
  ASSERT_EQ(snap.devices.size(), 3u);
  EXPECT_EQ(snap.devices[0].identity.name, "pi-a");
  EXPECT_EQ(snap.devices[0].report.state, "downloading");
  EXPECT_EQ(snap.devices[2].report.state, "enrolled");
  EXPECT_EQ(snap.bytes_from_peers, 600u);
  EXPECT_EQ(snap.bytes_from_origin, 200u);
  ASSERT_EQ(snap.releases.size(), 1u);
  EXPECT_EQ(snap.releases[0].devices, 2);
  EXPECT_GT(snap.releases[0].published_at, 0);
  ASSERT_EQ(snap.failures.size(), 1u);
  EXPECT_EQ(snap.failures[0].device_name, "pi-b");
  EXPECT_EQ(snap.failures[0].message, "health check failed");

  auto counts = db->DevicesPerState().value();
  EXPECT_EQ(counts["downloading"], 1);
  EXPECT_EQ(counts["failed"], 1);
  EXPECT_EQ(counts["enrolled"], 1);
}

TEST_F(DeviceDbTest, FailuresAreBounded) {
  auto db = OpenDb();
  auto a = db->Enroll("pi-a", "").value();
  std::vector<std::string> errors(16, "e");
  for (int i = 0; i < 70; ++i)
    ASSERT_TRUE(db->RecordReport(a.device_id, Report("failed", errors)).ok());
  EXPECT_EQ(db->Snapshot(5000)->failures.size(), 1000u);
}

}  // namespace
}  // namespace flotilla::tracker
