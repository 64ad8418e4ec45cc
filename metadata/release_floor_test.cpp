// The release floor (release_floor.h) on the 0.1.0 fixture repository: set
// through the top-level targets (online key) and through an app role (the
// app key), read back as a device reads it (TufClient over DirectoryRemote),
// only ever raised.
#include "metadata/release_floor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "metadata/compat_fixture.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"

namespace flotilla::metadata {
namespace {

namespace fs = std::filesystem;
using namespace compat010;

const std::string kTuf010Fixture =
    std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/tuf-0.1.0";
const Duration kYear = std::chrono::hours(24 * 365);

TEST(ReleaseFloorParse, ReadsItsFormatAndRefusesWhatIsWrong) {
  auto floor = ParseFloor(FloorToJson({"kiosk", 3}));
  ASSERT_TRUE(floor.ok()) << floor.status().ToString();
  EXPECT_EQ(floor->app, "kiosk");
  EXPECT_EQ(floor->floor, 3u);
  EXPECT_EQ(FloorTargetName("kiosk"), "apps/kiosk/floor.json");
  EXPECT_EQ(*FloorFileBytes({"kiosk", 3}), R"({"app":"kiosk","floor":3,"format":1})");
  // A newer writer's member within the format is ignored; a newer format is not.
  Json extra = FloorToJson({"kiosk", 3});
  extra["floor"]["note"] = "x";
  EXPECT_TRUE(ParseFloor(extra).ok());
  Json newer = FloorToJson({"kiosk", 3});
  newer["floor"]["format"] = uint64_t{2};
  EXPECT_EQ(ParseFloor(newer).status().code(), StatusCode::kFailedPrecondition)
      << ParseFloor(newer).status().ToString();
  for (const char* bad :
       {R"({})", R"({"floor":{"app":"kiosk"}})", R"({"floor":{"app":"kiosk","floor":0}})",
        R"({"floor":{"app":"kiosk","floor":-1}})", R"({"floor":{"app":"../x","floor":2}})",
        R"({"floor":{"app":"kiosk","floor":"2"}})", R"({"floor":[]})"}) {
    EXPECT_FALSE(ParseFloor(Json::parse(bad)).ok()) << bad;
  }
  // A floor target whose name is another app's.
  TargetsMetadata targets;
  targets.targets["apps/clock/floor.json"].custom = FloorToJson({"kiosk", 3});
  EXPECT_EQ(FloorsOf(targets).status().code(), StatusCode::kCorruption);
}

class ReleaseFloorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flotilla-release-floor-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::copy(kTuf010Fixture, dir_, fs::copy_options::recursive);
    auto repo = Repository::Open(dir_ + "/repository", clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
    for (uint64_t v : {2, 3})
      ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(v), FixtureRing()).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The device's view: a refresh of the fixture's trusted state.
  Result<uint64_t> DeviceFloor() {
    DirectoryRemote remote(dir_ + "/repository/metadata", dir_ + "/repository/targets");
    ASSIGN_OR_RETURN(auto client, TufClient::Open(dir_ + "/tuf", remote, clock_));
    RETURN_IF_ERROR(client->Refresh());
    return TrustedFloor(*client, "kiosk");
  }
  Status SignAndAccept(const std::string& role, SignedDocument doc, const TufSigner& signer) {
    RETURN_IF_ERROR(AddSignature(doc, signer));
    return repo_->AcceptTargets(role, SerializeDocument(doc), FixtureRing());
  }

