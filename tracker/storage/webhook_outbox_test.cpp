// The webhook outbox on both engines (a SQLite file and a database of the
// test process's PostgreSQL cluster): appending in the caller's transaction,
// order, deduplication, delivery records, giving up and pruning, durability
// across a reopen; and the schema step from version 5 and from 0.1.0.
#include "tracker/storage/webhook_outbox.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/engine_test.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

const std::vector<std::string> kAll = WebhookEventNames();

class WebhookOutboxTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("outbox"));
    auto outbox = WebhookOutbox::Open(url_);
    ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
    outbox_ = std::move(*outbox);
    auto engine = SqlEngine::Open(url_);
    ASSERT_TRUE(engine.ok());
    engine_ = std::move(*engine);
  }

  // Appends through the second connection, committed.
  bool Append(const std::string& event, const std::string& id, const std::string& key, int64_t at) {
    auto appended = AppendWebhookEvent(*engine_, event, id, key, "{\"id\":\"" + id + "\"}", at);
    EXPECT_TRUE(appended.ok()) << appended.status().ToString();
    return appended.ok() && *appended;
  }
  std::vector<std::string> PendingIds(const std::string& url,
                                      const std::vector<std::string>& events = kAll,
                                      int64_t since = 0) {
    auto pending = outbox_->Pending(url, events, since, 100);
    EXPECT_TRUE(pending.ok()) << pending.status().ToString();
    std::vector<std::string> ids;
    for (const auto& p : pending.value_or(std::vector<PendingDelivery>{})) {
      ids.push_back(p.event.event_id);
    }
    return ids;
  }

  std::unique_ptr<WebhookOutbox> outbox_;
  std::unique_ptr<SqlEngine> engine_;
};

