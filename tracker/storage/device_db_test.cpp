// DeviceDb on both engines: every test runs on a SQLite file and on a
// database of the test process's PostgreSQL cluster.
#include "tracker/storage/device_db.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/engine_test.h"

namespace flotilla::tracker {
namespace {

class DeviceDbTest : public testing::EngineTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(SetUpEngine("devicedb")); }
  std::unique_ptr<DeviceDb> OpenDb() {
    auto db = DeviceDb::Open(url_, clock_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return db.ok() ? std::move(*db) : nullptr;
  }
  // Every byte the engine keeps on disk (its data and journal/WAL files).
  std::string StoredBytes() const {
    if (cluster_ != nullptr) {  // flush PostgreSQL's buffers to its files
      auto engine = SqlEngine::Open(url_);
      EXPECT_TRUE(engine.ok() && (*engine)->ExecScript("CHECKPOINT").ok());
    }
    std::string bytes;
    const std::string root = cluster_ != nullptr ? cluster_->data_dir() : dir_;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      bytes.append(std::istreambuf_iterator<char>(in), {});
    }
    return bytes;
  }

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

TEST_P(DeviceDbTest, EnrolAuthenticatesAndStoresOnlyHashes) {
  std::string credential, passkey, id;
  {
    auto db = OpenDb();
    ASSERT_NE(db, nullptr);
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
  // The secrets survive a restart, and the files hold no secret in clear.
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->AuthenticatePasskey(passkey)->device_id, id);
  const std::string bytes = StoredBytes();
  EXPECT_EQ(bytes.find(credential), std::string::npos);
  EXPECT_EQ(bytes.find(passkey), std::string::npos);
  EXPECT_NE(bytes.find(HashSecret(passkey)), std::string::npos);
}

TEST_P(DeviceDbTest, ReEnrolmentKeepsTheIdAndRevokesOldSecrets) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto first = db->Enroll("pi-1", "").value();
  auto second = db->Enroll("pi-1", "lab").value();
  EXPECT_EQ(first.device_id, second.device_id);
  EXPECT_FALSE(db->AuthenticateCredential(first.credential).ok());
  EXPECT_FALSE(db->AuthenticatePasskey(first.passkey).ok());
  EXPECT_EQ(db->AuthenticatePasskey(second.passkey)->site, "lab");
}

TEST_P(DeviceDbTest, TagsAreGivenAtTheFirstEnrolmentOnly) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto engine = SqlEngine::Open(url_);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto tags_of = [&](const std::string& device_id) {
    auto rows = (*engine)->Query("SELECT tag FROM device_tags WHERE device_id = ? ORDER BY tag",
                                 {device_id});
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<std::string> tags;
    for (size_t i = 0; rows.ok() && i < rows->size(); ++i) tags.push_back(rows->Text(i, 0));
    return tags;
  };
  auto first = db->Enroll("pi-1", "shop", {"portrait", "lobby"}).value();
  EXPECT_EQ(tags_of(first.device_id), (std::vector<std::string>{"lobby", "portrait"}));
  // Enrolled again (its state wiped): the tags it has stay, the operator's.
  auto again = db->Enroll("pi-1", "shop", {"landscape"}).value();
  EXPECT_EQ(again.device_id, first.device_id);
  EXPECT_EQ(tags_of(first.device_id), (std::vector<std::string>{"lobby", "portrait"}));
  EXPECT_TRUE(tags_of(db->Enroll("pi-2", "").value().device_id).empty());
}

