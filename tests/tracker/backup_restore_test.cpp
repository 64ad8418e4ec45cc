// `flotilla-tracker backup` and `restore` with the real binary: a backup
// taken while serve runs, restored into a new directory and served again,
// keeps devices' credentials and reports, the online keys' modes, and
// metadata that a device which kept refreshing after the backup accepts.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "core/clock.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_metadata_remote.h"
#include "tests/support/tracker_process.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using metadata::RoleType;

const std::string kMakeImage = std::string(FLOTILLA_SOURCE_DIR) + "/tests/layerstore/make_image.sh";
constexpr char kSpec[] = R"({"name": "demo", "command": ["/bin/sh", "-c", "sleep 1000"]})";

// Versions a device's TUF client trusts after refreshing from `port`.
struct Trusted {
  uint64_t timestamp = 0, snapshot = 0, targets = 0;
  bool has_demo = false;
};

Result<Trusted> RefreshDevice(const std::string& client_dir, int port) {
  TrackerMetadataRemote remote(port);
  ASSIGN_OR_RETURN(auto client,
                   metadata::TufClient::Open(client_dir, remote, SystemClock::Instance()));
  RETURN_IF_ERROR(client->Refresh());
  Trusted t{client->timestamp()->common.version, client->snapshot()->common.version,
            client->targets()->common.version};
  ASSIGN_OR_RETURN(auto releases, metadata::LatestReleases(*client->targets()));
  t.has_demo = releases.contains("demo");
  return t;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

class BackupRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("backup");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    auto init = Tracker("init " + repo_ + " --public-url http://127.0.0.1:9");
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  void TearDown() override { fs::remove_all(dir_); }

  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  }

  std::string dir_;
  std::string repo_;
};

TEST_F(BackupRestoreTest, RestoredTrackerKeepsDevicesReportsKeysAndMetadataVersionsAhead) {
  fs::create_directories(dir_ + "/img");
  auto made = RunShell("bash " + kMakeImage + " " + dir_ + "/img 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/app.json", std::string(kSpec)).ok());
  auto published = Tracker("publish --repository " + repo_ + " --app demo --spec " + dir_ +
                           "/app.json " + dir_ + "/img/docker.tar");
  ASSERT_EQ(published.exit_code, 0) << published.output;

  fs::create_directories(dir_ + "/old");
  TrackerProcess old_tracker;
  ASSERT_TRUE(old_tracker.Start(dir_ + "/old", repo_)) << old_tracker.Log();
  tracker::TrackerClient client(old_tracker.url());
  auto device = client.Enrol({TrackerProcess::FleetToken(), "pi-a", "shop-7"});
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  tracker::DeviceReport report{"demo", "r1", "running", 100, 100, 30, 70, "healthy", {}};
  ASSERT_TRUE(client.Report(*device, report).ok());
  auto fleet_before = client.Fleet();
  ASSERT_TRUE(fleet_before.ok()) << fleet_before.status().ToString();
  const size_t releases_before_backup = fleet_before->releases.size();
  ASSERT_GT(releases_before_backup, 0u);
  const std::string device_dir = dir_ + "/device";
  auto root = ReadTextFileBounded(repo_ + "/metadata/1.root.json", 1 << 20);
  ASSERT_TRUE(root.ok());
  ASSERT_TRUE(metadata::TufClient::Initialize(device_dir, *root).ok());
  ASSERT_TRUE(RefreshDevice(device_dir, old_tracker.port()).ok());

  auto backup = Tracker("backup --repository " + repo_ + " " + dir_ + "/backup");
  ASSERT_EQ(backup.exit_code, 0) << backup.output;
  EXPECT_EQ(ModeOf(dir_ + "/backup/keys"), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/backup/keys/timestamp.key"), 0600u);
  EXPECT_EQ(ModeOf(dir_ + "/backup/tracker.db"), 0600u);
  {
    // After the backup the old tracker re-signs (as its refresher does) and
    // the device trusts versions the backup does not hold.
    auto repo = metadata::Repository::Open(repo_, SystemClock::Instance());
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    metadata::KeyRing ring;
    for (RoleType role : {RoleType::kSnapshot, RoleType::kTimestamp}) {
      auto key = metadata::LoadRoleKey(
          repo_ + "/keys/" + (role == RoleType::kSnapshot ? "snapshot.key" : "timestamp.key"),
          (*repo)->root(), role);
      ASSERT_TRUE(key.ok()) << key.status().ToString();
      ring.Add(*key);
    }
    ASSERT_TRUE((*repo)->ResignSnapshot(ring).ok());
  }
  auto seen = RefreshDevice(device_dir, old_tracker.port());
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  ASSERT_TRUE(seen->has_demo);
  old_tracker.Stop();

  const std::string restored = dir_ + "/restored";
  auto restore =
      Tracker("restore " + dir_ + "/backup --repository " + restored + " --version-step 2");
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  EXPECT_EQ(ModeOf(restored + "/keys"), 0700u);
  EXPECT_EQ(ModeOf(restored + "/keys/targets.key"), 0600u);
  EXPECT_EQ(ModeOf(restored + "/keys/timestamp.key"), 0600u);

  fs::create_directories(dir_ + "/new");
  TrackerProcess new_tracker;
  ASSERT_TRUE(new_tracker.Start(dir_ + "/new", restored)) << new_tracker.Log();
  tracker::TrackerClient new_client(new_tracker.url());
  auto fleet = new_client.Fleet();
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->devices.size(), 1u);
  EXPECT_EQ(fleet->devices[0].identity.device_id, device->device_id);
  ASSERT_TRUE(fleet->devices[0].reported);
  EXPECT_EQ(fleet->devices[0].report.state, "running");
  EXPECT_EQ(fleet->devices[0].report.bytes_from_peers, 30u);
  EXPECT_EQ(fleet->releases.size(), releases_before_backup);
  report.progress_done = 50;
  Status reported = new_client.Report(*device, report);  // the old credential authenticates
  EXPECT_TRUE(reported.ok()) << reported.ToString();
  tracker::DeviceCredentials impostor = *device;
  impostor.credential = std::string(64, '1');
  EXPECT_EQ(new_client.Report(impostor, report).code(), StatusCode::kPermissionDenied);

  // The device that kept refreshing after the backup accepts the restored
  // metadata: every version is above what it trusts.
  auto after = RefreshDevice(device_dir, new_tracker.port());
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_GT(after->timestamp, seen->timestamp);
  EXPECT_GT(after->snapshot, seen->snapshot);
  EXPECT_GE(after->targets, seen->targets);
  EXPECT_TRUE(after->has_demo);
  new_tracker.Stop();
}

