// The dashboard rendered from a real SQLite tracker database: devices
// enrolled and reports recorded by DeviceDb, the fleet model and a rollout
// by FleetStore and RolloutStore, read back by FleetView as `serve` does.
#include "tracker/service/dashboard.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/clock.h"
#include "tracker/api/maintenance_window.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/fleet_view.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The element of `html` that starts with `open` (through the next `close`).
std::string Element(const std::string& html, const std::string& open, const std::string& close) {
  const size_t start = html.find(open);
  if (start == std::string::npos) return "";
  const size_t end = html.find(close, start);
  return html.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Ten screens on two sites run kiosk (releases 5, 6, 7); a rollout of 7 in
// waves of 10%, 50%, 100% with no failure allowed.
class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "/dashboard-" + name;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    url_ = dir_ + "/tracker.db";
    auto devices = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(devices.ok()) << devices.status().ToString();
    devices_ = std::move(*devices);
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(
          devices_->Enroll("screen-" + std::to_string(i), "shop-" + std::to_string(i % 2)).ok());
    }
    for (const char* release : {"5", "6", "7"}) {
      ASSERT_TRUE(devices_->RecordRelease("kiosk", release).ok());
    }
    auto fleet = FleetStore::Open(url_, clock_);
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet_ = std::move(*fleet);
    ASSERT_TRUE(fleet_->CreateGroup("all", Selector::Parse("all").value()).ok());
    ASSERT_TRUE(fleet_->AssignApp("kiosk", "all").ok());
    auto rollouts = RolloutStore::Open(url_, clock_);
    ASSERT_TRUE(rollouts.ok()) << rollouts.status().ToString();
    rollouts_ = std::move(*rollouts);
    auto started = rollouts_->Start(RolloutSpec{"kiosk", 7, "", {1000, 5000, 10000}, 0, 0, 3600},
                                    fleet_->Load().value());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    for (const RolloutMember& m : started->members) wave_of_[m.name] = m.wave;
    auto view = FleetView::Open(url_, clock_);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    view_ = std::move(*view);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The devices of wave `wave` (0-based), by name.
  std::vector<std::string> Wave(size_t wave) {
    std::vector<std::string> names;
    for (const auto& [name, w] : wave_of_) {
      if (w == wave) names.push_back(name);
    }
    return names;
  }
  void Report(const std::string& name, const std::string& state, const std::string& release) {
    const std::string id = fleet_->Load().value().devices.at(name).device_id;
    DeviceReport r{.app = "kiosk",
                   .release = release,
                   .state = state,
                   .health = state == "running" ? "healthy" : "unknown"};
    ASSERT_TRUE(devices_->RecordReport(id, r).ok());
  }
  FleetSnapshot Snapshot(uint64_t page = 1, size_t max_rollouts = kDashboardRollouts,
                         size_t max_failed = kDashboardFailedPerRollout) {
    auto snapshot =
        devices_->Snapshot(50, {(page - 1) * kDashboardDevicesPerPage, kDashboardDevicesPerPage});
    EXPECT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    Status st = view_->Fill(*snapshot, max_rollouts, max_failed);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return *snapshot;
  }
  std::string Render(const FleetSnapshot& snapshot) {
    DashboardContext context;
    context.now_unix = UnixSeconds(clock_);
    return RenderDashboard(snapshot, context);
  }

  std::string dir_;
  std::string url_;
  FakeClock clock_;
  std::unique_ptr<DeviceDb> devices_;
  std::unique_ptr<FleetStore> fleet_;
  std::unique_ptr<RolloutStore> rollouts_;
  std::unique_ptr<FleetView> view_;
  std::map<std::string, size_t> wave_of_;
};

