#include "tracker/fleet/desired.h"

#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

// Shop 12's window screens run kiosk, releases 5..8 published.
class DesiredTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddDevice("screen-7", "shop-12", {"window"});
    AddDevice("screen-8", "shop-12", {"window"});
    AddDevice("lobby-1", "shop-12", {});
    AddGroup("windows", "site=shop-12,tag=window", {"kiosk"});
    state_.releases["kiosk"] = {5, 6, 7, 8};
  }
  void AddDevice(const std::string& name, const std::string& site, std::set<std::string> tags) {
    state_.devices[name] = FleetDevice{"dev-" + name, name, site, std::move(tags)};
  }
  void AddGroup(const std::string& name, const std::string& selector, std::set<std::string> apps) {
    state_.groups[name] = FleetGroup{name, Selector::Parse(selector).value(), std::move(apps), {}};
  }
  DesiredApp Kiosk(const std::string& device, const RolloutLimit* limit = nullptr) {
    return DesiredReleases(state_, limit).For(state_.devices.at(device), "kiosk");
  }

  FleetState state_;
};

TEST_F(DesiredTest, NewestReleaseByDefault) {
  auto d = Kiosk("screen-7");
  EXPECT_EQ(d.release, 8u);
  EXPECT_EQ(d.reason, "newest release");
  EXPECT_EQ(d.groups, std::vector<std::string>{"windows"});
}

TEST_F(DesiredTest, PinBeatsRecallBeatsNewest) {
  state_.recalls["kiosk"] = {8};
  EXPECT_EQ(Kiosk("screen-7").release, 7u) << "recall of the newest falls back";
  EXPECT_EQ(Kiosk("screen-7").reason, "newest release not recalled");
  state_.recalls["kiosk"] = {7, 8};
  EXPECT_EQ(Kiosk("screen-7").release, 6u) << "to the newest not recalled";
  state_.groups["windows"].pins["kiosk"] = 8;
  EXPECT_EQ(Kiosk("screen-8").release, 8u) << "a group pin holds even a recalled release";
  EXPECT_NE(Kiosk("screen-8").reason.find("pinned by group windows (release recalled"),
            std::string::npos)
      << Kiosk("screen-8").reason;
  state_.device_pins["screen-7"]["kiosk"] = 5;
  EXPECT_EQ(Kiosk("screen-7").release, 5u) << "a device pin beats its group's";
  EXPECT_EQ(Kiosk("screen-7").reason, "pinned on the device");
  EXPECT_EQ(Kiosk("screen-8").release, 8u) << "other devices keep the group pin";
}

TEST_F(DesiredTest, EveryReleaseRecalledOrNonePublishedSendsNothing) {
  state_.recalls["kiosk"] = {5, 6, 7, 8};
  EXPECT_FALSE(Kiosk("screen-7").release.has_value());
  EXPECT_EQ(Kiosk("screen-7").reason, "every published release is recalled");
  state_.releases.erase("kiosk");
  EXPECT_FALSE(Kiosk("screen-7").release.has_value());
  EXPECT_EQ(Kiosk("screen-7").reason, "no release published");
}

TEST_F(DesiredTest, ADeviceInNoGroupRunsNothingFromTheFleet) {
  DesiredReleases desired(state_);
  const FleetDevice& lobby = state_.devices.at("lobby-1");
  EXPECT_TRUE(desired.GroupsOf(lobby).empty());
  EXPECT_TRUE(desired.AppsOf(lobby).empty());
  EXPECT_TRUE(desired.All(lobby).empty());
  state_.device_pins["lobby-1"]["kiosk"] = 6;
  EXPECT_FALSE(Kiosk("lobby-1").release.has_value()) << "a pin alone assigns nothing";
  EXPECT_EQ(Kiosk("lobby-1").reason, "not assigned to any group of the device");
}

TEST_F(DesiredTest, AppsAreTheUnionOfTheDevicesGroups) {
  AddGroup("shop", "site=shop-12", {"clock", "kiosk"});
  AddGroup("other", "site=shop-13", {"ads"});
  state_.releases["clock"] = {1};
  DesiredReleases desired(state_);
  const FleetDevice& screen = state_.devices.at("screen-7");
  EXPECT_EQ(desired.GroupsOf(screen), (std::vector<std::string>{"shop", "windows"}));
  EXPECT_EQ(desired.AppsOf(screen), (std::vector<std::string>{"clock", "kiosk"}));
  auto all = desired.All(screen);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].release, 1u);
  EXPECT_EQ(all[1].groups, (std::vector<std::string>{"shop", "windows"}));
  EXPECT_EQ(desired.GroupsOf(state_.devices.at("lobby-1")), std::vector<std::string>{"shop"});
  EXPECT_EQ(desired.AppsOf(state_.devices.at("lobby-1")),
            (std::vector<std::string>{"clock", "kiosk"}));
}

