// SqlEngine and the migration runner on both engines.
#include "tracker/storage/sql_engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "tests/support/postgres_cluster.h"

namespace flotilla::tracker {
namespace {

class SqlEngineTest : public ::testing::TestWithParam<SqlEngineKind> {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "/sqlengine-" + name.substr(0, name.find('/')) +
           (GetParam() == SqlEngineKind::kSqlite ? "-sqlite" : "-postgresql");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    url_ = "sqlite:" + dir_ + "/t.db";
    if (GetParam() == SqlEngineKind::kPostgresql) {
      auto cluster = testing::PostgresCluster::Shared();
      ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
      auto url = (*cluster)->CreateDatabase("sqlengine");
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = *url;
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<SqlEngine> Open() {
    auto engine = SqlEngine::Open(url_);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return engine.ok() ? std::move(*engine) : nullptr;
  }
  std::vector<std::string> Columns(SqlEngine& engine) {
    auto rows = engine.Query("SELECT * FROM items");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<std::string> out;
    if (!rows.ok()) return out;
    for (size_t i = 0; i < rows->size(); ++i) out.push_back(rows->Text(i, 1));
    return out;
  }

  std::string dir_;
  std::string url_;
};

const SqlMigration kCreate = {1, "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
                              "CREATE TABLE items(id BIGINT PRIMARY KEY, name TEXT NOT NULL)"};
const SqlMigration kAddColumn = {2, "ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 7",
                                 "ALTER TABLE items ADD COLUMN size BIGINT NOT NULL DEFAULT 7"};

TEST_P(SqlEngineTest, MigrationsRunOnceInOrderAndKeepRows) {
  {
    auto engine = Open();
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(MigrateSchema(*engine, {kCreate}).ok());
    EXPECT_EQ(engine->SchemaVersion().value(), 1);
    ASSERT_TRUE(engine->Query("INSERT INTO items(id, name) VALUES(?, ?)", {int64_t{1}, "a"}).ok());
  }
  auto engine = Open();
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(MigrateSchema(*engine, {kCreate, kAddColumn}).ok());
  ASSERT_TRUE(MigrateSchema(*engine, {kCreate, kAddColumn}).ok()) << "a second run is a no-op";
  EXPECT_EQ(engine->SchemaVersion().value(), 2);
  auto rows = engine->Query("SELECT name, size FROM items WHERE id = ?", {int64_t{1}});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->Text(0, 0), "a");
  EXPECT_EQ(rows->Int(0, 1), 7);
}

TEST_P(SqlEngineTest, AFailedStepLeavesTheOldSchema) {
  auto engine = Open();
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(MigrateSchema(*engine, {kCreate}).ok());
  const SqlMigration broken = {2, "ALTER TABLE items ADD COLUMN x INTEGER; SELEC oops",
                               "ALTER TABLE items ADD COLUMN x BIGINT; SELEC oops"};
  Status st = MigrateSchema(*engine, {kCreate, broken});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("schema migration to version 2"), std::string::npos) << st.ToString();
  EXPECT_EQ(engine->SchemaVersion().value(), 1);
  EXPECT_FALSE(engine->Query("SELECT x FROM items").ok()) << "the step's first half rolled back";
  EXPECT_TRUE(engine->Query("SELECT name FROM items").ok()) << "the engine is usable again";
}

TEST_P(SqlEngineTest, ANewerSchemaIsRefused) {
  auto engine = Open();
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(MigrateSchema(*engine, {kCreate, kAddColumn}).ok());
  Status st = MigrateSchema(*engine, {kCreate});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("newer"), std::string::npos) << st.ToString();
  EXPECT_EQ(engine->SchemaVersion().value(), 2);
}

// Several processes (replicas) opening one new database at once: each
// waits for the schema lock, one migrates, the others find it done.
TEST_P(SqlEngineTest, ConcurrentOpenersMigrateOnce) {
  std::vector<Status> results(4);
  std::vector<std::thread> openers;
  for (auto& result : results) {
    openers.emplace_back([&] {
      auto engine = SqlEngine::Open(url_);
      result = engine.ok() ? MigrateSchema(**engine, {kCreate, kAddColumn}) : engine.status();
    });
  }
  for (auto& opener : openers) opener.join();
  for (const auto& result : results) EXPECT_TRUE(result.ok()) << result.ToString();
  auto engine = Open();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->SchemaVersion().value(), 2);
}