TEST_F(DashboardTest, HaltedRolloutShowsWavesCountsAndItsEscapedReason) {
  ASSERT_EQ(Wave(0).size(), 1u);
  const std::string first = Wave(0).front();
  clock_.Advance(std::chrono::seconds(5));
  // What the device reports reaches the halt reason: it must stay text.
  Report(first, "rolled_back", "<script>alert(1)</script>");
  clock_.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(rollouts_->Evaluate(fleet_->Load().value()).ok());

  const std::string html = Render(Snapshot());
  EXPECT_EQ(html.find("<script"), std::string::npos) << html;
  const std::string rollout = Element(html, "<div class=\"rollout\" id=\"rollout-1\"", "</div>");
  ASSERT_FALSE(rollout.empty()) << html;
  EXPECT_NE(rollout.find("kiosk release 7 over the fleet"), std::string::npos) << rollout;
  EXPECT_NE(rollout.find("<span class=\"state state-halted\">halted</span> wave 1 of 3"),
            std::string::npos)
      << rollout;
  // The halt reason in full: it names the device and what it reported, escaped.
  const std::string reason = Element(rollout, "<p class=\"reason\">", "</p>");
  EXPECT_NE(reason.find("halted: "), std::string::npos) << reason;
  EXPECT_NE(reason.find(first), std::string::npos) << reason;
  EXPECT_NE(reason.find("switch rolled back (runs release &lt;script&gt;alert(1)&lt;/script&gt;)"),
            std::string::npos)
      << reason;
  // Waves: sizes 1, 4, 5 (ceil of 10%, 50%, 100% of 10); the first failed.
  const std::string wave1 = Element(rollout, "<tr data-wave=\"1\">", "</tr>");
  EXPECT_NE(wave1.find("1 (current)</td><td class=\"num\">10%</td><td class=\"num\">1</td>"),
            std::string::npos)
      << wave1;
  EXPECT_NE(wave1.find("class=\"s-failed\" style=\"width:100.0%\""), std::string::npos) << wave1;
  EXPECT_NE(wave1.find("<td class=\"num failed\">1</td><td class=\"num pending\">0</td>"),
            std::string::npos)
      << wave1;
  EXPECT_NE(wave1.find("started"), std::string::npos) << wave1;
  const std::string wave2 = Element(rollout, "<tr data-wave=\"2\">", "</tr>");
  EXPECT_NE(wave2.find("<td class=\"num\">50%</td><td class=\"num\">4</td>"), std::string::npos)
      << wave2;
  EXPECT_NE(wave2.find("<td class=\"num failed\">0</td><td class=\"num pending\">4</td>"),
            std::string::npos)
      << wave2;
  EXPECT_NE(wave2.find("waiting"), std::string::npos) << wave2;
  const std::string wave3 = Element(rollout, "<tr data-wave=\"3\">", "</tr>");
  EXPECT_NE(wave3.find("<td class=\"num\">100%</td><td class=\"num\">5</td>"), std::string::npos)
      << wave3;
  // The failed device, listed with its failure.
  EXPECT_NE(html.find("<li data-device=\"" + first + "\"><b>" + first +
                      "</b> (wave 1): switch rolled back (runs release "
                      "&lt;script&gt;alert(1)&lt;/script&gt;)</li>"),
            std::string::npos)
      << html;
}

