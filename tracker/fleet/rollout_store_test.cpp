// RolloutStore on both engines (a SQLite file and a database of the test
// process's PostgreSQL cluster), with reports recorded by DeviceDb as the
// tracker records them; and the schema step from version 3 and from 0.1.0.
#include "tracker/fleet/rollout_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "tests/support/postgres_cluster.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/webhook_outbox.h"

namespace flotilla::tracker {
namespace {

std::string TestUrl(const std::string& dir, SqlEngineKind kind, const std::string& db_name) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  if (kind == SqlEngineKind::kSqlite) return dir + "/t.db";
  auto cluster = testing::PostgresCluster::Shared();
  EXPECT_TRUE(cluster.ok()) << cluster.status().ToString();
  if (!cluster.ok()) return "";
  auto url = (*cluster)->CreateDatabase(db_name);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  return url.ok() ? *url : "";
}

// Ten screens on three sites run kiosk (releases 5, 6, 7).
class RolloutStoreTest : public ::testing::TestWithParam<SqlEngineKind> {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "/rolloutstore-" + name.substr(0, name.find('/')) +
           (GetParam() == SqlEngineKind::kSqlite ? "-sqlite" : "-postgresql");
    url_ = TestUrl(dir_, GetParam(), "rolloutstore");
    ASSERT_FALSE(url_.empty());
    auto devices = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(devices.ok()) << devices.status().ToString();
    devices_ = std::move(*devices);
    for (int i = 0; i < 10; ++i) {
      auto enrolled =
          devices_->Enroll("screen-" + std::to_string(i), "shop-" + std::to_string(i % 3));
      ASSERT_TRUE(enrolled.ok());
      ids_.push_back(enrolled->device_id);
    }
    for (const char* release : {"5", "6", "7"}) {
      ASSERT_TRUE(devices_->RecordRelease("kiosk", release).ok());
    }
    auto fleet = FleetStore::Open(url_, clock_);
    ASSERT_TRUE(fleet.ok());
    fleet_ = std::move(*fleet);
    ASSERT_TRUE(fleet_->CreateGroup("all", Selector::Parse("all").value()).ok());
    ASSERT_TRUE(fleet_->AssignApp("kiosk", "all").ok());
    auto store = RolloutStore::Open(url_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  FleetState Load() { return fleet_->Load().value(); }
  RolloutSpec Spec() { return RolloutSpec{"kiosk", 7, "", {1000, 5000, 10000}, 0, 2500, 3600}; }
  void Report(const std::string& device_id, const std::string& state, const std::string& release,
              const std::string& failure = "") {
    DeviceReport r{.app = "kiosk",
                   .release = release,
                   .state = state,
                   .health = state == "running" ? "healthy" : "unknown",
                   .failure = failure};
    Status st = devices_->RecordReport(device_id, r);
    ASSERT_TRUE(st.ok()) << st.ToString() << " for " << device_id;
  }
  std::optional<uint64_t> Desired(const std::string& name) {
    FleetState state = Load();
    auto limits = store_->Limits(state);
    EXPECT_TRUE(limits.ok());
    return DesiredReleases(state, limits->get()).For(state.devices.at(name), "kiosk").release;
  }

  std::string dir_;
  std::string url_;
  FakeClock clock_;
  std::unique_ptr<DeviceDb> devices_;
  std::unique_ptr<FleetStore> fleet_;
  std::unique_ptr<RolloutStore> store_;
  std::vector<std::string> ids_;
};

TEST_P(RolloutStoreTest, StartAdvanceCompleteAndTheLimitFollows) {
  auto started = store_->Start(Spec(), Load());
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  const RolloutView& view = *started;
  EXPECT_EQ(view.rollout.state, RolloutState::kRunning);
  ASSERT_EQ(view.waves.size(), 3u);
  EXPECT_EQ(view.waves[0].size, 1u);
  EXPECT_EQ(view.waves[1].size, 4u);
  EXPECT_EQ(view.waves[2].size, 5u);
  std::vector<std::string> wave1;
  for (const RolloutMember& m : view.members) {
    if (m.wave == 0) wave1.push_back(m.name);
  }
  ASSERT_EQ(wave1.size(), 1u);
  const std::string first = wave1.front();
  std::string later;
  for (const RolloutMember& m : view.members) {
    if (m.wave == 2) later = m.name;
  }
  EXPECT_EQ(Desired(first), 7u);
  EXPECT_EQ(Desired(later), 6u);

  auto second = store_->Start(Spec(), Load());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("rollout 1 of kiosk is running"), std::string::npos)
      << second.status().message();