TEST_F(BackupRestoreTest, RestoreVerifiesTheWholeBackupFirstAndNeverOverwrites) {
  const std::string backup = dir_ + "/backup";
  ASSERT_EQ(Tracker("backup --repository " + repo_ + " " + backup).exit_code, 0);
  EXPECT_NE(Tracker("backup --repository " + repo_ + " " + backup).exit_code, 0);

  fs::create_directories(dir_ + "/busy");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/busy/keep", std::string("mine")).ok());
  auto refused = Tracker("restore " + backup + " --repository " + dir_ + "/busy");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("not empty"), std::string::npos) << refused.output;
  EXPECT_EQ(ReadTextFileBounded(dir_ + "/busy/keep", 64).value_or(""), "mine");

  // One flipped byte, one file added: refused before anything is written.
  const std::string key = backup + "/keys/timestamp.key";
  auto bytes = ReadTextFileBounded(key, 64);
  ASSERT_TRUE(bytes.ok());
  std::string flipped = *bytes;
  flipped[0] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(key, flipped, 0600).ok());
  auto tampered = Tracker("restore " + backup + " --repository " + dir_ + "/r1");
  EXPECT_NE(tampered.exit_code, 0);
  EXPECT_NE(tampered.output.find("keys/timestamp.key: sha256 differs"), std::string::npos)
      << tampered.output;
  EXPECT_FALSE(fs::exists(dir_ + "/r1"));
  ASSERT_TRUE(WriteFileAtomic(key, *bytes, 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(backup + "/metadata/extra.json", std::string("{}")).ok());
  auto extra = Tracker("restore " + backup + " --repository " + dir_ + "/r2");
  EXPECT_NE(extra.output.find("not in its manifest"), std::string::npos) << extra.output;
  EXPECT_FALSE(fs::exists(dir_ + "/r2"));
  fs::remove(backup + "/metadata/extra.json");
  // A manifest naming a path outside the backup is refused as a whole.
  auto manifest = ReadTextFileBounded(backup + "/MANIFEST", 1 << 20);
  ASSERT_TRUE(manifest.ok());
  ASSERT_TRUE(WriteFileAtomic(backup + "/MANIFEST",
                              *manifest + "f 0644 0 " + std::string(64, '0') + " ../evil\n", 0600)
                  .ok());
  auto escaping = Tracker("restore " + backup + " --repository " + dir_ + "/r4/x");
  EXPECT_NE(escaping.output.find("malformed"), std::string::npos) << escaping.output;
  EXPECT_FALSE(fs::exists(dir_ + "/r4"));
  ASSERT_TRUE(WriteFileAtomic(backup + "/MANIFEST", *manifest, 0600).ok());

  auto ok = Tracker("restore " + backup + " --repository " + dir_ + "/r3");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().rfind(".r", 0), std::string::npos)
        << "temporary directory left: " << entry.path();
  }
}

