// The fault-injecting Env does what crash tests rely on: a power cut drops
// exactly what was not made durable (file data since its last fsync, names
// since their directory's last fsync), keeps what was, and SQLite's writes
// go through it.
#include "core/testing/fault_injection_env.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "core/sqlite.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;

class FaultInjectionEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/fault_env_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    fs::create_directories(root_ + "/d");
    env_ = std::make_unique<FaultInjectionEnv>(root_ + "/.stash");
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(root_);
  }

  // Writes `text` to a new file and syncs it, not its directory.
  void Create(const std::string& path, const std::string& text, bool sync = true) {
    auto file = env_->OpenForWrite(path, OpenMode::kCreateNew, 0644).value();
    ASSERT_TRUE(file->Append(AsBytes(text)).ok());
    if (sync) ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(file->Close().ok());
  }
  std::string Read(const std::string& path) {
    auto text = ReadTextFileBounded(path, 1 << 20);
    return text.ok() ? *text : "<" + std::string(StatusCodeName(text.status().code())) + ">";
  }

  std::string root_;
  std::unique_ptr<FaultInjectionEnv> env_;
};

TEST_F(FaultInjectionEnvTest, PowerCutKeepsEachFilesLastSyncedContent) {
  const std::string path = root_ + "/d/f";
  Create(path, "synced");
  ASSERT_TRUE(env_->SyncDir(root_ + "/d").ok());
  auto file = env_->OpenForWrite(path, OpenMode::kKeep, 0644).value();
  ASSERT_TRUE(file->WriteAt(AsBytes("SYN"), 0).ok());        // rewritten in place
  ASSERT_TRUE(file->WriteAt(AsBytes(" and more"), 6).ok());  // grown
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(Read(path), "SYNced and more");
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(path), "synced");

  file = env_->OpenForWrite(path, OpenMode::kKeep, 0644).value();
  ASSERT_TRUE(file->Truncate(2).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->WriteAt(AsBytes("x"), 5).ok());
  ASSERT_TRUE(file->Close().ok());
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(path), "sy");

  // Truncated on open like O_TRUNC, unsynced content included; a cut brings
  // back the synced content.
  Create(root_ + "/d/g", "unsynced", /*sync=*/false);
  env_->OpenForWrite(root_ + "/d/g", OpenMode::kTruncate, 0644).value()->Close().IgnoreError();
  EXPECT_EQ(Read(root_ + "/d/g"), "");
  env_->OpenForWrite(path, OpenMode::kTruncate, 0644).value()->Close().IgnoreError();
  EXPECT_EQ(Read(path), "");
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(path), "sy");
}

TEST_F(FaultInjectionEnvTest, NamesAreDurableOnlyOnceTheirDirectoryIsSynced) {
  Create(root_ + "/d/kept", "k");
  Create(root_ + "/d/lost", "l");
  ASSERT_TRUE(env_->SyncDir(root_ + "/d").ok());
  ASSERT_TRUE(env_->Unlink(root_ + "/d/lost").ok());  // not synced: comes back
  Create(root_ + "/d/unsynced", "u", /*sync=*/false);
  ASSERT_TRUE(env_->MakeDir(root_ + "/d/sub", 0755).ok());
  Create(root_ + "/d/sub/inner", "i");
  ASSERT_TRUE(env_->SyncDir(root_ + "/d/sub").ok());  // inner is durable in sub, sub is not in d
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(root_ + "/d/kept"), "k");
  EXPECT_EQ(Read(root_ + "/d/lost"), "l");
  EXPECT_FALSE(fs::exists(root_ + "/d/unsynced"));
  EXPECT_FALSE(fs::exists(root_ + "/d/sub"));

  // A created file whose name is durable but whose data was never synced is empty.
  Create(root_ + "/d/empty", "data", /*sync=*/false);
  ASSERT_TRUE(env_->SyncDir(root_ + "/d").ok());
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(root_ + "/d/empty"), "");
}