  clock_.Advance(std::chrono::seconds(5));
  const std::string first_id = Load().devices.at(first).device_id;
  Report(first_id, "running", "7");
  clock_.Advance(std::chrono::seconds(5));
  auto pass = store_->Evaluate(Load());
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->released.size(), 4u) << "wave 2 started";
  auto listed = store_->List(view.rollout.id);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->front().rollout.current_wave, 1u);
  EXPECT_EQ(listed->front().waves[0].healthy, 1u);
  EXPECT_EQ(Desired(later), 6u);

  for (const RolloutMember& m : listed->front().members) {
    if (m.wave == 1) Report(m.device_id, "running", "7");
  }
  clock_.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  EXPECT_EQ(Desired(later), 7u);
  // A device enrolled now joins the last wave, which has started: it gets 7.
  ASSERT_TRUE(devices_->Enroll("late", "shop-9").ok());
  EXPECT_EQ(Desired("late"), 7u);
  pass = store_->Evaluate(Load());
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->released.size(), 1u);
  const std::vector<RolloutMember> members = store_->List(view.rollout.id)->front().members;
  for (const RolloutMember& m : members) {
    if (m.wave == 2) Report(m.device_id, "running", "7");
  }
  clock_.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  listed = store_->List(std::nullopt);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->front().rollout.state, RolloutState::kCompleted);
  EXPECT_EQ(listed->front().waves[2].size, 6u);
  // The waves never changed: the first wave's device is the same.
  for (const RolloutMember& m : listed->front().members) {
    if (m.wave == 0) {
      EXPECT_EQ(m.name, first);
    }
  }
  EXPECT_TRUE(store_->Start(Spec(), Load()).ok()) << "a completed rollout holds nothing";
}