TEST_P(DeviceDbTest, AReportedPlatformTagsTheDeviceAndReplacesItsOldPlatformTag) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto engine = SqlEngine::Open(url_);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto tags_of = [&](const std::string& device_id) {
    auto rows = (*engine)->Query("SELECT tag FROM device_tags WHERE device_id = ? ORDER BY tag",
                                 {device_id});
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<std::string> tags;
    for (size_t i = 0; rows.ok() && i < rows->size(); ++i) tags.push_back(rows->Text(i, 0));
    return tags;
  };
  auto a = db->Enroll("pi-a", "", {"lobby", "platformer"}).value();
  auto b = db->Enroll("pi-b", "").value();
  DeviceReport report = Report("idle");
  report.platform = "linux/arm/v7";
  ASSERT_TRUE(db->RecordReport(a.device_id, report).ok());
  ASSERT_TRUE(db->RecordReport(a.device_id, report).ok()) << "told again: nothing changes";
  EXPECT_EQ(tags_of(a.device_id),
            (std::vector<std::string>{"lobby", "platform.linux.arm.v7", "platformer"}));
  // Re-flashed for arm64: the old platform tag goes, the operator's tags stay.
  report.platform = "linux/arm64";
  ASSERT_TRUE(db->RecordReport(a.device_id, report).ok());
  EXPECT_EQ(tags_of(a.device_id),
            (std::vector<std::string>{"lobby", "platform.linux.arm64", "platformer"}));
  // A report without one (a 0.1.0 node, or told already) leaves the tags.
  ASSERT_TRUE(db->RecordReport(a.device_id, Report("running")).ok());
  EXPECT_EQ(tags_of(a.device_id).size(), 3u);
  EXPECT_TRUE(tags_of(b.device_id).empty()) << "another device's tags are its own";
}

TEST_P(DeviceDbTest, ReportsFeedTheSnapshotAndStateCounts) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto a = db->Enroll("pi-a", "shop").value();
  auto b = db->Enroll("pi-B", "shop").value();
  db->Enroll("pi-c", "").value();
  ASSERT_TRUE(db->RecordRelease("web", "r2").ok());
  ASSERT_TRUE(db->RecordRelease("web", "r2").ok()) << "a release is recorded once";
  ASSERT_TRUE(db->RecordReport(a.device_id, Report("downloading")).ok());
  ASSERT_TRUE(db->RecordReport(b.device_id, Report("failed", {"health check failed"})).ok());
  DeviceReport big = Report("running");
  big.bytes_from_peers = uint64_t{5} << 32;  // past 32 bits
  ASSERT_TRUE(db->RecordReport(a.device_id, big).ok());

  auto snap = db->Snapshot(10).value();
  ASSERT_EQ(snap.devices.size(), 3u);
  EXPECT_EQ(snap.devices[0].identity.name, "pi-B") << "names sort by byte order on both engines";
  EXPECT_EQ(snap.devices[1].identity.name, "pi-a");
  EXPECT_EQ(snap.devices[1].report.state, "running") << "the latest report replaces the last";
  EXPECT_EQ(snap.devices[0].report.state, "failed");
  EXPECT_EQ(snap.devices[2].report.state, "enrolled");
  EXPECT_FALSE(snap.devices[2].reported);
  EXPECT_EQ(snap.bytes_from_peers, (uint64_t{5} << 32) + 300u);
  EXPECT_EQ(snap.bytes_from_origin, 200u);
  ASSERT_EQ(snap.releases.size(), 1u);
  EXPECT_EQ(snap.releases[0].devices, 2);
  EXPECT_GT(snap.releases[0].published_at, 0);
  ASSERT_EQ(snap.failures.size(), 1u);
  EXPECT_EQ(snap.failures[0].device_name, "pi-B");
  EXPECT_EQ(snap.failures[0].message, "health check failed");

  auto counts = db->DevicesPerState().value();
  EXPECT_EQ(counts["running"], 1);
  EXPECT_EQ(counts["failed"], 1);
  EXPECT_EQ(counts["enrolled"], 1);
}

