// `publish` and `accept` next to replicas that sign through the database
// (docs/scale.md, "Signing turns and metadata versions"), on both engines:
// the documents they write are recorded in metadata_versions before they
// are current, their versions are above every recorded one, and a version
// recorded with another document leaves the repository as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/repository.h"
#include "tests/support/postgres_cluster.h"
#include "tracker/publish/offline.h"
#include "tracker/publish/publish.h"
#include "tracker/publish/publish_refresher.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/signing_lease.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;

constexpr Duration kTtl = std::chrono::seconds(30);

// Every file under `dir` with its bytes.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    files[entry.path().string()] = ReadTextFileBounded(entry.path().string(), 64 << 20).value();
  }
  return files;
}

class PublishVersionsTest : public ::testing::TestWithParam<SqlEngineKind> {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "/pubver-" + name.substr(0, name.find('/')) +
           (GetParam() == SqlEngineKind::kSqlite ? "-sqlite" : "-postgresql");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    repo_ = RepositoryLayout{dir_ + "/repo"};
    if (GetParam() == SqlEngineKind::kPostgresql) {
      auto cluster = testing::PostgresCluster::Shared();
      ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
      auto url = (*cluster)->CreateDatabase("pubver");
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      database_url_ = *url;
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Init(bool offline_targets_key) {
    InitOptions options;
    options.database_url = database_url_;
    if (offline_targets_key) options.offline_keys_dir = dir_ + "/off";
    ASSERT_TRUE(InitRepository(repo_.root, options, clock_).ok());
    auto url = RepositoryDatabaseUrl(repo_);
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    auto lease = SigningLease::Open(*url, clock_, "replica", kTtl);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    replica_ = std::move(*lease);
    auto held = replica_->Renew();
    ASSERT_TRUE(held.ok() && *held);
    auto db = SqlEngine::Open(*url);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }

  // The current (role, version, sha256) of the top-level roles' files.
  std::vector<Publication> Current() {
    std::vector<Publication> current;
    for (const char* role : {"timestamp", "snapshot", "targets"}) {
      const std::string bytes =
          ReadTextFileBounded(repo_.metadata_dir() + "/" + role + ".json", 64 << 20).value();
      const Json json = ParseJsonStrict(bytes).value();
      current.push_back({role, json["signed"]["version"].get<uint64_t>(), Digest::Of(bytes).Hex()});
    }
    return current;
  }
  uint64_t CurrentVersion(const std::string& role) {
    for (const auto& p : Current()) {
      if (p.role == role) return p.version;
    }
    return 0;
  }
  // A signing turn of the replica, as `serve` runs it: re-signs what is due
  // above the recorded versions, records the current documents.
  Status ReplicaTurn() {
    RepositoryRefresher refresher(repo_, clock_);
    return replica_->RunSigningTurn(
        [&](const SigningLease::PublishedVersions& latest) -> Result<std::vector<Publication>> {
          RETURN_IF_ERROR(refresher.RefreshAbove(clock_.Now(), latest).status());
          return Current();
        });
  }
  // A replica records `publication` (whose files this repository does not have).
  void ReplicaRecords(Publication publication) {
    ASSERT_TRUE(replica_
                    ->RunSigningTurn([&](const auto&) -> Result<std::vector<Publication>> {
                      return std::vector<Publication>{publication};
                    })
                    .ok());
  }
  int64_t RecordedEpoch(const std::string& role, uint64_t version) {
    auto rows = db_->Query("SELECT epoch FROM metadata_versions WHERE role = ? AND version = ?",
                           {role, static_cast<int64_t>(version)});
    EXPECT_TRUE(rows.ok() && rows->size() == 1) << role << " " << version;
    return rows.ok() && rows->size() == 1 ? rows->Int(0, 0) : -1;
  }
  int64_t RecordCount() {
    return db_->Query("SELECT COUNT(*) FROM metadata_versions").value().Int(0, 0);
  }

  // A docker-archive image of one layer and an app spec for app `app`.
  PublishRequest Request(const std::string& app) {
    const std::string image = dir_ + "/image";
    fs::create_directories(image + "/rootfs");
    EXPECT_TRUE(WriteFileAtomic(image + "/rootfs/hello", "hello " + app).ok());
    EXPECT_EQ(
        std::system(("tar -cf " + image + "/layer.tar -C " + image + "/rootfs hello").c_str()), 0);
    const std::string layer = ReadTextFileBounded(image + "/layer.tar", 1 << 20).value();
    const Json config = {
        {"architecture", "amd64"},
        {"os", "linux"},
        {"rootfs", {{"type", "layers"}, {"diff_ids", {Digest::Of(layer).ToString()}}}}};
    EXPECT_TRUE(WriteFileAtomic(image + "/config.json", config.dump()).ok());
    const Json manifest = Json::array(
        {{{"Config", "config.json"}, {"RepoTags", {"test/app:1"}}, {"Layers", {"layer.tar"}}}});
    EXPECT_TRUE(WriteFileAtomic(image + "/manifest.json", manifest.dump()).ok());
    EXPECT_EQ(std::system(("tar -cf " + dir_ + "/image.tar -C " + image +
                           " manifest.json config.json layer.tar")
                              .c_str()),
              0);
    EXPECT_TRUE(
        WriteFileAtomic(dir_ + "/app.json", R"({"name":")" + app + R"(","command":["/bin/app"]})")
            .ok());
    PublishRequest request;
    request.repository = repo_.root;
    request.app = app;
    request.spec_path = dir_ + "/app.json";
    request.image_path = dir_ + "/image.tar";
    request.public_url = "http://127.0.0.1:8080";
    request.platform = "linux/amd64";
    request.delta_releases = 0;
    return request;
  }

  FakeClock clock_;
  std::string dir_;
  std::string database_url_;
  RepositoryLayout repo_{""};
  std::unique_ptr<SigningLease> replica_;
  std::unique_ptr<SqlEngine> db_;
};

TEST_P(PublishVersionsTest, PublishNextToAHolderRecordsItsVersionsAndTheTurnSignsAboveThem) {
  ASSERT_NO_FATAL_FAILURE(Init(/*offline_targets_key=*/false));
  ASSERT_TRUE(ReplicaTurn().ok());
  // The replica re-signed the timestamp up to 6 in a repository copy this
  // one does not have: the publish's timestamp goes above it, not above its file.
  ReplicaRecords({"timestamp", 6, std::string(64, 'a')});

  auto published = PublishImage(Request("kiosk"), clock_, nullptr);
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(CurrentVersion("timestamp"), 7u);
  for (const Publication& p : Current()) {
    EXPECT_EQ(replica_->RecordedSha256(p.role, p.version).value(), p.sha256) << p.role;
    EXPECT_EQ(RecordedEpoch(p.role, p.version), OperatorPublication::kOperatorEpoch) << p.role;
  }
  EXPECT_EQ(CurrentVersion("targets"), 2u);

  // The holder's next turn re-signs the timestamp when it is due: above the
  // publish's version, under its own epoch.
  clock_.Advance(std::chrono::hours(13));
  ASSERT_TRUE(replica_->Renew().value());  // serve renews every TTL/3 meanwhile
  Status turn = ReplicaTurn();
  ASSERT_TRUE(turn.ok()) << turn.ToString();
  EXPECT_EQ(CurrentVersion("timestamp"), 8u);
  EXPECT_EQ(RecordedEpoch("timestamp", 8), replica_->epoch());
  EXPECT_EQ(replica_->LatestVersion("targets").value(), 2u);
}

TEST_P(PublishVersionsTest, AcceptRecordsItsVersionsOrRefusesAVersionRecordedWithAnotherDocument) {
  ASSERT_NO_FATAL_FAILURE(Init(/*offline_targets_key=*/true));
  ASSERT_TRUE(ReplicaTurn().ok());
  auto stage_app = [&](const std::string& app) {
    auto key = Ed25519PrivateKey::Generate();
    EXPECT_TRUE(WriteFileAtomic(dir_ + "/" + app + ".pub", key.public_key().Hex()).ok());
    auto staged = StageApp({repo_.root, app, {dir_ + "/" + app + ".pub"}}, clock_);
    EXPECT_TRUE(staged.ok()) << staged.status().ToString();
    EXPECT_TRUE(
        metadata::SignMetadataFile(*staged, dir_ + "/off/targets.key", std::nullopt, *staged).ok());
    return *staged;
  };
  auto accepted = AcceptSigned(repo_.root, stage_app("kiosk"), "", clock_);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  for (const Publication& p : Current()) {
    EXPECT_EQ(replica_->RecordedSha256(p.role, p.version).value(), p.sha256) << p.role;
  }
  EXPECT_EQ(RecordedEpoch("targets", 2), OperatorPublication::kOperatorEpoch);

  // The offline targets key signed version 3; a replica recorded another
  // targets 3 meanwhile.
  const std::string staged = stage_app("signage");
  ReplicaRecords({"targets", 3, std::string(64, 'b')});
  const auto before = Files(repo_.metadata_dir());
  const int64_t records = RecordCount();
  auto refused = AcceptSigned(repo_.root, staged, "", clock_);
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists) << refused.status().ToString();
  EXPECT_NE(refused.status().ToString().find("targets version 3 is already published"),
            std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(Files(repo_.metadata_dir()), before);
  EXPECT_EQ(RecordCount(), records);
}

// A publication that fails after recording some documents records none; one
// that succeeds is recorded under the operator epoch, and its snapshot and
// timestamp versions are above every recorded one.
TEST_P(PublishVersionsTest, AnOperatorPublicationIsRecordedWholeOrNotAtAll) {
  ASSERT_NO_FATAL_FAILURE(Init(/*offline_targets_key=*/false));
  ReplicaRecords({"snapshot", 4, std::string(64, 'c')});
  const int64_t records = RecordCount();
  {
    auto url = RepositoryDatabaseUrl(repo_).value();
    auto publication = OperatorPublication::Begin(url, clock_);
    ASSERT_TRUE(publication.ok()) << publication.status().ToString();
    EXPECT_EQ((*publication)->latest().at("snapshot"), 4u);
    ASSERT_TRUE((*publication)->Record({"targets", 9, std::string(64, 'd')}).ok());
    EXPECT_EQ((*publication)->Record({"snapshot", 4, std::string(64, 'e')}).code(),
              StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(RecordCount(), records);
  EXPECT_EQ(replica_->LatestVersion("targets").value(), 0u);
}

// On PostgreSQL the lease row locks only the writers that take it: a writer
// that does not can record a version while an operator publication is in
// progress. A conflict found after targets was written (at the snapshot)
// still leaves the repository as it was, and the next publish goes through.
using PublishVersionsPostgresqlTest = PublishVersionsTest;

TEST_P(PublishVersionsPostgresqlTest, AConflictFoundPartWayLeavesTheRepositoryAsItWas) {
  ASSERT_NO_FATAL_FAILURE(Init(/*offline_targets_key=*/false));
  const auto before = Files(repo_.metadata_dir());
  const uint64_t snapshot = CurrentVersion("snapshot");
  const uint64_t targets = CurrentVersion("targets");
  {
    auto lock = PublishLock::Acquire(repo_, /*wait=*/true);
    ASSERT_TRUE(lock.ok());
    Status written = WriteRecorded(repo_, clock_, {}, [&](metadata::Repository& meta) -> Status {
      RETURN_IF_ERROR(db_->Query("INSERT INTO metadata_versions(role, version, sha256, epoch, "
                                 "published_at) VALUES('snapshot', ?, ?, 9, 0)",
                                 {static_cast<int64_t>(snapshot + 1), std::string(64, 'f')})
                          .status());
      ASSIGN_OR_RETURN(auto ring,
                       LoadRoleKeys(repo_, meta.root(),
                                    {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                                     metadata::RoleType::kTimestamp}));
      return meta.ResignTargets(ring);
    });
    EXPECT_EQ(written.code(), StatusCode::kAlreadyExists) << written.ToString();
  }
  EXPECT_EQ(Files(repo_.metadata_dir()), before);
  EXPECT_EQ(RecordCount(), 1) << "only the other writer's row";
  EXPECT_EQ(replica_->RecordedSha256("targets", targets + 1).value(), "");

  auto published = PublishImage(Request("kiosk"), clock_, nullptr);
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(CurrentVersion("targets"), targets + 1);
  EXPECT_EQ(CurrentVersion("snapshot"), snapshot + 2);
}

INSTANTIATE_TEST_SUITE_P(Engines, PublishVersionsPostgresqlTest,
                         ::testing::Values(SqlEngineKind::kPostgresql),
                         [](const auto&) { return "Postgresql"; });

INSTANTIATE_TEST_SUITE_P(Engines, PublishVersionsTest,
                         ::testing::Values(SqlEngineKind::kSqlite, SqlEngineKind::kPostgresql),
                         [](const auto& info) {
                           return info.param == SqlEngineKind::kSqlite ? "Sqlite" : "Postgresql";
                         });

}  // namespace
}  // namespace flotilla::tracker