TEST_P(RolloutStoreTest, HaltPauseResumeAbort) {
  RolloutSpec spec = Spec();
  spec.waves = {5000, 10000};
  auto started = store_->Start(spec, Load());
  ASSERT_TRUE(started.ok());
  const int64_t id = started->rollout.id;
  std::vector<RolloutMember> first;
  for (const RolloutMember& m : started->members) {
    if (m.wave == 0) first.push_back(m);
  }
  ASSERT_EQ(first.size(), 5u);
  EXPECT_EQ(store_->Pause(id)->rollout.state, RolloutState::kPaused);
  EXPECT_EQ(store_->Pause(id).status().code(), StatusCode::kFailedPrecondition);
  clock_.Advance(std::chrono::seconds(1));
  for (int i = 0; i < 2; ++i) Report(first[i].device_id, "rolled_back", "6");
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  EXPECT_EQ(store_->List(id)->front().rollout.state, RolloutState::kPaused) << "paused: no halt";
  EXPECT_EQ(store_->Resume(id)->rollout.state, RolloutState::kRunning);
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  auto halted = store_->List(id);
  ASSERT_TRUE(halted.ok());
  EXPECT_EQ(halted->front().rollout.state, RolloutState::kHalted);
  EXPECT_NE(halted->front().rollout.reason.find(first[0].name + ": switch rolled back"),
            std::string::npos)
      << halted->front().rollout.reason;
  EXPECT_EQ(halted->front().waves[0].failed, 2u);
  EXPECT_EQ(Desired(first[2].name), 7u) << "a halt keeps the started wave";
  auto aborted = store_->Abort(id);
  ASSERT_TRUE(aborted.ok());
  EXPECT_EQ(aborted->rollout.state, RolloutState::kAborted);
  EXPECT_EQ(Desired(first[2].name), 6u) << "abort sends devices back";
  ASSERT_TRUE(fleet_->Recall("kiosk", 6).ok());
  EXPECT_EQ(Desired(first[2].name), 5u) << "to the newest not recalled below";
  EXPECT_EQ(store_->Abort(id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Resume(id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Pause(99).status().code(), StatusCode::kNotFound);
}

// The failure kind a report names is stored with it and read by the
// evaluation: failed transfers and full disks are pending, a verification
// failure counts and is named in the halt.
TEST_P(RolloutStoreTest, FailureKindsFromTheReportsDecideTheVerdicts) {
  RolloutSpec spec = Spec();
  spec.waves = {5000, 10000};
  auto started = store_->Start(spec, Load());
  ASSERT_TRUE(started.ok());
  const int64_t id = started->rollout.id;
  std::vector<RolloutMember> first;
  for (const RolloutMember& m : started->members) {
    if (m.wave == 0) first.push_back(m);
  }
  ASSERT_EQ(first.size(), 5u);
  clock_.Advance(std::chrono::seconds(1));
  Report(first[0].device_id, "failed", "7", "transfer");
  Report(first[1].device_id, "failed", "7", "disk");
  Report(first[2].device_id, "failed", "7", "transfer");
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  auto view = store_->List(id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->front().rollout.state, RolloutState::kRunning) << view->front().rollout.reason;
  EXPECT_EQ(view->front().waves[0].failed, 0u);
  EXPECT_EQ(view->front().waves[0].pending, 5u);

  Report(first[0].device_id, "failed", "7", "verification");
  Report(first[1].device_id, "failed", "7");  // no kind: a failure, as from a 0.1.0 node
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  view = store_->List(id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->front().rollout.state, RolloutState::kHalted);
  EXPECT_EQ(view->front().waves[0].failed, 2u);
  const std::string& reason = view->front().rollout.reason;
  EXPECT_NE(reason.find(first[0].name + ": verification failed on release 7"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find(first[1].name + ": failed on release 7"), std::string::npos) << reason;
  EXPECT_EQ(reason.find(first[2].name), std::string::npos) << reason;
}

// The outbox's events, each body parsed.
std::vector<Json> OutboxEvents(const std::string& url) {
  auto outbox = WebhookOutbox::Open(url);
  EXPECT_TRUE(outbox.ok()) << outbox.status().ToString();
  auto events = (*outbox)->Events();
  EXPECT_TRUE(events.ok());
  std::vector<Json> bodies;
  for (const WebhookEvent& e : *events) {
    auto body = ParseJsonStrict(e.body);
    EXPECT_TRUE(body.ok()) << e.body;
    EXPECT_EQ((*body)["id"], e.event_id);
    EXPECT_EQ((*body)["event"], e.event);
    bodies.push_back(*body);
  }
  return bodies;
}

// A wave past its timeout is told once; a halt and a completion each once;
// commands (pause, resume) tell nothing.
TEST_P(RolloutStoreTest, NotifiesStallHaltAndCompletion) {
  RolloutSpec spec = Spec();
  spec.waves = {5000, 10000};
  spec.wave_timeout_s = 60;
  auto started = store_->Start(spec, Load());
  ASSERT_TRUE(started.ok());
  const int64_t id = started->rollout.id;
  std::vector<RolloutMember> first, second;
  for (const RolloutMember& m : started->members) (m.wave == 0 ? first : second).push_back(m);
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  EXPECT_TRUE(OutboxEvents(url_).empty()) << "nothing happened yet";

  clock_.Advance(std::chrono::seconds(61));
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  auto events = OutboxEvents(url_);
  ASSERT_EQ(events.size(), 1u) << "a stall is told once";
  EXPECT_EQ(events[0]["event"], "rollout.wave_stalled");
  EXPECT_EQ(events[0]["rollout"]["id"], id);
  EXPECT_EQ(events[0]["rollout"]["app"], "kiosk");
  EXPECT_EQ(events[0]["rollout"]["release"], 7);
  EXPECT_EQ(events[0]["rollout"]["state"], "running");
  EXPECT_EQ(events[0]["wave"]["wave"], 1);
  EXPECT_EQ(events[0]["wave"]["size"], 5);
  EXPECT_EQ(events[0]["wave"]["silent"], 5);
  EXPECT_EQ(events[0]["at"], "2027-01-15T08:01:01Z");  // the FakeClock's start + 61 s

  ASSERT_TRUE(store_->Pause(id).ok());
  ASSERT_TRUE(store_->Resume(id).ok());
  for (int i = 0; i < 2; ++i) Report(first[i].device_id, "rolled_back", "6");
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  events = OutboxEvents(url_);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["event"], "rollout.halted");
  EXPECT_EQ(events[1]["rollout"]["state"], "halted");
  EXPECT_NE(events[1]["rollout"]["reason"].get<std::string>().find(first[0].name +
                                                                   ": switch rolled back"),
            std::string::npos)
      << events[1].dump();
  EXPECT_EQ(events[1]["wave"]["failed"], 2);
  EXPECT_NE(events[1]["id"], events[0]["id"]);

  // Resumed with the first wave healthy: the second wave starts, stalls
  // past its own timeout (told once more, for wave 2), then completes.
  ASSERT_TRUE(store_->Resume(id).ok());
  clock_.Advance(std::chrono::seconds(1));
  for (const RolloutMember& m : first) Report(m.device_id, "running", "7");
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  EXPECT_EQ(store_->List(id)->front().rollout.current_wave, 1u);
  EXPECT_EQ(OutboxEvents(url_).size(), 2u) << "advancing is no event";
  clock_.Advance(std::chrono::seconds(60));
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  for (const RolloutMember& m : second) Report(m.device_id, "running", "7");
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  events = OutboxEvents(url_);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2]["event"], "rollout.wave_stalled");
  EXPECT_EQ(events[2]["wave"]["wave"], 2);
  EXPECT_EQ(events[3]["event"], "rollout.completed");
  EXPECT_EQ(events[3]["rollout"]["state"], "completed");
  EXPECT_EQ(events[3]["rollout"]["current_wave"], 2);
  EXPECT_EQ(events[3]["wave"]["healthy"], 5);
}