TEST_F(DashboardTest, DesiredBesideActualForAPinnedDeviceAndOneInAWaitingWave) {
  const std::vector<std::string> waiting = Wave(2);
  ASSERT_EQ(waiting.size(), 5u);
  const std::string pinned = waiting[0], held = waiting[1], first = Wave(0).front();
  ASSERT_TRUE(fleet_->Pin({PinTarget::Kind::kDevice, pinned}, "kiosk", 5).ok());
  // A second app, of which no device sent a report yet.
  ASSERT_TRUE(devices_->RecordRelease("menu", "1").ok());
  ASSERT_TRUE(fleet_->AssignApp("menu", "all").ok());
  clock_.Advance(std::chrono::seconds(5));
  Report(pinned, "running", "6");  // not yet back on its pin
  Report(held, "running", "6");    // what its wave may run
  const std::string html = Render(Snapshot());
  const std::string devices = Element(html, "<table id=\"devices\">", "</table>");

  const std::string pinned_row = Element(devices, "<tr data-device=\"" + pinned + "\">", "</tr>");
  ASSERT_FALSE(pinned_row.empty()) << devices;
  EXPECT_NE(pinned_row.find("<td>kiosk</td><td>6</td>"), std::string::npos) << pinned_row;
  EXPECT_NE(pinned_row.find("<div class=\"desired-app differs\" data-app=\"kiosk\">kiosk <b>5</b> "
                            "<span class=\"mark\" title=\"differs\">&#8800; runs 6</span>"),
            std::string::npos)
      << pinned_row;
  EXPECT_NE(pinned_row.find("pinned on the device; rollout 1 (running): wave 3 of 3, waiting"),
            std::string::npos)
      << pinned_row;

  const std::string held_row = Element(devices, "<tr data-device=\"" + held + "\">", "</tr>");
  EXPECT_NE(held_row.find("<div class=\"desired-app\" data-app=\"kiosk\">kiosk <b>6</b> "
                          "<span class=\"muted why\">newest release the rollout has reached; "
                          "rollout 1 (running): wave 3 of 3, waiting</span>"),
            std::string::npos)
      << held_row;
  EXPECT_NE(held_row.find("<div class=\"desired-app differs\" data-app=\"menu\">menu <b>1</b> "
                          "<span class=\"mark\" title=\"differs\">&#8800; no report of it</span> "
                          "<span class=\"muted why\">newest release</span>"),
            std::string::npos)
      << held_row;

  // The first wave's device has not reported: it is sent 7, which it does not run yet.
  const std::string first_row = Element(devices, "<tr data-device=\"" + first + "\">", "</tr>");
  EXPECT_NE(first_row.find("kiosk <b>7</b> <span class=\"mark\" title=\"differs\">&#8800; not "
                           "reported</span> <span class=\"muted why\">newest release the rollout "
                           "has reached; rollout 1 (running): wave 1 of 3, started</span>"),
            std::string::npos)
      << first_row;

  // The JSON twin (GET /api/v1/fleet) carries the same and reads back the same.
  const FleetSnapshot snapshot = Snapshot();
  const std::string text = FleetToJson(snapshot).dump();
  auto back = ParseFleet(text, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(FleetToJson(*back).dump(), text);
  ASSERT_EQ(back->rollouts.size(), 1u);
  EXPECT_EQ(back->rollouts[0].waves[2].size, 5u);
  for (const DeviceRow& d : back->devices) {
    if (d.identity.name != pinned) continue;
    ASSERT_EQ(d.desired.size(), 2u);
    EXPECT_EQ(d.desired[0].app, "kiosk");
    EXPECT_EQ(d.desired[0].release, 5u);
    EXPECT_EQ(d.desired[1].app, "menu");
  }
}

TEST_F(DashboardTest, GroupsShowWhatTheySelectTheirDevicesAppsPinsAndWindows) {
  ASSERT_TRUE(fleet_->CreateGroup("shop-1-screens", Selector::Parse("site=shop-1").value()).ok());
  ASSERT_TRUE(fleet_->AssignApp("clock", "shop-1-screens").ok());
  ASSERT_TRUE(fleet_->Pin(PinTarget{PinTarget::Kind::kGroup, "shop-1-screens"}, "kiosk", 6).ok());
  ASSERT_TRUE(
      fleet_->AddWindow("shop-1-screens", MakeWindow("mon-fri", "22:00", "06:00", "UTC").value())
          .ok());
  // A failed switch: the kind of failure beside the device's state.
  const std::string failed = Wave(0).front();
  const std::string id = fleet_->Load().value().devices.at(failed).device_id;
  ASSERT_TRUE(devices_
                  ->RecordReport(id, DeviceReport{.app = "kiosk",
                                                  .release = "6",
                                                  .state = "rolled_back",
                                                  .health = "healthy",
                                                  .failure = "health"})
                  .ok());

  const FleetSnapshot snapshot = Snapshot();
  ASSERT_EQ(snapshot.groups.size(), 2u);
  EXPECT_EQ(snapshot.groups[0].name, "all");
  EXPECT_EQ(snapshot.groups[0].devices, 10u);
  EXPECT_EQ(snapshot.groups[1].name, "shop-1-screens");
  EXPECT_EQ(snapshot.groups[1].selector, "site=shop-1");
  EXPECT_EQ(snapshot.groups[1].devices, 5u);
  EXPECT_EQ(snapshot.groups[1].apps, std::vector<std::string>{"clock"});
  EXPECT_EQ(snapshot.groups[1].pins.at("kiosk"), 6u);
  EXPECT_EQ(snapshot.groups[1].windows, std::vector<std::string>{"mon-fri 22:00-06:00 UTC"});
  // The API's JSON form carries them to the client library.
  auto parsed = ParseFleet(FleetToJson(snapshot).dump(), 1 << 20);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->groups.size(), 2u);
  EXPECT_EQ(parsed->groups[1].pins, snapshot.groups[1].pins);
  EXPECT_EQ(parsed->groups[1].windows, snapshot.groups[1].windows);
  EXPECT_EQ(parsed->groups[1].devices, 5u);

  const std::string html = Render(snapshot);
  const std::string row = Element(html, "<tr data-group=\"shop-1-screens\">", "</tr>");
  ASSERT_FALSE(row.empty()) << html;
  EXPECT_NE(row.find("<code>site=shop-1</code></td><td class=\"num\">5</td><td>clock</td>"
                     "<td>kiosk at release 6</td><td>mon-fri 22:00-06:00 UTC</td>"),
            std::string::npos)
      << row;
  EXPECT_NE(Element(html, "<tr data-group=\"all\">", "</tr>").find("any time"), std::string::npos);
  const std::string device = Element(html, "<tr data-device=\"" + failed + "\">", "</tr>");
  EXPECT_NE(device.find("rolled_back</span> <span class=\"failure\">health</span>"),
            std::string::npos)
      << device;
}