// Schema 14: the latest report of each (device, app). A device following an
// app and its agent app keeps both; the one shown per device is the newest
// report of an app other than the agent app, else the agent app's.
TEST_P(DeviceDbTest, EachAppOfADeviceKeepsItsOwnStatus) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto a = db->Enroll("pi-a", "shop").value();
  auto b = db->Enroll("pi-b", "shop").value();
  DeviceReport agent = Report("running");
  agent.app = "flotilla-agent-arm64";
  agent.release = "5";
  agent.health = "healthy";
  agent.bytes_from_peers = 1;
  ASSERT_TRUE(db->RecordReport(a.device_id, Report("failed")).ok());
  clock_.Advance(std::chrono::seconds(2));
  ASSERT_TRUE(db->RecordReport(a.device_id, agent).ok());              // newer, but the agent's
  ASSERT_TRUE(db->RecordReport(b.device_id, agent).ok());              // only the agent app
  ASSERT_TRUE(db->RecordReport(a.device_id, Report("running")).ok());  // replaces web's row only

  auto snap = db->Snapshot(10).value();
  ASSERT_EQ(snap.devices.size(), 2u);
  const DeviceRow& on_a = snap.devices[0];
  EXPECT_EQ(on_a.report.app, "web");
  EXPECT_EQ(on_a.report.state, "running");
  ASSERT_EQ(on_a.apps.size(), 2u);
  EXPECT_EQ(on_a.apps[0].app, "flotilla-agent-arm64");
  EXPECT_EQ(on_a.apps[0].release, "5");
  EXPECT_EQ(on_a.apps[0].state, "running");
  EXPECT_EQ(on_a.apps[0].health, "healthy");
  EXPECT_EQ(on_a.apps[1].app, "web");
  EXPECT_EQ(on_a.apps[1].state, "running");
  EXPECT_EQ(snap.devices[1].report.app, "flotilla-agent-arm64") << "its only app";
  ASSERT_EQ(snap.devices[1].apps.size(), 1u);
  EXPECT_EQ(snap.bytes_from_peers, 300u + 1u + 1u) << "summed over every app's report";
  auto counts = db->DevicesPerState().value();
  EXPECT_EQ(counts["running"], 2) << "one state per device";
  EXPECT_EQ(counts.size(), 1u);
  // Releases count the devices reporting each, per app.
  for (const ReleaseRow& r : snap.releases) {
    EXPECT_EQ(r.devices, r.app == "web" ? 1 : 2) << r.app;
  }

  // An idle report (no app): the device follows none any more; a report of
  // an app replaces the idle one.
  DeviceReport idle;
  idle.state = "idle";
  idle.health = "unknown";
  ASSERT_TRUE(db->RecordReport(a.device_id, idle).ok());
  snap = db->Snapshot(10).value();
  EXPECT_EQ(snap.devices[0].report.state, "idle");
  EXPECT_TRUE(snap.devices[0].apps.empty()) << "the idle row is no app's";
  ASSERT_TRUE(db->RecordReport(a.device_id, Report("downloading")).ok());
  snap = db->Snapshot(10).value();
  EXPECT_EQ(snap.devices[0].report.state, "downloading");
  ASSERT_EQ(snap.devices[0].apps.size(), 1u);
  EXPECT_EQ(snap.devices[0].apps[0].app, "web");
  // A page reads the apps of its own devices.
  snap = db->Snapshot(10, DevicePage{.offset = 1, .limit = 1}).value();
  ASSERT_EQ(snap.devices.size(), 1u);
  EXPECT_EQ(snap.devices[0].identity.name, "pi-b");
  ASSERT_EQ(snap.devices[0].apps.size(), 1u);
  EXPECT_EQ(snap.devices[0].apps[0].app, "flotilla-agent-arm64");
}

// A database at schema 13 (one status per device) migrates to 14 keeping
// each device's row as its app's, on both engines.
TEST_P(DeviceDbTest, Schema13StatusRowsBecomeTheirAppsRows) {
  const std::vector<SqlMigration> v13(TrackerMigrations().begin(),
                                      TrackerMigrations().begin() + 13);
  ASSERT_EQ(v13.back().version, 13);
  {
    auto engine = SqlEngine::Open(url_);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    ASSERT_TRUE(MigrateSchema(**engine, v13).ok());
    ASSERT_TRUE(
        (*engine)
            ->ExecScript("INSERT INTO devices(device_id, name, credential_sha256, "
                         "passkey_sha256, enrolled_at) VALUES('dev-1', 'pi-1', 'c', 'p', 1);"
                         "INSERT INTO device_status VALUES('dev-1', 'kiosk', '6', "
                         "'running', 1, 1, 7, 3, 'healthy', 100, '');")
            .ok());
  }
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto engine = SqlEngine::Open(url_);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->SchemaVersion().value(), 14);
  DeviceReport agent = Report("running");
  agent.app = "flotilla-agent-amd64";
  ASSERT_TRUE(db->RecordReport("dev-1", agent).ok());
  auto rows = (*engine)->Query(
      "SELECT app, release, state, bytes_from_peers FROM device_status ORDER BY app");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->Text(0, 0), "flotilla-agent-amd64");
  EXPECT_EQ(rows->Text(1, 0), "kiosk");
  EXPECT_EQ(rows->Text(1, 1), "6");
  EXPECT_EQ(rows->Int(1, 3), 7);
  // The new key refuses a second row of one app.
  EXPECT_FALSE((*engine)
                   ->ExecScript("INSERT INTO device_status VALUES('dev-1', 'kiosk', '7', "
                                "'running', 1, 1, 0, 0, 'healthy', 101, '');")
                   .ok());
}

