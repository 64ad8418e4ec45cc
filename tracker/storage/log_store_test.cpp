// Remote log requests on both engines: creation audited, the per-device
// bound, expiry, uploads only by the device asked and only while open, the
// newest upload kept, sanitising of what PostgreSQL's TEXT refuses.
#include "tracker/storage/log_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/clock.h"
#include "tests/support/engine_test.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {
namespace {

class LogStoreTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("logstore"));
    auto engine = SqlEngine::Open(url_);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    db_ = std::move(*engine);
    ASSERT_TRUE(MigrateTrackerSchema(*db_).ok());
  }

  std::unique_ptr<SqlEngine> db_;
};

TEST_P(LogStoreTest, RequestIsAuditedAndAnsweredByItsDeviceOnly) {
  auto id = CreateLogRequest(*db_, "local:alice", "dev-1", "screen-1", "web", 600, 1000);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto audit = ListAudit(*db_, {});
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].actor, "local:alice");
  EXPECT_EQ((*audit)[0].action, "logs.request");
  EXPECT_EQ((*audit)[0].target, "screen-1");
  EXPECT_EQ((*audit)[0].detail["app"], "web");

  auto pending = PendingLogRequests(*db_, "dev-1", 1001);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, *id);
  EXPECT_EQ((*pending)[0].app, "web");
  EXPECT_EQ((*pending)[0].since_s, 600);
  EXPECT_TRUE(PendingLogRequests(*db_, "dev-2", 1001)->empty());

  EXPECT_EQ(StoreLogUpload(*db_, *id, "dev-2", "not mine\n", 1002).code(), StatusCode::kNotFound);
  ASSERT_TRUE(StoreLogUpload(*db_, *id, "dev-1", "first\n", 1002).ok());
  ASSERT_TRUE(StoreLogUpload(*db_, *id, "dev-1", "newest\n", 1003).ok());
  auto got = GetLogRequest(*db_, *id, 1004);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->log, "newest\n");
  EXPECT_EQ((*got)->uploaded_at, 1003);
  EXPECT_TRUE(PendingLogRequests(*db_, "dev-1", 1004)->empty());
}

TEST_P(LogStoreTest, RequestsExpireAndAreBoundedPerDevice) {
  const LogRequestLimits limits{.ttl_s = 100, .max_open_per_device = 2};
  ASSERT_TRUE(CreateLogRequest(*db_, "a", "dev-1", "s", "web", 0, 1000, limits).ok());
  ASSERT_TRUE(CreateLogRequest(*db_, "a", "dev-1", "s", "web", 0, 1000, limits).ok());
  EXPECT_EQ(CreateLogRequest(*db_, "a", "dev-1", "s", "web", 0, 1000, limits).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CreateLogRequest(*db_, "a", "dev-2", "t", "web", 0, 1000, limits).ok());
  // After the expiry: gone, not answerable, and room again.
  auto late = CreateLogRequest(*db_, "a", "dev-1", "s", "web", 0, 1100, limits);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  EXPECT_EQ(PendingLogRequests(*db_, "dev-1", 1100)->size(), 1u);
  EXPECT_FALSE(GetLogRequest(*db_, *late - 1, 1100)->has_value());
  EXPECT_EQ(StoreLogUpload(*db_, *late, "dev-1", "x", 1200).code(), StatusCode::kNotFound);
}

TEST_P(LogStoreTest, RecentRequestsNewestFirstWithTheDeviceName) {
  FakeClock clock;
  auto devices = DeviceDb::Open(url_, clock);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  auto screen = (*devices)->Enroll("screen-1", "shop-1");
  ASSERT_TRUE(screen.ok()) << screen.status().ToString();
  const LogRequestLimits limits{.ttl_s = 100, .max_open_per_device = 8};
  auto old = CreateLogRequest(*db_, "a", screen->device_id, "screen-1", "web", 0, 1000, limits);
  auto mid = CreateLogRequest(*db_, "b", screen->device_id, "screen-1", "db", 60, 1050, limits);
  auto gone = CreateLogRequest(*db_, "a", "dev-removed", "x", "web", 0, 1060, limits);
  ASSERT_TRUE(old.ok() && mid.ok() && gone.ok());
  ASSERT_TRUE(StoreLogUpload(*db_, *mid, screen->device_id, "hello\n", 1070).ok());

  auto recent = RecentLogRequests(*db_, 1080, 10);
  ASSERT_TRUE(recent.ok()) << recent.status().ToString();
  ASSERT_EQ(recent->size(), 3u);
  EXPECT_EQ((*recent)[0].id, *gone);
  EXPECT_EQ((*recent)[0].device_name, "");
  EXPECT_EQ((*recent)[1].id, *mid);
  EXPECT_EQ((*recent)[1].device_name, "screen-1");
  EXPECT_EQ((*recent)[1].app, "db");
  EXPECT_EQ((*recent)[1].since_s, 60);
  EXPECT_EQ((*recent)[1].uploaded_at, 1070);
  EXPECT_EQ((*recent)[1].log, "") << "no bodies in the list";
  EXPECT_EQ((*recent)[2].requested_by, "a");
  EXPECT_EQ(RecentLogRequests(*db_, 1080, 1)->size(), 1u);
  // The first has expired at 1100.
  EXPECT_EQ(RecentLogRequests(*db_, 1100, 10)->size(), 2u);
}

TEST_P(LogStoreTest, UploadIsBoundedAndSanitised) {
  auto id = CreateLogRequest(*db_, "a", "dev-1", "s", "web", 0, 1000);
  ASSERT_TRUE(id.ok());
  std::string big(kMaxStoredLogBytes + 10, 'o');
  big += std::string("tail\0\xff\xc3\xa9\n", 9);
  ASSERT_TRUE(StoreLogUpload(*db_, *id, "dev-1", big, 1001).ok());
  const std::string log = (*GetLogRequest(*db_, *id, 1001))->log;
  EXPECT_EQ(log.size(), kMaxStoredLogBytes);
  EXPECT_TRUE(log.ends_with("tail??\xc3\xa9\n")) << log.substr(log.size() - 12);
}

TEST(LogTextTest, SanitiseKeepsValidUtf8) {
  EXPECT_EQ(SanitizeLogText("plain \xc3\xa9 \xf0\x9f\x98\x80\n"),
            "plain \xc3\xa9 \xf0\x9f\x98\x80\n");
  EXPECT_EQ(SanitizeLogText(std::string("a\0b", 3)), "a?b");
  EXPECT_EQ(SanitizeLogText("\xc3(\xed\xa0\x80"), "?(???");
}

FLOTILLA_ON_BOTH_ENGINES(LogStoreTest);

}  // namespace
}  // namespace flotilla::tracker
