// FleetStore on both engines: every test runs on a SQLite file and on a
// database of the test process's PostgreSQL cluster.
#include "tracker/fleet/fleet_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/engine_test.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

class FleetStoreTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("fleetstore"));
    auto devices = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(devices.ok()) << devices.status().ToString();
    for (const char* name : {"screen-7", "screen-8", "lobby-1"}) {
      ASSERT_TRUE((*devices)->Enroll(name, "shop-12").ok());
    }
    for (const char* release : {"5", "6", "7"}) {
      ASSERT_TRUE((*devices)->RecordRelease("kiosk", release).ok());
    }
    auto store = FleetStore::Open(url_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  FleetState Load() {
    auto state = store_->Load();
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? *state : FleetState{};
  }

  FakeClock clock_;
  std::unique_ptr<FleetStore> store_;
};

TEST_P(FleetStoreTest, TagsSitesGroupsAndAssignmentsRoundTrip) {
  ASSERT_TRUE(store_->SetTags("screen-7", {"window", "outdoor"}, {}).ok());
  ASSERT_TRUE(store_->SetTags("screen-7", {"window"}, {"outdoor", "never-held"}).ok());
  ASSERT_TRUE(store_->SetTags("screen-8", {"window"}, {}).ok());
  ASSERT_TRUE(store_->MoveDevice("screen-8", "shop-13").ok());
  ASSERT_TRUE(
      store_->CreateGroup("windows", Selector::Parse("tag=window,site=shop-12").value()).ok());
  ASSERT_TRUE(store_->AssignApp("kiosk", "windows").ok());
  ASSERT_TRUE(store_->AssignApp("kiosk", "windows").ok()) << "assigning twice is one assignment";

  const FleetState state = Load();
  EXPECT_EQ(state.devices.at("screen-7").tags, std::set<std::string>{"window"});
  EXPECT_EQ(state.devices.at("screen-8").site, "shop-13");
  ASSERT_EQ(state.groups.size(), 1u);
  EXPECT_EQ(state.groups.at("windows").selector.ToString(), "site=shop-12,tag=window");
  EXPECT_EQ(state.groups.at("windows").apps, std::set<std::string>{"kiosk"});
  EXPECT_EQ(state.releases.at("kiosk"), (std::set<uint64_t>{5, 6, 7}));
  DesiredReleases desired(state);
  EXPECT_EQ(desired.AppsOf(state.devices.at("screen-7")), std::vector<std::string>{"kiosk"});
  EXPECT_TRUE(desired.AppsOf(state.devices.at("screen-8")).empty()) << "moved out of the group";
  EXPECT_EQ(desired.For(state.devices.at("screen-7"), "kiosk").release, 7u);
}

TEST_P(FleetStoreTest, PinsAndRecallsDecideTheDesiredRelease) {
  ASSERT_TRUE(store_->CreateGroup("shop", Selector::Parse("site=shop-12").value()).ok());
  ASSERT_TRUE(store_->AssignApp("kiosk", "shop").ok());
  ASSERT_TRUE(store_->Recall("kiosk", 7).ok());
  ASSERT_TRUE(store_->Recall("kiosk", 7).ok()) << "recalling twice is not an error";
  ASSERT_TRUE(store_->Pin({PinTarget::Kind::kGroup, "shop"}, "kiosk", 5).ok());
  ASSERT_TRUE(store_->Pin({PinTarget::Kind::kDevice, "screen-7"}, "kiosk", 5).ok());
  ASSERT_TRUE(store_->Pin({PinTarget::Kind::kDevice, "screen-7"}, "kiosk", 6).ok()) << "re-pin";

  FleetState state = Load();
  DesiredReleases desired(state);
  EXPECT_EQ(desired.For(state.devices.at("screen-7"), "kiosk").release, 6u);
  EXPECT_EQ(desired.For(state.devices.at("screen-8"), "kiosk").release, 5u);

  ASSERT_TRUE(store_->Unpin({PinTarget::Kind::kGroup, "shop"}, "kiosk").ok());
  state = Load();
  EXPECT_EQ(DesiredReleases(state).For(state.devices.at("screen-8"), "kiosk").release, 6u)
      << "unpinned: the newest not recalled";
  EXPECT_EQ(DesiredReleases(state).For(state.devices.at("screen-7"), "kiosk").release, 6u);
  EXPECT_EQ(store_->Unpin({PinTarget::Kind::kGroup, "shop"}, "kiosk").code(),
            StatusCode::kNotFound);
}