TEST_P(WebhookOutboxTest, EventsComeBackInOrderPerUrlUntilDelivered) {
  EXPECT_TRUE(Append("rollout.halted", "e1", "", 100));
  EXPECT_TRUE(Append("rollout.wave_stalled", "e2", "stall/1/0", 101));
  EXPECT_TRUE(Append("rollout.completed", "e3", "", 102));
  EXPECT_FALSE(Append("rollout.wave_stalled", "e4", "stall/1/0", 103)) << "told once";

  const std::string a = "https://a.example/hook", b = "http://b.example/hook";
  EXPECT_EQ(PendingIds(a), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(PendingIds(a, {"rollout.halted", "rollout.completed"}),
            (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(PendingIds(a, kAll, 101), (std::vector<std::string>{"e2", "e3"}));
  auto first = outbox_->Pending(a, kAll, 0, 1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().event.body, "{\"id\":\"e1\"}");
  EXPECT_EQ(first->front().event.event, "rollout.halted");
  EXPECT_EQ(first->front().attempts, 0);

  // a: e1 fails once, then is delivered; b sees nothing of a's records.
  ASSERT_TRUE(outbox_->RecordFailed(first->front().event.seq, a, 1, 500, "HTTP 503", 200).ok());
  auto again = outbox_->Pending(a, kAll, 0, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->front().event.event_id, "e1");
  EXPECT_EQ(again->front().attempts, 1);
  EXPECT_EQ(again->front().next_attempt_at, 500);
  EXPECT_EQ(again->front().last_error, "HTTP 503");
  auto backlog = outbox_->Backlog();
  ASSERT_TRUE(backlog.ok());
  ASSERT_EQ(backlog->size(), 1u);
  EXPECT_EQ(backlog->front().url, a);
  EXPECT_EQ(backlog->front().pending, 1);
  EXPECT_EQ(backlog->front().oldest_pending_at, 100);
  EXPECT_EQ(backlog->front().last_error, "HTTP 503");

  ASSERT_TRUE(outbox_->RecordDelivered(first->front().event.seq, a, 2, 600).ok());
  EXPECT_EQ(PendingIds(a), (std::vector<std::string>{"e2", "e3"}));
  EXPECT_EQ(PendingIds(b), (std::vector<std::string>{"e1", "e2", "e3"}));

  // Durable: another connection (a restarted tracker) sees the same.
  outbox_.reset();
  auto reopened = WebhookOutbox::Open(url_);
  ASSERT_TRUE(reopened.ok());
  outbox_ = std::move(*reopened);
  EXPECT_EQ(PendingIds(a), (std::vector<std::string>{"e2", "e3"}));
  backlog = outbox_->Backlog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(backlog->front().delivered, 1);
  EXPECT_EQ(backlog->front().pending, 0);
}

TEST_P(WebhookOutboxTest, AppendIsPartOfTheCallersTransaction) {
  {
    auto transaction = SqlTransaction::Begin(*engine_);
    ASSERT_TRUE(transaction.ok());
    EXPECT_TRUE(Append("rollout.halted", "rolled-back", "", 100));
  }  // rolled back
  EXPECT_TRUE(PendingIds("http://a/").empty());
  {
    auto transaction = SqlTransaction::Begin(*engine_);
    ASSERT_TRUE(transaction.ok());
    EXPECT_TRUE(Append("rollout.halted", "committed", "", 100));
    ASSERT_TRUE(transaction->Commit().ok());
  }
  EXPECT_EQ(PendingIds("http://a/"), (std::vector<std::string>{"committed"}));
}

TEST_P(WebhookOutboxTest, GivesUpAfterTheMaximumAgeAndPrunes) {
  EXPECT_TRUE(Append("rollout.halted", "old", "", 100));
  EXPECT_TRUE(Append("rollout.completed", "new", "", 5000));
  const std::string a = "http://a/";
  auto pending = outbox_->Pending(a, kAll, 0, 10);
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(outbox_->RecordFailed(pending->front().event.seq, a, 3, 900, "timeout", 800).ok());
  auto abandoned = outbox_->Abandon(a, kAll, 1000, 1000);
  ASSERT_TRUE(abandoned.ok()) << abandoned.status().ToString();
  ASSERT_EQ(abandoned->size(), 1u);
  EXPECT_EQ(abandoned->front().event.event_id, "old");
  EXPECT_EQ(abandoned->front().attempts, 3);
  EXPECT_EQ(PendingIds(a), (std::vector<std::string>{"new"}));
  EXPECT_EQ(outbox_->Backlog()->front().abandoned, 1);
  EXPECT_TRUE(outbox_->Abandon(a, kAll, 1000, 1001)->empty()) << "once";

  auto pruned = outbox_->Prune(1000);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(*pruned, 1);
  auto events = outbox_->Events();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().event_id, "new");
  EXPECT_TRUE(outbox_->Backlog()->empty()) << "the old event's delivery went with it";
}

TEST_P(WebhookOutboxTest, RefusesUnknownEventNames) {
  EXPECT_EQ(
      outbox_->Pending("http://a/", {"rollout.halted'; DROP TABLE x; --"}, 0, 1).status().code(),
      StatusCode::kInvalidArgument);
}

FLOTILLA_ON_BOTH_ENGINES(WebhookOutboxTest);

// A database at schema version 5 (with a rollout in it) gains the outbox.
class WebhookOutboxMigrationTest : public testing::EngineTest {};

TEST_P(WebhookOutboxMigrationTest, FromVersion5) {
  const std::string dir = ::testing::TempDir() + "/outbox-v5-" +
                          (GetParam() == SqlEngineKind::kSqlite ? "sqlite" : "postgresql");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string url = dir + "/t.db";
  if (GetParam() == SqlEngineKind::kPostgresql) {
    auto cluster = testing::PostgresCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    auto made = (*cluster)->CreateDatabase("outboxv5");
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    url = *made;
  }
  {
    auto engine = SqlEngine::Open(url);
    ASSERT_TRUE(engine.ok());
    const std::vector<SqlMigration> v5(TrackerMigrations().begin(),
                                       TrackerMigrations().begin() + 5);
    ASSERT_EQ(v5.back().version, 5);
    ASSERT_TRUE(MigrateSchema(**engine, v5).ok());
    ASSERT_TRUE((*engine)
                    ->ExecScript("INSERT INTO rollouts(app, release, group_name, waves, soak_s, "
                                 "max_failures, wave_timeout_s, state, reason, current_wave, "
                                 "created_at, wave_started_at, updated_at) VALUES('kiosk', 7, '', "
                                 "'10000', 0, 0, 60, 'running', '', 0, 1, 1, 1);")
                    .ok());
    ASSERT_EQ((*engine)->SchemaVersion().value(), 5);
  }
  auto outbox = WebhookOutbox::Open(url);
  ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
  auto engine = SqlEngine::Open(url);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->SchemaVersion().value(), TrackerMigrations().back().version);
  EXPECT_EQ((*engine)->Query("SELECT app FROM rollouts")->Text(0, 0), "kiosk");
  ASSERT_TRUE(AppendWebhookEvent(**engine, "rollout.completed", "e1", "", "{}", 5).ok());
  EXPECT_EQ((*outbox)->Pending("http://a/", kAll, 0, 10)->size(), 1u);
  std::filesystem::remove_all(dir);
}

FLOTILLA_ON_BOTH_ENGINES(WebhookOutboxMigrationTest);

// The tracker.db 0.1.0 wrote (testdata, see DeviceDbCompatTest) migrates
// to the newest version and keeps its device.
TEST(WebhookOutboxCompatTest, MigratesWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/outbox-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  auto outbox = WebhookOutbox::Open(db);
  ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
  auto engine = SqlEngine::Open(db);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->SchemaVersion().value(), TrackerMigrations().back().version);
  ASSERT_TRUE(AppendWebhookEvent(**engine, "rollout.halted", "e1", "", "{}", 5).ok());
  EXPECT_EQ((*outbox)->Events()->size(), 1u);
  FakeClock clock;
  auto devices = DeviceDb::Open(db, clock);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  EXPECT_EQ((*devices)->Snapshot(10)->devices.size(), 1u) << "the 0.1.0 device is still there";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