TEST_P(DeviceDbTest, FailuresAreBounded) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto a = db->Enroll("pi-a", "").value();
  std::vector<std::string> errors(16, "e");
  for (int i = 0; i < 70; ++i)
    ASSERT_TRUE(db->RecordReport(a.device_id, Report("failed", errors)).ok());
  EXPECT_EQ(db->Snapshot(5000)->failures.size(), 1000u);
}

TEST_P(DeviceDbTest, AReportForAnUnknownDeviceIsAnErrorAndStoresNothing) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  Status st = db->RecordReport("dev-unknown", Report("failed", {"lost"}));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("record report"), std::string::npos) << st.ToString();
  auto snap = db->Snapshot(10).value();
  EXPECT_TRUE(snap.failures.empty()) << "the report's transaction rolled back";
  EXPECT_TRUE(snap.releases.empty());
}

TEST_P(DeviceDbTest, AReportSentAgainWithItsSequenceNumberIsStoredOnce) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto a = db->Enroll("pi-a", "").value();
  DeviceReport first = Report("failed", {"disk full"});
  first.seq = 7;
  ASSERT_TRUE(db->RecordReport(a.device_id, first).ok());
  ASSERT_TRUE(db->RecordReport(a.device_id, first).ok()) << "a retry is answered OK";
  EXPECT_EQ(db->Snapshot(10)->failures.size(), 1u) << "and stored once";

  // A report overtaken by a newer one (a slow replica committing late)
  // changes nothing either.
  DeviceReport newer = Report("running");
  newer.seq = 9;
  ASSERT_TRUE(db->RecordReport(a.device_id, newer).ok());
  DeviceReport late = Report("failed", {"late"});
  late.seq = 8;
  ASSERT_TRUE(db->RecordReport(a.device_id, late).ok());
  auto snap = db->Snapshot(10).value();
  EXPECT_EQ(snap.devices[0].report.state, "running");
  EXPECT_EQ(snap.failures.size(), 1u);

  // Without a number (a 0.1.0 node) every report is stored, as it always was.
  DeviceReport unnumbered = Report("failed", {"no seq"});
  ASSERT_TRUE(db->RecordReport(a.device_id, unnumbered).ok());
  ASSERT_TRUE(db->RecordReport(a.device_id, unnumbered).ok());
  snap = db->Snapshot(10).value();
  EXPECT_EQ(snap.devices[0].report.state, "failed");
  EXPECT_EQ(snap.failures.size(), 3u);
}

TEST_P(DeviceDbTest, SequenceNumbersAreCountedPerDeviceAndRestartAtReEnrolment) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  auto a = db->Enroll("pi-a", "").value();
  auto b = db->Enroll("pi-b", "").value();
  DeviceReport r = Report("failed", {"x"});
  r.seq = 5;
  ASSERT_TRUE(db->RecordReport(a.device_id, r).ok());
  ASSERT_TRUE(db->RecordReport(b.device_id, r).ok()) << "another device's 5 is its own";
  EXPECT_EQ(db->Snapshot(10)->failures.size(), 2u);

  // A node whose state was wiped enrols again and counts from 1.
  db->Enroll("pi-a", "").value();
  r.seq = 1;
  ASSERT_TRUE(db->RecordReport(a.device_id, r).ok());
  EXPECT_EQ(db->Snapshot(10)->failures.size(), 3u);
}