  FakeClock clock_{FixtureTime() + std::chrono::hours(2)};
  std::string dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(ReleaseFloorTest, TheTopLevelTargetsKeyRaisesItAndNothingLowersIt) {
  EXPECT_EQ(*DeviceFloor(), 0u);
  EXPECT_EQ(FloorRoleOf(*repo_, "kiosk"), "targets");
  ASSERT_TRUE(PublishFloor(*repo_, {"kiosk", 2}, FixtureRing()).ok());
  EXPECT_EQ(SignedFloors(*repo_)->at("kiosk"), 2u);
  EXPECT_EQ(*DeviceFloor(), 2u);
  // Not lowered, not set again, not to a release never signed.
  EXPECT_EQ(PublishFloor(*repo_, {"kiosk", 1}, FixtureRing()).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(PublishFloor(*repo_, {"kiosk", 2}, FixtureRing()).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(PublishFloor(*repo_, {"kiosk", 9}, FixtureRing()).code(), StatusCode::kNotFound);
  // A new release keeps the floor (the targets' other entries stay).
  ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(4), FixtureRing()).ok());
  EXPECT_EQ(*DeviceFloor(), 2u);
  // A top-level version that lowers or drops it is refused as accept checks it.
  TargetsMetadata lowered = repo_->targets();
  lowered.targets[FloorTargetName("kiosk")].custom = FloorToJson({"kiosk", 1});
  EXPECT_EQ(CheckFloorsMonotonic(&repo_->targets(), lowered).code(), StatusCode::kPermissionDenied);
  TargetsMetadata dropped = repo_->targets();
  dropped.targets.erase(FloorTargetName("kiosk"));
  EXPECT_EQ(CheckFloorsMonotonic(&repo_->targets(), dropped).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(PublishFloor(*repo_, {"kiosk", 3}, FixtureRing()).ok());
  EXPECT_EQ(*DeviceFloor(), 3u);
}

TEST_F(ReleaseFloorTest, AnAppKeyRaisesItInItsRoleAndOnlyForItsApp) {
  ASSERT_TRUE(PublishFloor(*repo_, {"kiosk", 2}, FixtureRing()).ok());
  auto app_key = TufSigner::FromEd25519(Ed25519PrivateKey::Generate());
  auto delegation = StageAppDelegation(*repo_, "kiosk", {app_key.key()}, 1, kYear);
  ASSERT_TRUE(delegation.ok()) << delegation.status().ToString();
  ASSERT_TRUE(
      SignAndAccept("targets", *delegation, TufSigner::FromEd25519(FixtureKey(RoleType::kTargets)))
          .ok());
  auto release = StageRelease(*repo_, FixtureRelease(5), kYear);
  ASSERT_TRUE(release.ok()) << release.status().ToString();
  ASSERT_TRUE(SignAndAccept("apps/kiosk", *release, app_key).ok());
  EXPECT_EQ(FloorRoleOf(*repo_, "kiosk"), "apps/kiosk");

  auto staged = StageFloor(*repo_, {"kiosk", 5}, kYear);
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  auto next = ParseTargets(staged->signed_json);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->targets.contains(ReleaseTargetName("kiosk", 5))) << "releases kept";
  EXPECT_TRUE(CheckAppRole("kiosk", repo_->DelegatedTargets("apps/kiosk"), *next).ok());
  // Signed by the online keys only: refused.
  EXPECT_FALSE(repo_->AcceptTargets("apps/kiosk", SerializeDocument(*staged), FixtureRing()).ok());
  EXPECT_EQ(*DeviceFloor(), 2u);
  ASSERT_TRUE(SignAndAccept("apps/kiosk", *staged, app_key).ok());
  // The higher of the top-level's (2) and the role's (5).
  EXPECT_EQ(SignedFloors(*repo_)->at("kiosk"), 5u);
  EXPECT_EQ(*DeviceFloor(), 5u);
  EXPECT_EQ(StageFloor(*repo_, {"kiosk", 3}, kYear).status().code(),
            StatusCode::kFailedPrecondition);

  // The app role's next version may not lower or drop it.
  TargetsMetadata lowered = *repo_->DelegatedTargets("apps/kiosk");
  lowered.targets[FloorTargetName("kiosk")].custom = FloorToJson({"kiosk", 4});
  EXPECT_EQ(CheckAppRole("kiosk", repo_->DelegatedTargets("apps/kiosk"), lowered).code(),
            StatusCode::kPermissionDenied);
  TargetsMetadata dropped = *repo_->DelegatedTargets("apps/kiosk");
  dropped.targets.erase(FloorTargetName("kiosk"));
  EXPECT_EQ(CheckAppRole("kiosk", repo_->DelegatedTargets("apps/kiosk"), dropped).code(),
            StatusCode::kPermissionDenied);
  // Nor list another app's floor.
  TargetsMetadata other = *repo_->DelegatedTargets("apps/kiosk");
  other.targets[FloorTargetName("clock")].custom = FloorToJson({"clock", 1});
  EXPECT_FALSE(CheckAppRole("kiosk", repo_->DelegatedTargets("apps/kiosk"), other).ok());
}

}  // namespace
}  // namespace flotilla::metadata