TEST_F(DesiredTest, ConflictingGroupPinsTakeTheFirstGroupByNameAndSaySo) {
  AddGroup("a-shop", "site=shop-12", {});
  state_.groups["a-shop"].pins["kiosk"] = 6;
  state_.groups["windows"].pins["kiosk"] = 7;
  auto d = Kiosk("screen-7");
  EXPECT_EQ(d.release, 6u);
  EXPECT_EQ(d.reason, "pinned by group a-shop; group windows pins 7 (first group by name wins)");
}

// The rollout seam: a limit caps the newest release, never a pin.
class FixedLimit : public RolloutLimit {
 public:
  std::optional<uint64_t> Ceiling(const FleetDevice& device, std::string_view) const override {
    if (device.name == "screen-7") return 6;
    return std::nullopt;
  }
};

TEST_F(DesiredTest, ARolloutLimitCapsTheNewestRelease) {
  FixedLimit limit;
  EXPECT_EQ(Kiosk("screen-7", &limit).release, 6u);
  EXPECT_EQ(Kiosk("screen-7", &limit).reason, "newest release the rollout has reached");
  EXPECT_EQ(Kiosk("screen-8", &limit).release, 8u);
  state_.recalls["kiosk"] = {5, 6};
  EXPECT_FALSE(Kiosk("screen-7", &limit).release.has_value());
  state_.device_pins["screen-7"]["kiosk"] = 8;
  EXPECT_EQ(Kiosk("screen-7", &limit).release, 8u);
}

TEST_F(DesiredTest, NothingBelowTheFloor) {
  const ReleaseFloors floors = {{"kiosk", 7}};
  auto kiosk = [&](const std::string& device, const RolloutLimit* limit = nullptr) {
    return DesiredReleases(state_, limit, &floors).For(state_.devices.at(device), "kiosk");
  };
  EXPECT_EQ(kiosk("screen-7").release, 8u) << "the newest is above the floor";
  // Recalls that leave nothing at or above the floor send nothing, never 6.
  state_.recalls["kiosk"] = {7, 8};
  EXPECT_FALSE(kiosk("screen-7").release.has_value());
  EXPECT_EQ(kiosk("screen-7").reason,
            "every published release at or above the floor 7 is recalled");
  state_.recalls["kiosk"] = {8};
  EXPECT_EQ(kiosk("screen-7").release, 7u);

  // A pin below the floor: the lowest release at or above it (not recalled).
  state_.recalls["kiosk"] = {7};
  state_.device_pins["screen-7"]["kiosk"] = 5;
  EXPECT_EQ(kiosk("screen-7").release, 8u);
  EXPECT_EQ(kiosk("screen-7").reason,
            "pinned on the device to 5, below the floor 7: the lowest release at or above it");
  state_.recalls["kiosk"].clear();
  EXPECT_EQ(kiosk("screen-7").release, 7u);
  state_.groups["windows"].pins["kiosk"] = 6;
  EXPECT_EQ(kiosk("screen-8").release, 7u);
  EXPECT_NE(kiosk("screen-8").reason.find("pinned by group windows to 6, below the floor 7"),
            std::string::npos)
      << kiosk("screen-8").reason;
  // A pin at or above the floor holds as ever.
  state_.device_pins["screen-7"]["kiosk"] = 7;
  EXPECT_EQ(kiosk("screen-7").reason, "pinned on the device");
  // Without floors (the default), the pin below holds.
  state_.device_pins["screen-7"]["kiosk"] = 5;
  EXPECT_EQ(Kiosk("screen-7").release, 5u);

  // A rollout holding a device at 6 below the floor 7: the floor wins.
  state_.device_pins.clear();
  state_.groups["windows"].pins.clear();
  FixedLimit limit;
  EXPECT_EQ(kiosk("screen-7", &limit).release, 7u);
  EXPECT_EQ(kiosk("screen-7", &limit).reason,
            "the rollout holds it at 6, below the floor 7: the lowest release at or above it");

  // What signs documents checks once more.
  std::vector<DesiredApp> below = {DesiredApp{"kiosk", 6, "", {}}};
  EXPECT_EQ(CheckAboveFloors(below, floors).code(), StatusCode::kFailedPrecondition);
  below[0].release = 7;
  EXPECT_TRUE(CheckAboveFloors(below, floors).ok());
  EXPECT_TRUE(CheckAboveFloors({DesiredApp{"clock", 1, "", {}}}, floors).ok());
}

}  // namespace
}  // namespace flotilla::tracker