TEST_P(FleetStoreTest, UnknownNamesAndBadValuesAreRefusedAndChangeNothing) {
  ASSERT_TRUE(store_->CreateGroup("shop", Selector::Parse("site=shop-12").value()).ok());
  EXPECT_EQ(store_->CreateGroup("shop", Selector::Parse("all").value()).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->SetTags("nobody", {"x"}, {}).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetTags("screen-7", {"ok", "bad tag"}, {}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetTags("screen-7", {"x"}, {"x"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->MoveDevice("nobody", "lab").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->MoveDevice("screen-7", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AssignApp("kiosk", "nogroup").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Pin({PinTarget::Kind::kDevice, "nobody"}, "kiosk", 5).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->Pin({PinTarget::Kind::kGroup, "nogroup"}, "kiosk", 5).code(),
            StatusCode::kNotFound);
  Status unpublished = store_->Pin({PinTarget::Kind::kDevice, "screen-7"}, "kiosk", 9);
  EXPECT_EQ(unpublished.code(), StatusCode::kNotFound);
  EXPECT_EQ(unpublished.message(), "release 9 of kiosk is not published");
  EXPECT_EQ(store_->Recall("kiosk", 9).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Recall("kiosk", 6).ok());
  EXPECT_EQ(store_->Pin({PinTarget::Kind::kDevice, "screen-7"}, "kiosk", 6).code(),
            StatusCode::kFailedPrecondition);

  const FleetState state = Load();
  EXPECT_TRUE(state.devices.at("screen-7").tags.empty()) << "a refused change left no tag";
  EXPECT_EQ(state.devices.at("screen-7").site, "shop-12");
  EXPECT_EQ(state.groups.at("shop").selector.ToString(), "site=shop-12");
  EXPECT_TRUE(state.device_pins.empty());
  EXPECT_EQ(state.recalls.at("kiosk"), std::set<uint64_t>{6});
}

// Re-enrolment (a device that lost its credential) keeps its id, so its tags
// and pins stay; its site is the one it enrols with.
TEST_P(FleetStoreTest, ReEnrolmentKeepsTagsAndPinsAndTakesTheSentSite) {
  ASSERT_TRUE(store_->SetTags("screen-7", {"window"}, {}).ok());
  ASSERT_TRUE(store_->Pin({PinTarget::Kind::kDevice, "screen-7"}, "kiosk", 6).ok());
  ASSERT_TRUE(store_->MoveDevice("screen-7", "shop-13").ok());
  auto devices = DeviceDb::Open(url_, clock_);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  ASSERT_TRUE((*devices)->Enroll("screen-7", "shop-14").ok());
  const FleetState state = Load();
  EXPECT_EQ(state.devices.at("screen-7").tags, std::set<std::string>{"window"});
  EXPECT_EQ(state.devices.at("screen-7").site, "shop-14");
  EXPECT_EQ(state.device_pins.at("screen-7").at("kiosk"), 6u);
}

// Windows are kept per group in the order added; a device's windows are
// those of its windowed groups; a group without windows adds none.
TEST_P(FleetStoreTest, WindowsRoundTripAndMakeTheDevicesWindows) {
  ASSERT_TRUE(store_->SetTags("screen-7", {"window"}, {}).ok());
  ASSERT_TRUE(store_->CreateGroup("shop", Selector::Parse("site=shop-12").value()).ok());
  ASSERT_TRUE(store_->CreateGroup("windows", Selector::Parse("tag=window").value()).ok());
  ASSERT_TRUE(store_->CreateGroup("all", Selector::Parse("all").value()).ok());
  const MaintenanceWindow nights = MakeWindow("mon-fri", "22:00", "06:00", "Europe/Berlin").value();
  const MaintenanceWindow weekend = MakeWindow("sat,sun", "03:00", "05:00", "UTC").value();
  const MaintenanceWindow noon = MakeWindow("daily", "12:00", "13:00", "Asia/Tokyo").value();
  auto added = store_->AddWindow("shop", nights);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  ASSERT_EQ(added->size(), 1u);
  EXPECT_EQ(added->front().group, "shop");
  ASSERT_TRUE(store_->AddWindow("shop", weekend).ok());
  ASSERT_TRUE(store_->AddWindow("windows", noon).ok());
  EXPECT_EQ(store_->AddWindow("nogroup", noon).status().code(), StatusCode::kNotFound);

  FleetState state = Load();
  const auto& shop = state.groups.at("shop").windows;
  ASSERT_EQ(shop.size(), 2u);
  EXPECT_EQ(WindowText(shop[0]), "mon-fri 22:00-06:00 Europe/Berlin");
  EXPECT_EQ(WindowText(shop[1]), "sat-sun 03:00-05:00 UTC");
  EXPECT_TRUE(state.groups.at("all").windows.empty());
  DesiredReleases desired(state);
  const auto seven = desired.WindowsOf(state.devices.at("screen-7"));
  ASSERT_EQ(seven.size(), 3u) << "shop's two and windows' one; group all adds none";
  EXPECT_EQ(seven[0].group, "shop");
  EXPECT_EQ(seven[2].group, "windows");
  EXPECT_EQ(desired.WindowsOf(state.devices.at("screen-8")).size(), 2u);

  // The fleet document carries them; without any, it has no `windows`.
  auto document = FleetDocument(state.devices.at("screen-8"), {}, {}, shop);
  ASSERT_TRUE(document.ok()) << document.status().ToString();
  const Json json = Json::parse(*document);
  ASSERT_EQ(json["windows"].size(), 2u);
  EXPECT_EQ(json["windows"][0]["tz"], "Europe/Berlin");
  EXPECT_EQ(json["windows"][0]["from"], "22:00");
  EXPECT_EQ(json["format"], 1) << "older nodes ignore the new member";
  EXPECT_FALSE(Json::parse(FleetDocument(state.devices.at("lobby-1"), {}, {}, {}).value())
                   .contains("windows"));

  ASSERT_TRUE(store_->ClearWindows("shop").ok());
  EXPECT_EQ(store_->ClearWindows("nogroup").code(), StatusCode::kNotFound);
  state = Load();
  EXPECT_TRUE(state.groups.at("shop").windows.empty());
  EXPECT_EQ(state.groups.at("windows").windows.size(), 1u) << "another group's stay";
  EXPECT_TRUE(DesiredReleases(state).WindowsOf(state.devices.at("screen-8")).empty());
  // Added again after a clear: numbered afresh, still in order.
  ASSERT_TRUE(store_->AddWindow("shop", weekend).ok());
  ASSERT_TRUE(store_->AddWindow("shop", nights).ok());
  EXPECT_EQ(Load().groups.at("shop").windows.front(),
            (MaintenanceWindow{weekend.days, 180, 300, "UTC", "shop"}));
}

FLOTILLA_ON_BOTH_ENGINES(FleetStoreTest);

// The tracker.db 0.1.0 wrote (tracker/storage/testdata, see DeviceDbCompatTest)
// gains the fleet tables: its device keeps its site and secrets, joins a
// group by that site, and the device database still opens it.
TEST(FleetStoreCompatTest, MigratesWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/fleetstore-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  FakeClock clock;
  {
    auto store = FleetStore::Open(db, clock);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->SetTags("pi-old", {"window"}, {}).ok());
    ASSERT_TRUE(
        (*store)->CreateGroup("shop", Selector::Parse("site=shop,tag=window").value()).ok());
    ASSERT_TRUE((*store)->AssignApp("web", "shop").ok());
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    const FleetDevice& old = state->devices.at("pi-old");
    EXPECT_EQ(old.device_id, "dev-0123456789abcdef");
    EXPECT_EQ(old.site, "shop");
    DesiredApp web = DesiredReleases(*state).For(old, "web");
    EXPECT_EQ(web.groups, std::vector<std::string>{"shop"});
    EXPECT_FALSE(web.release.has_value()) << "0.1.0's release 'r1' is no version number";
  }
  auto devices = DeviceDb::Open(db, clock);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  std::string passkey;
  for (int i = 0; i < 32; ++i) passkey += "22";
  EXPECT_EQ((*devices)->AuthenticatePasskey(passkey)->name, "pi-old");
  ASSERT_TRUE((*devices)->RecordRelease("web", "2").ok());
  auto store = FleetStore::Open(db, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(DesiredReleases(*state).For(state->devices.at("pi-old"), "web").release, 2u);
  std::filesystem::remove_all(dir);
}

// A database at schema version 4 (a group in it) gains group_windows.
class WindowMigrationTest : public testing::EngineTest {};

TEST_P(WindowMigrationTest, FromVersion4) {
  const std::string dir = ::testing::TempDir() + "/windows-v4-" +
                          (GetParam() == SqlEngineKind::kSqlite ? "sqlite" : "postgresql");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string url = dir + "/t.db";
  if (GetParam() == SqlEngineKind::kPostgresql) {
    auto cluster = testing::PostgresCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    auto made = (*cluster)->CreateDatabase("windowsv4");
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    url = *made;
  }
  {
    auto engine = SqlEngine::Open(url);
    ASSERT_TRUE(engine.ok());
    const std::vector<SqlMigration> v4(TrackerMigrations().begin(),
                                       TrackerMigrations().begin() + 4);
    ASSERT_EQ(v4.back().version, 4);
    ASSERT_TRUE(MigrateSchema(**engine, v4).ok());
    ASSERT_TRUE(
        (*engine)
            ->ExecScript("INSERT INTO devices VALUES('dev-1', 'screen-1', 'shop', 'c', "
                         "'p', 1); INSERT INTO fleet_groups VALUES('shop', 'site=shop', 1);")
            .ok());
    ASSERT_EQ((*engine)->SchemaVersion().value(), 4);
  }
  FakeClock clock;
  auto store = FleetStore::Open(url, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(
      (*store)->AddWindow("shop", MakeWindow("daily", "01:00", "02:00", "UTC").value()).ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(DesiredReleases(*state).WindowsOf(state->devices.at("screen-1")).size(), 1u);
  EXPECT_EQ((*SqlEngine::Open(url))->SchemaVersion().value(), TrackerMigrations().back().version);
  std::filesystem::remove_all(dir);
}

FLOTILLA_ON_BOTH_ENGINES(WindowMigrationTest);

// The tracker.db 0.1.0 wrote migrates through version 5: its device, in a
// group by its site, gets that group's window.
TEST(WindowCompatTest, MigratesWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/windows-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  FakeClock clock;
  auto store = FleetStore::Open(db, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->CreateGroup("shop", Selector::Parse("site=shop").value()).ok());
  ASSERT_TRUE(
      (*store)
          ->AddWindow("shop", MakeWindow("mon-fri", "22:00", "06:00", "Europe/Berlin").value())
          .ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  const auto windows = DesiredReleases(*state).WindowsOf(state->devices.at("pi-old"));
  ASSERT_EQ(windows.size(), 1u);
  EXPECT_EQ(WindowText(windows[0]), "mon-fri 22:00-06:00 Europe/Berlin");
  EXPECT_EQ((*SqlEngine::Open(db))->SchemaVersion().value(), TrackerMigrations().back().version);
  auto devices = DeviceDb::Open(db, clock);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  EXPECT_EQ((*devices)->Snapshot(10)->devices.size(), 1u) << "the 0.1.0 device is still there";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