TEST_F(FaultInjectionEnvTest, RenameIsAtomicAndDurableWithItsTargetDirectory) {
  Create(root_ + "/d/target", "old");
  ASSERT_TRUE(env_->SyncDir(root_ + "/d").ok());
  Create(root_ + "/d/tmp", "new");
  ASSERT_TRUE(env_->Rename(root_ + "/d/tmp", root_ + "/d/target").ok());
  EXPECT_EQ(Read(root_ + "/d/target"), "new");
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(root_ + "/d/target"), "old");
  EXPECT_FALSE(fs::exists(root_ + "/d/tmp"));  // its create was not durable either

  ASSERT_TRUE(WriteFileAtomic(root_ + "/d/target", "newer", 0644, *env_).ok());
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(root_ + "/d/target"), "newer");

  // A directory moves with its contents; a non-empty target is refused as rename(2) does.
  ASSERT_TRUE(env_->MakeDir(root_ + "/a", 0755).ok());
  Create(root_ + "/a/f", "in a");
  ASSERT_TRUE(env_->SyncFilesystem(root_).ok());
  EXPECT_EQ(env_->Rename(root_ + "/a", root_ + "/d").code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(env_->Rename(root_ + "/a", root_ + "/b").ok());
  ASSERT_TRUE(env_->RemoveTree(root_ + "/d").ok());
  EXPECT_EQ(Read(root_ + "/b/f"), "in a");
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_EQ(Read(root_ + "/a/f"), "in a");
  EXPECT_EQ(Read(root_ + "/d/target"), "newer");
  EXPECT_FALSE(fs::exists(root_ + "/b"));
}

TEST_F(FaultInjectionEnvTest, FaultsFireOnceAndACrashStopsEverything) {
  env_->FailWriteAt(2);
  auto file = env_->OpenForWrite(root_ + "/d/f", OpenMode::kCreateNew, 0644).value();
  EXPECT_TRUE(file->Append(AsBytes("1")).ok());
  EXPECT_EQ(file->Append(AsBytes("2")).code(), StatusCode::kIOError);
  EXPECT_TRUE(file->Append(AsBytes("3")).ok());
  env_->FailSyncAt(1);
  EXPECT_EQ(file->Sync().code(), StatusCode::kIOError);
  EXPECT_TRUE(file->Sync().ok());
  EXPECT_EQ(env_->writes(), 3u);
  EXPECT_EQ(env_->boundaries(), 2u);
  env_->Reset();

  env_->CrashAtBoundary(2);
  EXPECT_TRUE(env_->SyncDir(root_ + "/d").ok());
  EXPECT_EQ(env_->Rename(root_ + "/d/f", root_ + "/d/g").code(), StatusCode::kIOError);
  EXPECT_TRUE(env_->crashed());
  EXPECT_FALSE(file->Append(AsBytes("4")).ok());
  EXPECT_FALSE(env_->MakeDir(root_ + "/e", 0755).ok());
  EXPECT_FALSE(env_->OpenForWrite(root_ + "/h", OpenMode::kCreateNew, 0644).ok());
  EXPECT_EQ(env_->PowerCut().code(), StatusCode::kFailedPrecondition);  // f is open
  file.reset();
  ASSERT_TRUE(env_->PowerCut().ok());
  EXPECT_FALSE(env_->crashed());
  EXPECT_EQ(Read(root_ + "/d/f"), "13");
}

TEST_F(FaultInjectionEnvTest, SqliteWritesGoThroughTheEnv) {
  const std::string path = root_ + "/d/t.db";
  {
    auto db = SqliteDb::Open(path, *env_).value();
    ASSERT_TRUE(db->Exec("CREATE TABLE t(v INTEGER)").ok());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
  }
  ASSERT_TRUE(env_->SyncDir(root_ + "/d").ok());
  const uint64_t writes = env_->writes();
  EXPECT_GT(writes, 0u);
  ASSERT_TRUE(env_->PowerCut().ok());
  auto db = SqliteDb::Open(path, *env_).value();
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (2)").ok());
  EXPECT_GT(env_->writes(), writes);
  env_->CrashAtBoundary(env_->boundaries() + 1);  // the next commit's WAL fsync
  EXPECT_FALSE(db->Exec("INSERT INTO t VALUES (3)").ok());
  db.reset();
  ASSERT_TRUE(env_->PowerCut().ok());
  env_->Reset();
  db = SqliteDb::Open(path, *env_).value();
  SqliteStatement st = db->Prepare("SELECT group_concat(v) FROM t");
  ASSERT_TRUE(st.Step().value());
  EXPECT_EQ(st.Text(0), "1,2");
  SqliteStatement check = db->Prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.Step().value());
  EXPECT_EQ(check.Text(0), "ok");
}

}  // namespace
}  // namespace flotilla::testing