// init --offline-keys: the targets key is not in the backup, so restore
// signs new snapshot and timestamp versions and keeps targets as it was.
TEST_F(BackupRestoreTest, AnOfflineKeysRepositoryIsRestoredWithItsOnlineRolesAhead) {
  const std::string offline_repo = dir_ + "/offline-repo";
  auto init = Tracker("init " + offline_repo + " --offline-keys " + dir_ + "/off");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_FALSE(fs::exists(offline_repo + "/keys/targets.key"));
  auto before = metadata::Repository::Open(offline_repo, SystemClock::Instance());
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  auto backup = Tracker("backup --repository " + offline_repo + " " + dir_ + "/backup");
  ASSERT_EQ(backup.exit_code, 0) << backup.output;

  auto restore =
      Tracker("restore " + dir_ + "/backup --repository " + dir_ + "/restored --version-step 3");
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  auto after = metadata::Repository::Open(dir_ + "/restored", SystemClock::Instance());
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ((*after)->targets().common.version, (*before)->targets().common.version);
  EXPECT_EQ((*after)->snapshot().common.version, (*before)->snapshot().common.version + 3);
  EXPECT_EQ((*after)->timestamp().common.version, (*before)->timestamp().common.version + 3);
}

TEST_F(BackupRestoreTest, PostgresqlDatabaseIsDumpedAndRestoredIntoAnEmptyDatabase) {
  auto cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto source = (*cluster)->CreateDatabase("backup_source");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  fs::create_directories(dir_ + "/old");
  TrackerProcess old_tracker;
  ASSERT_TRUE(old_tracker.Start(dir_ + "/old", repo_, {"--database-url", *source}))
      << old_tracker.Log();
  tracker::TrackerClient client(old_tracker.url());
  auto device = client.Enrol({TrackerProcess::FleetToken(), "pi-pg", ""});
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  tracker::DeviceReport report{"demo", "r1", "running", 7, 9, 3, 4, "healthy", {}};
  ASSERT_TRUE(client.Report(*device, report).ok());
  auto backup =
      Tracker("backup --repository " + repo_ + " --database-url '" + *source + "' " + dir_ + "/b");
  ASSERT_EQ(backup.exit_code, 0) << backup.output;
  EXPECT_EQ(ModeOf(dir_ + "/b/tracker.pgdump"), 0600u);
  old_tracker.Stop();

  // A backup with a dump needs a PostgreSQL database to restore into.
  EXPECT_NE(Tracker("restore " + dir_ + "/b --repository " + dir_ + "/r0").exit_code, 0);
  EXPECT_FALSE(fs::exists(dir_ + "/r0"));
  auto target = (*cluster)->CreateDatabase("backup_target");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  auto restore = Tracker("restore " + dir_ + "/b --repository " + dir_ + "/r --database-url '" +
                         *target + "'");
  ASSERT_EQ(restore.exit_code, 0) << restore.output;

  fs::create_directories(dir_ + "/new");
  TrackerProcess new_tracker;
  ASSERT_TRUE(new_tracker.Start(dir_ + "/new", dir_ + "/r", {"--database-url", *target}))
      << new_tracker.Log();
  tracker::TrackerClient new_client(new_tracker.url());
  auto fleet = new_client.Fleet();
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->devices.size(), 1u);
  EXPECT_EQ(fleet->devices[0].identity.name, "pi-pg");
  ASSERT_TRUE(fleet->devices[0].reported);
  EXPECT_EQ(fleet->devices[0].report.progress_done, 7u);
  report.progress_done = 8;
  Status reported = new_client.Report(*device, report);
  EXPECT_TRUE(reported.ok()) << reported.ToString();
  new_tracker.Stop();
}