TEST_F(DashboardTest, PagesOfDevicesAndCappedRolloutsKeepThePageBounded) {
  for (int i = 0; i < 95; ++i)
    ASSERT_TRUE(devices_->Enroll("z-" + std::to_string(100 + i), "").ok());
  ASSERT_TRUE(rollouts_->Abort(1).ok());
  auto second =
      rollouts_->Start(RolloutSpec{"kiosk", 6, "", {10000}, 0, 0, 3600}, fleet_->Load().value());
  ASSERT_TRUE(second.ok()) << second.status().ToString();

  const std::string page1 = Render(Snapshot(1, 1));
  EXPECT_EQ(Count(Element(page1, "<table id=\"devices\">", "</table>"), "<tr data-device="),
            kDashboardDevicesPerPage);
  EXPECT_NE(page1.find("<b>105</b>devices"), std::string::npos) << page1;
  EXPECT_NE(page1.find("devices 1-100 of 105 (page 1 of 2, 100 a page) "
                       "<a rel=\"next\" href=\"/?page=2\">next</a>"),
            std::string::npos)
      << page1;
  // Only the newest rollout, and how many there are.
  EXPECT_NE(page1.find("id=\"rollout-2\""), std::string::npos);
  EXPECT_EQ(page1.find("id=\"rollout-1\""), std::string::npos);
  EXPECT_NE(page1.find("the 1 newest of 2 rollouts"), std::string::npos) << page1;

  const std::string page2 = Render(Snapshot(2));
  EXPECT_EQ(Count(Element(page2, "<table id=\"devices\">", "</table>"), "<tr data-device="), 5u);
  EXPECT_NE(page2.find("devices 101-105 of 105 (page 2 of 2, 100 a page) "
                       "<a rel=\"prev\" href=\"/?page=1\">previous</a>"),
            std::string::npos)
      << page2;
  EXPECT_NE(page2.find("id=\"rollout-1\""), std::string::npos);
  EXPECT_NE(page2.find("aborted by the operator"), std::string::npos);
}

// serve reads the model on a thread of its own (FleetViewRefresher::Refresh
// from a schedule): a page request only takes the latest, and the model is
// read again only when a page asked since the last read.
TEST_F(DashboardTest, ServeReadsTheModelApartFromRequestsAndOnlyWhileAsked) {
  FleetViewRefresher refresher(url_, clock_, kDashboardRollouts, kDashboardFailedPerRollout);
  auto page = [&] {
    auto snapshot = devices_->Snapshot(50, {0, kDashboardDevicesPerPage});
    EXPECT_TRUE(snapshot.ok());
    EXPECT_TRUE(refresher.Fill(*snapshot, kDashboardRollouts, kDashboardFailedPerRollout).ok());
    return *snapshot;
  };
  const FleetSnapshot before = page();
  EXPECT_EQ(before.fleet_model_at, 0);
  EXPECT_TRUE(before.rollouts.empty());
  EXPECT_TRUE(before.devices.front().desired.empty());
  EXPECT_NE(Render(before).find("rollouts and desired releases are being read"), std::string::npos);

  auto wait = refresher.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok()) << wait.status().ToString();
  EXPECT_GE(*wait, FleetViewRefresher::kMinInterval);
  FleetSnapshot read = page();
  EXPECT_EQ(read.fleet_model_at, UnixSeconds(clock_));
  ASSERT_EQ(read.rollouts.size(), 1u);
  EXPECT_EQ(read.rollouts[0].state, "running");
  EXPECT_EQ(read.devices.front().desired.size(), 1u);

  // A change shows once the model is read again, which the page asked for.
  ASSERT_TRUE(rollouts_->Pause(1).ok());
  EXPECT_EQ(page().rollouts[0].state, "running");
  ASSERT_TRUE(refresher.Refresh(clock_.Now()).ok());
  // No page asked since that read: the next Refresh reads nothing.
  ASSERT_TRUE(rollouts_->Resume(1).ok());
  EXPECT_EQ(refresher.Refresh(clock_.Now()).value(), FleetViewRefresher::kIdlePoll);
  EXPECT_EQ(page().rollouts[0].state, "paused");
  ASSERT_TRUE(refresher.Refresh(clock_.Now()).ok());
  EXPECT_EQ(page().rollouts[0].state, "running");
}

}  // namespace
}  // namespace flotilla::tracker