// The event is part of the evaluation's transaction: when it cannot be
// written, the halt it tells of is not committed either (and is made again,
// with its event, by the next evaluation). A trigger fails the insert.
TEST_P(RolloutStoreTest, NoHaltWithoutItsEvent) {
  RolloutSpec spec = Spec();
  spec.waves = {5000, 10000};
  auto started = store_->Start(spec, Load());
  ASSERT_TRUE(started.ok());
  const int64_t id = started->rollout.id;
  auto engine = SqlEngine::Open(url_);
  ASSERT_TRUE(engine.ok());
  const bool sqlite = GetParam() == SqlEngineKind::kSqlite;
  ASSERT_TRUE((*engine)
                  ->ExecScript(sqlite ? "CREATE TRIGGER refuse BEFORE INSERT ON webhook_events "
                                        "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END;"
                                      : "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                                        "RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE "
                                        "plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON "
                                        "webhook_events FOR EACH ROW EXECUTE FUNCTION refuse();")
                  .ok());
  clock_.Advance(std::chrono::seconds(1));
  int failed = 0;
  for (const RolloutMember& m : started->members) {
    if (m.wave == 0 && failed++ < 2) Report(m.device_id, "rolled_back", "6");
  }
  auto pass = store_->Evaluate(Load());
  ASSERT_FALSE(pass.ok());
  EXPECT_NE(pass.status().message().find("outbox refused"), std::string::npos)
      << pass.status().ToString();
  EXPECT_EQ(store_->List(id)->front().rollout.state, RolloutState::kRunning) << "rolled back";
  ASSERT_TRUE(
      (*engine)
          ->ExecScript(sqlite ? "DROP TRIGGER refuse;" : "DROP TRIGGER refuse ON webhook_events;")
          .ok());
  ASSERT_TRUE(store_->Evaluate(Load()).ok());
  EXPECT_EQ(store_->List(id)->front().rollout.state, RolloutState::kHalted);
  auto events = OutboxEvents(url_);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["event"], "rollout.halted");
}