// A password in --database-url reaches pg_dump and pg_restore through a
// password file, never their command lines (which `ps` shows to everyone).
// The role logs in only with its password, so a dump that did not get it fails.
TEST_F(BackupRestoreTest, PostgresqlPasswordNeverOnAToolsCommandLine) {
  auto cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_TRUE((*cluster)->CreateDatabase("backup_secret").ok());
  ASSERT_TRUE((*cluster)->CreateDatabase("backup_secret_target").ok());
  const std::string password = "s3cr:et\\'pw";
  auto url = (*cluster)->CreatePasswordLogin("backup_operator", password, "backup_secret");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  fs::create_directories(dir_ + "/old");
  TrackerProcess tracker_process;
  ASSERT_TRUE(tracker_process.Start(dir_ + "/old", repo_, {"--database-url", *url}))
      << tracker_process.Log();
  tracker::TrackerClient client(tracker_process.url());
  ASSERT_TRUE(client.Enrol({TrackerProcess::FleetToken(), "pi-secret", ""}).ok());
  tracker_process.Stop();

  // pg_dump and pg_restore wrapped: each records its arguments and its
  // password file's path, then runs the real tool.
  const std::string wrappers = dir_ + "/bin";
  fs::create_directories(wrappers);
  for (const std::string tool : {"pg_dump", "pg_restore"}) {
    ASSERT_TRUE(WriteFileAtomic(wrappers + "/" + tool,
                                "#!/bin/sh\necho \"$*\" >> " + dir_ + "/argv.log\necho " +
                                    "\"$PGPASSFILE\" >> " + dir_ + "/passfiles.log\nexec " +
                                    "/usr/lib/postgresql/15/bin/" + tool + " \"$@\"\n",
                                0755)
                    .ok());
  }
  const std::string path = "PATH=" + wrappers + ":$PATH ";
  auto backup = RunShell(path + BinaryPath("flotilla-tracker") + " backup --repository " + repo_ +
                         " --database-url \"" + *url + "\" " + dir_ + "/b 2>&1");
  ASSERT_EQ(backup.exit_code, 0) << backup.output;
  auto target =
      (*cluster)->CreatePasswordLogin("restore_operator", "other:pw", "backup_secret_target");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  auto restore = RunShell(path + BinaryPath("flotilla-tracker") + " restore " + dir_ +
                          "/b --repository " + dir_ + "/r --database-url \"" + *target + "\" 2>&1");
  ASSERT_EQ(restore.exit_code, 0) << restore.output;

  auto argv = ReadTextFileBounded(dir_ + "/argv.log", 1 << 20);
  ASSERT_TRUE(argv.ok());
  EXPECT_NE(argv->find("--format=custom"), std::string::npos) << *argv;
  EXPECT_NE(argv->find("--single-transaction"), std::string::npos) << *argv;
  EXPECT_NE(argv->find("--dbname="), std::string::npos) << *argv;
  EXPECT_EQ(argv->find("s3cr"), std::string::npos) << *argv;
  EXPECT_EQ(argv->find("other"), std::string::npos) << *argv;
  EXPECT_EQ(argv->find("%3A"), std::string::npos) << *argv;
  auto passfiles = ReadTextFileBounded(dir_ + "/passfiles.log", 1 << 20);
  ASSERT_TRUE(passfiles.ok());
  std::istringstream lines(*passfiles);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    EXPECT_FALSE(line.empty());
    EXPECT_FALSE(fs::exists(line)) << "password file left: " << line;
  }
  EXPECT_EQ(count, 2);
  EXPECT_EQ(backup.output.find("s3cr"), std::string::npos) << backup.output;

  // The restored database holds the device; a wrong password is refused.
  fs::create_directories(dir_ + "/new");
  TrackerProcess restored;
  ASSERT_TRUE(restored.Start(dir_ + "/new", dir_ + "/r", {"--database-url", *target}))
      << restored.Log();
  auto fleet = tracker::TrackerClient(restored.url()).Fleet();
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->devices.size(), 1u);
  EXPECT_EQ(fleet->devices[0].identity.name, "pi-secret");
  restored.Stop();
  std::string wrong = *url;
  wrong.replace(wrong.find(':', 13), 1, ":x");
  auto refused =
      Tracker("backup --repository " + repo_ + " --database-url \"" + wrong + "\" " + dir_ + "/b2");
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_EQ(refused.output.find("s3cr"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace flotilla::testing
