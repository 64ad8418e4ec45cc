#include "core/sqlite.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace flotilla {
namespace {

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/sqlite_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = SqliteDb::Open(dir_ + "/t.db").value();
    ASSERT_TRUE(db_->Exec("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER, n TEXT)").ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int64_t Count() {
    SqliteStatement st = db_->Prepare("SELECT COUNT(*) FROM t");
    EXPECT_TRUE(st.Step().value());
    return st.Int(0);
  }

  std::string dir_;
  std::unique_ptr<SqliteDb> db_;
};

TEST_F(SqliteTest, OpensWithTheProjectSettings) {
  for (auto [pragma, want] : {std::pair{"journal_mode", "wal"}, std::pair{"synchronous", "2"},
                              std::pair{"foreign_keys", "1"}}) {
    SqliteStatement st = db_->Prepare(std::string("PRAGMA ") + pragma);
    ASSERT_TRUE(st.Step().value()) << pragma;
    EXPECT_EQ(st.Text(0), want) << pragma;
  }
}

TEST_F(SqliteTest, BindsStepsAndReadsColumns) {
  ASSERT_TRUE(
      db_->Prepare("INSERT INTO t VALUES (?, ?, ?)").Bind("a").Bind(7).BindNull().Run().ok());
  ASSERT_TRUE(db_->Prepare("INSERT INTO t VALUES (?, ?, ?)")
                  .Bind(std::string("b\0c", 3))
                  .Bind(int64_t{1} << 40)
                  .Bind("x")
                  .Run()
                  .ok());
  SqliteStatement st = db_->Prepare("SELECT k, v, n FROM t ORDER BY k");
  ASSERT_TRUE(st.Step().value());
  EXPECT_EQ(st.Text(0), "a");
  EXPECT_EQ(st.Int(1), 7);
  EXPECT_TRUE(st.IsNull(2));
  ASSERT_TRUE(st.Step().value());
  EXPECT_EQ(st.Text(0), std::string("b\0c", 3));  // bytes after a NUL are kept
  EXPECT_EQ(st.Int(1), int64_t{1} << 40);
  EXPECT_FALSE(st.IsNull(2));
  EXPECT_FALSE(st.Step().value());
  ASSERT_TRUE(db_->Prepare("UPDATE t SET v = v + 1").Run().ok());
  EXPECT_EQ(db_->Changes(), 2);
}

TEST_F(SqliteTest, ErrorsComeBackAsStatus) {
  SqliteStatement bad = db_->Prepare("SELECT nope FROM t");
  Status st = bad.Bind("ignored").Run();  // binding a failed statement is harmless
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("no such column: nope"), std::string::npos) << st.ToString();
  ASSERT_TRUE(db_->Prepare("INSERT INTO t VALUES ('a', 1, NULL)").Run().ok());
  Status dup = db_->Prepare("INSERT INTO t VALUES ('a', 2, NULL)").Run();
  EXPECT_NE(dup.message().find("UNIQUE constraint failed"), std::string::npos) << dup.ToString();
  EXPECT_EQ(SqliteDb::Open(dir_ + "/missing/x.db").status().code(), StatusCode::kIOError);
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  {
    auto txn = SqliteTransaction::Begin(*db_);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(db_->Prepare("INSERT INTO t VALUES ('gone', 1, NULL)").Run().ok());
    EXPECT_EQ(Count(), 1);
  }
  EXPECT_EQ(Count(), 0);
  {
    auto txn = SqliteTransaction::Begin(*db_);
    ASSERT_TRUE(db_->Prepare("INSERT INTO t VALUES ('kept', 1, NULL)").Run().ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_EQ(Count(), 1);
  // A second connection sees the committed row.
  auto other = SqliteDb::Open(dir_ + "/t.db").value();
  SqliteStatement st = other->Prepare("SELECT k FROM t");
  ASSERT_TRUE(st.Step().value());
  EXPECT_EQ(st.Text(0), "kept");
}

// Turning WAL on upgrades a read of the file's header to a write, and SQLite
// fails such an upgrade at once, without its busy handler, while another
// connection is writing (as when it is turning WAL on itself). An open must
// wait for that writer rather than fail.
TEST_F(SqliteTest, AnOpenWaitsForAWriterInTheOldJournalMode) {
  const std::string path = dir_ + "/rollback.db";
  sqlite3* writer = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &writer), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(writer, "CREATE TABLE r(k); BEGIN IMMEDIATE; INSERT INTO r VALUES (1)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sqlite3_exec(writer, "COMMIT", nullptr, nullptr, nullptr);
  });
  auto db = SqliteDb::Open(path);
  release.join();
  sqlite3_close(writer);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  SqliteStatement st = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(st.Step().value());
  EXPECT_EQ(st.Text(0), "wal");
}

// Connections opened at once (a tracker's stores, a second replica, a
// command run beside serve) all get the database, the first of them creating
// it and turning on WAL while the others wait.
TEST_F(SqliteTest, ConnectionsOpenedAtOnceAllSucceed) {
  for (int round = 0; round < 10; ++round) {
    const std::string path = dir_ + "/fresh" + std::to_string(round) + ".db";
    std::vector<std::thread> threads;
    std::atomic<int> failed{0};
    std::string first_error;
    std::mutex error_mutex;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&] {
        auto db = SqliteDb::Open(path);
        Status st = db.ok() ? (*db)->Exec("CREATE TABLE IF NOT EXISTS x(k INTEGER)") : db.status();
        if (st.ok()) st = (*db)->Exec("INSERT INTO x VALUES (1)");
        if (!st.ok()) {
          ++failed;
          std::lock_guard lock(error_mutex);
          first_error = st.ToString();
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(failed.load(), 0) << "round " << round << ": " << first_error;
  }
}

}  // namespace
}  // namespace flotilla