TEST_P(RolloutStoreTest, RefusesWhatCannotRollOut) {
  RolloutSpec spec = Spec();
  spec.release = 8;
  EXPECT_EQ(store_->Start(spec, Load()).status().code(), StatusCode::kNotFound);
  spec = Spec();
  spec.group = "nope";
  EXPECT_EQ(store_->Start(spec, Load()).status().code(), StatusCode::kNotFound);
  spec = Spec();
  spec.app = "clock";
  EXPECT_EQ(store_->Start(spec, Load()).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(fleet_->Recall("kiosk", 7).ok());
  EXPECT_EQ(store_->Start(Spec(), Load()).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->List(std::nullopt)->empty());
}

INSTANTIATE_TEST_SUITE_P(Engines, RolloutStoreTest,
                         ::testing::Values(SqlEngineKind::kSqlite, SqlEngineKind::kPostgresql),
                         [](const auto& info) {
                           return info.param == SqlEngineKind::kSqlite ? "sqlite" : "postgresql";
                         });

// A database at schema version 3 (with a device, a group and a report in it)
// gains the rollout tables and runs a rollout.
class RolloutMigrationTest : public ::testing::TestWithParam<SqlEngineKind> {};

TEST_P(RolloutMigrationTest, FromVersion3) {
  const std::string dir = ::testing::TempDir() + "/rollout-v3-" +
                          (GetParam() == SqlEngineKind::kSqlite ? "sqlite" : "postgresql");
  const std::string url = TestUrl(dir, GetParam(), "rolloutv3");
  ASSERT_FALSE(url.empty());
  {
    auto engine = SqlEngine::Open(url);
    ASSERT_TRUE(engine.ok());
    const std::vector<SqlMigration> v3(TrackerMigrations().begin(),
                                       TrackerMigrations().begin() + 3);
    ASSERT_EQ(v3.back().version, 3);
    ASSERT_TRUE(MigrateSchema(**engine, v3).ok());
    ASSERT_TRUE((*engine)
                    ->ExecScript("INSERT INTO devices VALUES('dev-1', 'screen-1', 'shop', 'c', "
                                 "'p', 1); INSERT INTO releases VALUES('kiosk', '7', 1); "
                                 "INSERT INTO fleet_groups VALUES('all', 'all', 1); "
                                 "INSERT INTO app_assignments VALUES('all', 'kiosk'); "
                                 "INSERT INTO device_status VALUES('dev-1', 'kiosk', '6', "
                                 "'failed', 0, 0, 0, 0, 'unknown', 1);")
                    .ok());
    ASSERT_EQ((*engine)->SchemaVersion().value(), 3);
  }
  FakeClock clock;
  auto store = RolloutStore::Open(url, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto fleet = FleetStore::Open(url, clock);
  ASSERT_TRUE(fleet.ok());
  auto started =
      (*store)->Start(RolloutSpec{"kiosk", 7, "", {10000}, 0, 0, 60}, (*fleet)->Load().value());
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(started->members.size(), 1u);
  EXPECT_EQ(started->members.front().name, "screen-1");
  auto engine = SqlEngine::Open(url);
  EXPECT_EQ((*engine)->SchemaVersion().value(), TrackerMigrations().back().version);
  // A report stored before failure kinds existed names none.
  auto kinds = (*engine)->Query("SELECT failure FROM device_status");
  ASSERT_TRUE(kinds.ok()) << kinds.status().ToString();
  ASSERT_EQ(kinds->size(), 1u);
  EXPECT_EQ(kinds->Text(0, 0), "");
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Engines, RolloutMigrationTest,
                         ::testing::Values(SqlEngineKind::kSqlite, SqlEngineKind::kPostgresql),
                         [](const auto& info) {
                           return info.param == SqlEngineKind::kSqlite ? "sqlite" : "postgresql";
                         });

// The tracker.db 0.1.0 wrote (tracker/storage/testdata) migrates to the
// rollout tables; its device, whose one release is no version number,
// is in no rollout of that release.
TEST(RolloutCompatTest, MigratesWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/rollout-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  FakeClock clock;
  auto store = RolloutStore::Open(db, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto fleet = FleetStore::Open(db, clock);
  ASSERT_TRUE(fleet.ok());
  ASSERT_TRUE((*fleet)->CreateGroup("shop", Selector::Parse("site=shop").value()).ok());
  ASSERT_TRUE((*fleet)->AssignApp("web", "shop").ok());
  auto devices = DeviceDb::Open(db, clock);
  ASSERT_TRUE(devices.ok());
  ASSERT_TRUE((*devices)->RecordRelease("web", "2").ok());
  auto started = (*store)->Start(RolloutSpec{"web", 2, "shop", {5000, 10000}, 0, 0, 60},
                                 (*fleet)->Load().value());
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_EQ(started->members.size(), 1u);
  EXPECT_EQ(started->members.front().name, "pi-old");
  EXPECT_EQ(started->members.front().wave, 0u) << "one device: the first wave (ceil of 50%)";
  // 0.1.0's latest report (release r1, running) is from before the start: no verdict.
  auto pass = (*store)->Evaluate((*fleet)->Load().value());
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ((*store)->List(std::nullopt)->front().waves[0].pending, 1u);
  // Its report row gained a failure kind: a retried transfer stays pending,
  // a verification failure halts (no failure may).
  DeviceReport failed{.app = "web", .release = "2", .state = "failed", .health = "unknown"};
  failed.failure = "transfer";
  ASSERT_TRUE((*devices)->RecordReport("dev-0123456789abcdef", failed).ok());
  ASSERT_TRUE((*store)->Evaluate((*fleet)->Load().value()).ok());
  EXPECT_EQ((*store)->List(std::nullopt)->front().rollout.state, RolloutState::kRunning);
  failed.failure = "verification";
  ASSERT_TRUE((*devices)->RecordReport("dev-0123456789abcdef", failed).ok());
  ASSERT_TRUE((*store)->Evaluate((*fleet)->Load().value()).ok());
  auto halted = (*store)->List(std::nullopt);
  ASSERT_TRUE(halted.ok());
  EXPECT_EQ(halted->front().rollout.state, RolloutState::kHalted);
  EXPECT_NE(halted->front().rollout.reason.find("pi-old: verification failed on release 2"),
            std::string::npos)
      << halted->front().rollout.reason;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
