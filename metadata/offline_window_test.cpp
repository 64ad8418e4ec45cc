// The offline validity window (offline_window.h) as a device applies it: the
// 0.1.0 fixture repository with a root cap and releases carrying windows,
// refreshed by the TUF client (DirectoryRemote) on a FakeClock at each edge.
#include "metadata/offline_window.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/compat_fixture.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

namespace fs = std::filesystem;
using namespace compat010;
using std::chrono::hours;

const std::string kOfflineWindowFixture =
    std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/tuf-0.1.0";
constexpr Duration kDay = hours(24);

TEST(OfflineWindowFormat, RootCapAndReleaseWindowRoundTripAndBadOnesAreRefused) {
  const OfflineWindow window = OfflineWindowOfDays(FixtureTime(), 30);
  EXPECT_EQ(OfflineWindowToJson(window),
            Json::parse(R"({"start":"2026-12-01T08:00:00Z","end":"2026-12-31T08:00:00Z"})"));
  Release release = FixtureRelease(2);
  release.offline_window = window;
  auto parsed = ParseRelease(ReleaseToJson(release));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->offline_window, window);
  for (const char* bad : {R"({"start":"2026-12-01T08:00:00Z"})",
                          R"({"start":"2026-12-31T08:00:00Z","end":"2026-12-01T08:00:00Z"})",
                          R"({"start":"2026-12-01","end":"2026-12-31T08:00:00Z"})", R"([])"}) {
    Json custom = ReleaseToJson(FixtureRelease(2));
    custom["offline_window"] = Json::parse(bad);
    EXPECT_EQ(ParseRelease(custom).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  RootMetadata root;
  root.common.version = 1;
  root.common.expires = FixtureTime();
  root.offline_window_max_days = 90;
  EXPECT_EQ(ToJson(root)["flotilla_offline_window_max_days"], 90);
  EXPECT_TRUE(CheckWindowAllowed(window, root).ok());
  root.offline_window_max_days = 29;
  EXPECT_EQ(CheckWindowAllowed(window, root).message(),
            "an offline window of 30 days is longer than the 29 days root allows "
            "(flotilla_offline_window_max_days)");
  root.offline_window_max_days.reset();
  EXPECT_FALSE(ToJson(root).contains("flotilla_offline_window_max_days"));
  EXPECT_EQ(CheckWindowAllowed(window, root).code(), StatusCode::kFailedPrecondition);
}

class OfflineWindowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flotilla-offline-window-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::copy(kOfflineWindowFixture, dir_, fs::copy_options::recursive);
    auto repo = Repository::Open(dir_ + "/repository", repo_clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void SetCap(uint32_t days) { ASSERT_TRUE(repo_->RotateKeys({}, FixtureRing(), days).ok()); }
  // Publishes release `version` of kiosk with a window [now + from, + days).
  void PublishWithWindow(uint64_t version, std::optional<uint32_t> days, Duration from = {}) {
    Release release = FixtureRelease(version);
    if (days) release.offline_window = OfflineWindowOfDays(repo_clock_.Now() + from, *days);
    ASSERT_TRUE(PublishRelease(*repo_, release, FixtureRing()).ok());
  }

  // A device refresh of the fixture's trusted state from `metadata_dir` at
  // the device clock; `offline`: the tracker is unreachable. The version of
  // kiosk's newest release it may use.
  Result<uint64_t> DeviceRefresh(bool offline, const std::string& metadata_dir = "") {
    DirectoryRemote remote(metadata_dir.empty() ? dir_ + "/repository/metadata" : metadata_dir, "");
    ASSIGN_OR_RETURN(auto client, TufClient::Open(dir_ + "/tuf", remote, device_clock_));
    if (offline) client->AllowOfflineWindow();
    RETURN_IF_ERROR(client->Refresh());
    ASSIGN_OR_RETURN(auto releases, TrustedReleases(*client));
    auto it = releases.find("kiosk");
    if (it == releases.end()) return NotFound("no kiosk release");
    RETURN_IF_ERROR(ApplyOfflineWindow(*client, {&it->second}));
    return it->second.version;
  }
  WallTime Floor() {
    auto text = ReadTextFileBounded(dir_ + "/tuf/time-floor", 64);
    EXPECT_TRUE(text.ok());
    return *ParseTufTime(text->substr(0, text->find('\n')));
  }

  FakeClock repo_clock_{FixtureTime() + hours(2)};
  FakeClock device_clock_{FixtureTime() + hours(3)};
  std::string dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(OfflineWindowTest, WithinTheWindowExpiredMetadataIsUsedOnlyWhileTheTrackerIsUnreachable) {
  SetCap(90);
  PublishWithWindow(2, 30);
  device_clock_.Advance(10 * kDay);  // timestamp (1 day) and snapshot (7 days) expired
  // Tracker reachable: normal expiry, the window is ignored.
  auto online = DeviceRefresh(/*offline=*/false);
  EXPECT_EQ(online.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(online.status().message().find("timestamp metadata expired at"), std::string::npos)
      << online.status().ToString();
  // Tracker unreachable: the window covers now.
  auto offline = DeviceRefresh(/*offline=*/true);
  ASSERT_TRUE(offline.ok()) << offline.status().ToString();
  EXPECT_EQ(*offline, 2u);
}

TEST_F(OfflineWindowTest, AfterTheWindowsEndItIsRefusedNamingTheEnd) {
  SetCap(90);
  PublishWithWindow(2, 30);
  const std::string before = *ReadTextFileBounded(dir_ + "/tuf/time-floor", 64);
  device_clock_.Advance(31 * kDay);
  auto offline = DeviceRefresh(true);
  EXPECT_EQ(offline.status().code(), StatusCode::kFailedPrecondition);
  const std::string end = FormatTufTime(repo_clock_.Now() + 30 * kDay);
  EXPECT_NE(
      offline.status().message().find("release 2 of kiosk may be used offline only until " + end),
      std::string::npos)
      << offline.status().ToString();
  // A refusal leaves the floor where it was.
  EXPECT_EQ(*ReadTextFileBounded(dir_ + "/tuf/time-floor", 64), before);
}

TEST_F(OfflineWindowTest, BeforeTheWindowsStartItIsRefused) {
  SetCap(90);
  PublishWithWindow(2, 20, /*from=*/5 * kDay);
  device_clock_.Advance(2 * kDay);  // timestamp expired, window not begun
  auto offline = DeviceRefresh(true);
  EXPECT_EQ(offline.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(offline.status().message().find("may be used offline only from " +
                                            FormatTufTime(repo_clock_.Now() + 5 * kDay)),
            std::string::npos)
      << offline.status().ToString();
}

TEST_F(OfflineWindowTest, AWindowLongerThanRootsCapOrUnderNoCapIsRefused) {
  // The tracker refuses such a release; root lowers or removes its cap later.
  Release under_no_cap = FixtureRelease(2);
  under_no_cap.offline_window = OfflineWindowOfDays(repo_clock_.Now(), 30);
  EXPECT_EQ(PublishRelease(*repo_, under_no_cap, FixtureRing()).code(),
            StatusCode::kFailedPrecondition);
  SetCap(29);
  EXPECT_EQ(PublishRelease(*repo_, under_no_cap, FixtureRing()).code(),
            StatusCode::kFailedPrecondition);
  SetCap(90);
  PublishWithWindow(2, 30);
  SetCap(0);
  device_clock_.Advance(10 * kDay);
  auto no_cap = DeviceRefresh(true);
  EXPECT_NE(no_cap.status().message().find("root allows no offline window"), std::string::npos)
      << no_cap.status().ToString();
  SetCap(20);
  auto over = DeviceRefresh(true);
  EXPECT_NE(over.status().message().find("30 days is longer than the 20 days root allows"),
            std::string::npos)
      << over.status().ToString();
  // A release without a window is refused offline too.
  PublishWithWindow(3, std::nullopt);
  auto none = DeviceRefresh(true);
  EXPECT_NE(none.status().message().find("release 3 of kiosk has no offline validity window"),
            std::string::npos)
      << none.status().ToString();
}

TEST_F(OfflineWindowTest, AnOlderVersionWithAValidWindowIsRefusedAsARollback) {
  SetCap(90);
  PublishWithWindow(2, 30);
  const std::string old_metadata = dir_ + "/old-metadata";
  fs::copy(dir_ + "/repository/metadata", old_metadata, fs::copy_options::recursive);
  PublishWithWindow(3, 30);
  ASSERT_EQ(*DeviceRefresh(false), 3u);
  device_clock_.Advance(10 * kDay);
  auto older = DeviceRefresh(true, old_metadata);
  EXPECT_EQ(older.status().code(), StatusCode::kCorruption) << older.status().ToString();
  EXPECT_NE(older.status().message().find("rollback"), std::string::npos);
}

TEST_F(OfflineWindowTest, UsingAWindowRaisesTheFloorToItsStartAndNeverPastIt) {
  SetCap(90);
  PublishWithWindow(2, 30);
  const WallTime start = std::chrono::floor<std::chrono::seconds>(repo_clock_.Now());
  device_clock_.Advance(25 * kDay);  // a clock far ahead, still inside the window
  ASSERT_EQ(*DeviceRefresh(true), 2u);
  EXPECT_EQ(Floor(), start);
  // The clock corrected and the tracker back: its fresh metadata is not
  // expired against the floor (a floor at "now + 25 days" would refuse it).
  device_clock_.SetWallTime(FixtureTime() + hours(4));
  auto online = DeviceRefresh(false);
  ASSERT_TRUE(online.ok()) << online.status().ToString();
  EXPECT_EQ(Floor(), FixtureTime() + hours(4));
}

}  // namespace
}  // namespace flotilla::metadata
