// Store tests run once per SQL engine (docs/tracker.md, "Tests on both
// engines"): a SQLite file in a fresh directory, and a fresh database of the
// test process's PostgreSQL cluster.
//
//   class WidgetStoreTest : public testing::EngineTest {
//     void SetUp() override { ASSERT_NO_FATAL_FAILURE(SetUpEngine("widgets")); ... }
//   };
//   FLOTILLA_ON_BOTH_ENGINES(WidgetStoreTest);
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/postgres_cluster.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::testing {

class EngineTest : public ::testing::TestWithParam<tracker::SqlEngineKind> {
 protected:
  // dir_: a fresh directory named after `prefix`, the test and the engine;
  // url_: a SQLite file in it, or a new database `prefix` ([a-z0-9_]) of
  // the shared PostgreSQL cluster (cluster_).
  void SetUpEngine(const std::string& prefix) {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "/" + prefix + "-" + name.substr(0, name.find('/')) +
           (sqlite() ? "-sqlite" : "-postgresql");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    url_ = dir_ + "/t.db";
    if (sqlite()) return;
    auto cluster = PostgresCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = *cluster;
    auto url = cluster_->CreateDatabase(prefix);
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  bool sqlite() const { return GetParam() == tracker::SqlEngineKind::kSqlite; }

  std::string dir_;
  std::string url_;
  PostgresCluster* cluster_ = nullptr;  // null on SQLite
};

inline std::string EngineName(const ::testing::TestParamInfo<tracker::SqlEngineKind>& info) {
  return info.param == tracker::SqlEngineKind::kSqlite ? "sqlite" : "postgresql";
}

}  // namespace flotilla::testing

#define FLOTILLA_ON_BOTH_ENGINES(Suite)                                                        \
  INSTANTIATE_TEST_SUITE_P(Engines, Suite,                                                     \
                           ::testing::Values(::flotilla::tracker::SqlEngineKind::kSqlite,      \
                                             ::flotilla::tracker::SqlEngineKind::kPostgresql), \
                           ::flotilla::testing::EngineName)