TEST_P(DeviceDbTest, SecretsOfAnotherReplicaAreFoundAndItsRevocationsSeenWithinAMinute) {
  auto a = OpenDb();  // two replicas over one database
  auto b = OpenDb();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto first = b->Enroll("pi-1", "shop").value();
  EXPECT_EQ(a->AuthenticateCredential(first.credential)->device_id, first.device_id)
      << "enrolled through b, known to a";
  EXPECT_EQ(a->AuthenticatePasskey(first.passkey)->site, "shop");
  EXPECT_EQ(a->AuthenticatePasskey(std::string(64, '9')).status().code(),
            StatusCode::kPermissionDenied);

  auto second = b->Enroll("pi-1", "shop").value();  // re-enrolled through b
  EXPECT_TRUE(a->AuthenticatePasskey(second.passkey).ok());
  EXPECT_TRUE(a->AuthenticatePasskey(first.passkey).ok()) << "a's cache, for up to a minute";
  clock_.Advance(DeviceDb::kSecretRecheck);
  EXPECT_EQ(a->AuthenticatePasskey(first.passkey).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(a->AuthenticateCredential(first.credential).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(a->AuthenticateCredential(second.credential).ok());
}

FLOTILLA_ON_BOTH_ENGINES(DeviceDbTest);

// A tracker.db in the format 0.1.0 wrote opens, keeps its devices, their
// secrets, reports, failures and releases, and takes new reports.
// testdata/tracker-0.1.0.db: the sqlite3 shell ran 0.1.0's schema script
// (commit 23f4e79, tracker/device_db.cpp, with its PRAGMA user_version = 1)
// in WAL mode, then inserted the rows 0.1.0's Enroll/RecordReport/
// RecordRelease write; credential "11"x32, passkey "22"x32.
TEST(DeviceDbCompatTest, OpensWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/devicedb-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db",
      dir + "/tracker.db");
  FakeClock clock;
  auto db = DeviceDb::Open(dir + "/tracker.db", clock);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  std::string credential, passkey;
  for (int i = 0; i < 32; ++i) {
    credential += "11";
    passkey += "22";
  }
  auto by_passkey = (*db)->AuthenticatePasskey(passkey);
  ASSERT_TRUE(by_passkey.ok()) << by_passkey.status().ToString();
  EXPECT_EQ(by_passkey->device_id, "dev-0123456789abcdef");
  EXPECT_EQ((*db)->AuthenticateCredential(credential)->name, "pi-old");

  auto snap = (*db)->Snapshot(10).value();
  ASSERT_EQ(snap.devices.size(), 1u);
  EXPECT_EQ(snap.devices[0].report.state, "running");
  EXPECT_EQ(snap.devices[0].report.bytes_from_peers, 700u);
  ASSERT_EQ(snap.failures.size(), 1u);
  EXPECT_EQ(snap.failures[0].message, "health check failed");
  ASSERT_EQ(snap.releases.size(), 1u);
  EXPECT_EQ(snap.releases[0].published_at, 1764979100);

  ASSERT_TRUE((*db)->RecordReport("dev-0123456789abcdef", Report("failed", {"new"})).ok());
  // 0.1.0's one row is its app's (schema 14): another app's report keeps it.
  DeviceReport agent = Report("running");
  agent.app = "flotilla-agent-arm64";
  ASSERT_TRUE((*db)->RecordReport("dev-0123456789abcdef", agent).ok());
  snap = (*db)->Snapshot(10).value();
  ASSERT_EQ(snap.devices[0].apps.size(), 2u);
  EXPECT_EQ(snap.devices[0].apps[1].app, "web");
  EXPECT_EQ(snap.devices[0].apps[1].state, "failed");
  EXPECT_EQ(snap.devices[0].report.app, "web");
  db->reset();
  auto reopened = DeviceDb::Open(dir + "/tracker.db", clock);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->Snapshot(10)->failures.size(), 2u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
