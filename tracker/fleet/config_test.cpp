// Per-device configuration: the precedence of the levels on an in-memory
// FleetState, and the values' table on both engines and on the 0.1.0
// database (docs/config.md).
#include "tracker/fleet/config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/engine_test.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

FleetDevice Device(const std::string& name, const std::string& site,
                   std::set<std::string> tags = {}) {
  return FleetDevice{"id-" + name, name, site, std::move(tags)};
}

FleetGroup Group(const std::string& name, const std::string& selector) {
  return FleetGroup{name, Selector::Parse(selector).value(), {"kiosk"}, {}, {}};
}

class ConfigPrecedenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto device : {Device("screen-7", "shop-12", {"window"}), Device("screen-8", "shop-12"),
                        Device("lobby-1", "shop-13", {"window"})}) {
      state_.devices[device.name] = device;
    }
    state_.groups["windows"] = Group("windows", "tag=window");
    state_.groups["a-shop12-windows"] = Group("a-shop12-windows", "site=shop-12,tag=window");
  }
  void Set(const std::string& app, ConfigLevel level, const std::string& scope,
           const std::string& name, const std::string& value) {
    state_.config.push_back(ConfigEntry{app, level, scope, name, value});
  }
  // name=value@level:scope of `app` on `device`, by name.
  std::string Effective(const std::string& device, const std::string& app = "kiosk",
                        const std::function<bool(const std::string&)>& accepts = nullptr) {
    std::string out;
    for (const auto& v : EffectiveConfig(state_, state_.devices.at(device), app, accepts)) {
      out += (out.empty() ? "" : " ") + v.name + "=" + v.value + "@" +
             std::string(ConfigLevelName(v.level)) + (v.scope.empty() ? "" : ":" + v.scope);
      for (const auto& other : v.shadowed) out += "(over " + other + ")";
    }
    return out;
  }
  FleetState state_;
};

TEST_F(ConfigPrecedenceTest, DeviceBeatsGroupBeatsSiteBeatsAppBeatsFleet) {
  Set("", ConfigLevel::kFleet, "", "URL", "fleet");
  EXPECT_EQ(Effective("screen-8"), "URL=fleet@fleet");
  Set("kiosk", ConfigLevel::kApp, "", "URL", "app");
  EXPECT_EQ(Effective("screen-8"), "URL=app@app");
  Set("kiosk", ConfigLevel::kSite, "shop-12", "URL", "site");
  EXPECT_EQ(Effective("screen-8"), "URL=site@site:shop-12");
  EXPECT_EQ(Effective("lobby-1"), "URL=app@app") << "another site";
  Set("kiosk", ConfigLevel::kGroup, "windows", "URL", "group");
  EXPECT_EQ(Effective("screen-7"), "URL=group@group:windows");
  EXPECT_EQ(Effective("screen-8"), "URL=site@site:shop-12") << "in no group";
  Set("kiosk", ConfigLevel::kDevice, "id-screen-7", "URL", "device");
  EXPECT_EQ(Effective("screen-7"), "URL=device@device:id-screen-7");
  EXPECT_EQ(Effective("lobby-1"), "URL=group@group:windows");
  // The order values were stored in does not matter.
  std::reverse(state_.config.begin(), state_.config.end());
  EXPECT_EQ(Effective("screen-7"), "URL=device@device:id-screen-7");
  EXPECT_EQ(Effective("screen-8"), "URL=site@site:shop-12");
  // Values of another app never apply.
  EXPECT_EQ(Effective("screen-7", "clock"), "URL=fleet@fleet");
}

TEST_F(ConfigPrecedenceTest, TheFirstGroupByNameWinsAndTheOthersAreNamed) {
  Set("kiosk", ConfigLevel::kGroup, "windows", "MODE", "w");
  Set("kiosk", ConfigLevel::kGroup, "a-shop12-windows", "MODE", "a");
  Set("kiosk", ConfigLevel::kSite, "shop-12", "STORE", "12");
  EXPECT_EQ(Effective("screen-7"),
            "MODE=a@group:a-shop12-windows(over windows) STORE=12@site:shop-12");
  EXPECT_EQ(Effective("lobby-1"), "MODE=w@group:windows");
}

TEST_F(ConfigPrecedenceTest, FleetValuesOnlyForAppsThatDeclareThem) {
  Set("", ConfigLevel::kFleet, "", "TZ", "Europe/Paris");
  Set("", ConfigLevel::kFleet, "", "LANG", "fr");
  auto declares_tz = [](const std::string& name) { return name == "TZ"; };
  EXPECT_EQ(Effective("screen-7", "kiosk", declares_tz), "TZ=Europe/Paris@fleet");
  // A value at the app level is not filtered: the spec check refuses it.
  Set("kiosk", ConfigLevel::kApp, "", "LANG", "de");
  EXPECT_EQ(Effective("screen-7", "kiosk", declares_tz), "LANG=de@app TZ=Europe/Paris@fleet");
}

class ConfigStoreTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("configstore"));
    auto devices = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(devices.ok()) << devices.status().ToString();
    ASSERT_TRUE((*devices)->Enroll("screen-7", "shop-12").ok());
    auto store = FleetStore::Open(url_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->CreateGroup("windows", Selector::Parse("all").value()).ok());
  }
  std::vector<ConfigEntry> Stored() {
    auto state = store_->Load();
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? state->config : std::vector<ConfigEntry>{};
  }

  FakeClock clock_;
  std::unique_ptr<FleetStore> store_;
};

TEST_P(ConfigStoreTest, ChangesAtEachLevelRoundTripAndBadOnesChangeNothing) {
  ASSERT_TRUE(store_->CommitConfigChange({"", ConfigLevel::kFleet, "", {{"TZ", "UTC"}}, {}}).ok());
  ASSERT_TRUE(store_
                  ->CommitConfigChange(
                      {"kiosk", ConfigLevel::kDevice, "screen-7", {{"URL", "https://a"}}, {}})
                  .ok());
  ASSERT_TRUE(
      store_->CommitConfigChange({"kiosk", ConfigLevel::kGroup, "windows", {{"MODE", "x"}}, {}})
          .ok());
  ASSERT_TRUE(
      store_->CommitConfigChange({"kiosk", ConfigLevel::kSite, "shop-12", {{"STORE", "12"}}, {}})
          .ok());
  // Set again: replaced, not added.
  ASSERT_TRUE(store_
                  ->CommitConfigChange(
                      {"kiosk", ConfigLevel::kDevice, "screen-7", {{"URL", "https://b"}}, {}})
                  .ok());
  std::vector<ConfigEntry> stored = Stored();
  ASSERT_EQ(stored.size(), 4u);
  auto device = std::find_if(stored.begin(), stored.end(),
                             [](const ConfigEntry& e) { return e.level == ConfigLevel::kDevice; });
  ASSERT_NE(device, stored.end());
  EXPECT_EQ(device->scope.substr(0, 4), "dev-") << "the device's id, not its name";
  EXPECT_EQ(device->value, "https://b");

  const std::pair<ConfigChange, const char*> refused[] = {
      {{"kiosk", ConfigLevel::kDevice, "screen-9", {{"URL", "x"}}, {}}, "no device named"},
      {{"kiosk", ConfigLevel::kGroup, "nope", {{"URL", "x"}}, {}}, "no group named"},
      {{"kiosk", ConfigLevel::kSite, "bad site", {{"URL", "x"}}, {}}, "site"},
      {{"kiosk", ConfigLevel::kApp, "", {{"LD_PRELOAD", "x"}}, {}}, "reserved"},
      {{"kiosk", ConfigLevel::kApp, "", {{"A", std::string(4097, 'x')}}, {}}, "at most 4096"},
      {{"kiosk", ConfigLevel::kApp, "", {{"A", "1"}}, {"NOT_SET"}}, "NOT_SET is not set"},
      {{"kiosk", ConfigLevel::kApp, "", {}, {}}, "no NAME=VALUE"},
  };
  for (const auto& [change, why] : refused) {
    Status status = store_->CommitConfigChange(change);
    ASSERT_FALSE(status.ok()) << why;
    EXPECT_NE(status.message().find(why), std::string::npos) << status.ToString();
  }
  EXPECT_EQ(Stored().size(), 4u) << "a refused change writes nothing (A=1 with the bad unset)";
  ASSERT_TRUE(
      store_->CommitConfigChange({"kiosk", ConfigLevel::kDevice, "screen-7", {}, {"URL"}}).ok());
  EXPECT_EQ(Stored().size(), 3u);
}

FLOTILLA_ON_BOTH_ENGINES(ConfigStoreTest);

// The tracker.db 0.1.0 wrote migrates to the config table; its device gets
// a value by its site and by its id.
TEST(ConfigCompatTest, MigratesWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/config-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  FakeClock clock;
  auto store = FleetStore::Open(db, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(
      (*store)->CommitConfigChange({"web", ConfigLevel::kSite, "shop", {{"STORE", "1"}}, {}}).ok());
  ASSERT_TRUE((*store)
                  ->CommitConfigChange({"web", ConfigLevel::kDevice, "pi-old", {{"URL", "u"}}, {}})
                  .ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  std::string got;
  for (const auto& v : EffectiveConfig(*state, state->devices.at("pi-old"), "web")) {
    got += v.name + "=" + v.value + "@" + v.scope + " ";
  }
  EXPECT_EQ(got, "STORE=1@shop URL=u@dev-0123456789abcdef ");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