TEST_P(SqlEngineTest, ParametersTransactionsAndErrors) {
  auto engine = Open();
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(MigrateSchema(*engine, {kCreate}).ok());
  // A value with quotes and a question mark is data, never SQL.
  const std::string tricky = "it's ? \"quoted\"; DROP TABLE items";
  ASSERT_TRUE(engine->Query("INSERT INTO items(id, name) VALUES(?, ?)", {int64_t{1}, tricky}).ok());
  auto rows = engine->Query("SELECT name, '?' FROM items WHERE name = ?", {tricky});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->Text(0, 0), tricky);
  EXPECT_EQ(rows->Text(0, 1), "?") << "a quoted ? is not a placeholder";
  {
    auto transaction = SqlTransaction::Begin(*engine);
    ASSERT_TRUE(transaction.ok()) << transaction.status().ToString();
    ASSERT_TRUE(engine->Query("INSERT INTO items(id, name) VALUES(2, 'b')").ok());
  }  // rolled back
  EXPECT_EQ(Columns(*engine), std::vector<std::string>{tricky});
  {
    auto transaction = SqlTransaction::Begin(*engine);
    ASSERT_TRUE(transaction.ok());
    ASSERT_TRUE(engine->Query("INSERT INTO items(id, name) VALUES(2, 'b')").ok());
    ASSERT_TRUE(transaction->Commit().ok());
  }
  EXPECT_EQ(Columns(*engine).size(), 2u);
  Status duplicate = engine->Query("INSERT INTO items(id, name) VALUES(2, 'c')").status();
  EXPECT_FALSE(duplicate.ok());
  EXPECT_NE(
      duplicate.message().find(GetParam() == SqlEngineKind::kSqlite ? "sqlite" : "postgresql"),
      std::string::npos)
      << duplicate.ToString();
  const std::string with_nul("a\0b", 3);  // refused by PostgreSQL, kept whole by SQLite
  auto nul = engine->Query("INSERT INTO items(id, name) VALUES(3, ?)", {with_nul});
  if (GetParam() == SqlEngineKind::kPostgresql) {
    EXPECT_EQ(nul.status().code(), StatusCode::kInvalidArgument) << nul.status().ToString();
  } else {
    ASSERT_TRUE(nul.ok()) << nul.status().ToString();
    EXPECT_EQ(engine->Query("SELECT name FROM items WHERE id = 3")->Text(0, 0), with_nul);
  }
  EXPECT_FALSE(engine->Query("SELEC 1").ok());
  EXPECT_TRUE(engine->Query("SELECT 1").ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, SqlEngineTest,
                         ::testing::Values(SqlEngineKind::kSqlite, SqlEngineKind::kPostgresql),
                         [](const auto& info) {
                           return info.param == SqlEngineKind::kSqlite ? "sqlite" : "postgresql";
                         });

TEST(SqlEngineOpenTest, AnUnreachableServerIsAnErrorThatHidesThePassword) {
  auto engine =
      SqlEngine::Open("postgresql://flotilla:hunter2secret@127.0.0.1:1/tracker?connect_timeout=2");
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(engine.status().message().find("hunter2secret"), std::string::npos)
      << engine.status().ToString();
  EXPECT_NE(engine.status().message().find("flotilla:***@127.0.0.1:1"), std::string::npos)
      << engine.status().ToString();
}

TEST(SqlEngineOpenTest, BadUrlsAreRefused) {
  EXPECT_EQ(SqlEngine::Open("mysql://u:pw@host/db").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlEngine::Open("sqlite:").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(SqlEngine::Open("/nonexistent-dir/sub/t.db").ok());
}

TEST(SqlEngineOpenTest, RedactsPasswords) {
  EXPECT_EQ(RedactDatabaseUrl("postgresql://u:pw@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://u@h/db?sslmode=require&password=pw"),
            "postgresql://u@h/db?sslmode=require&password=***");
  EXPECT_EQ(RedactDatabaseUrl("postgresql:///db?host=/tmp&password=pw&user=u"),
            "postgresql:///db?host=/tmp&password=***&user=u");
  EXPECT_EQ(RedactDatabaseUrl("/srv/tracker.db"), "/srv/tracker.db");
}

}  // namespace
}  // namespace flotilla::tracker
