// Devices in the field run 0.1.0: its own metadata client
// (tests/compat/tuf-client-0.1.0, built from 0.1.0's sources) refreshes from
// the trusted state 0.1.0 wrote (metadata/testdata/tuf-0.1.0/tuf) against
// what today's code publishes onto that repository, and must take the new
// release. The refusals below show that the check has teeth: 0.1.0 reads a
// release's fields strictly, so a format change it does not know strands it.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "metadata/compat_fixture.h"
#include "metadata/offline_window.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/repository.h"
#include "metadata/tuf_time.h"
#include "tests/support/test_util.h"

namespace flotilla::metadata {
namespace {

namespace fs = std::filesystem;
using namespace compat010;
using flotilla::testing::MakeTempDir;
using flotilla::testing::RunShell;

const std::string kFixture = std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/tuf-0.1.0";
const std::string kClient010 =
    std::string(FLOTILLA_BINARY_DIR) + "/tests/compat/tuf-client-0.1.0/flotilla-tuf-client-0.1.0";

class Client010Test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("client-010");
    ASSERT_FALSE(dir_.empty());
    fs::copy(kFixture, dir_, fs::copy_options::recursive);
    auto repo = Repository::Open(dir_ + "/repository", clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs 0.1.0's refresh on the fixture's device state; its exit code and output.
  flotilla::testing::CommandResult Refresh010() {
    return RunShell(kClient010 + " " + dir_ + "/tuf " + dir_ + "/repository/metadata " + dir_ +
                    "/repository/targets " + FormatTufTime(clock_.Now()));
  }

  FakeClock clock_{FixtureTime() + std::chrono::hours(2)};
  std::string dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(Client010Test, TakesTheNextReleasePublishedToday) {
  ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(2), FixtureRing()).ok());
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
}

// A release fetched from a registry records its source beside
// custom.flotilla (docs/registry.md); 0.1.0 reads only custom.flotilla.
TEST_F(Client010Test, TakesAReleaseThatRecordsItsRegistrySource) {
  Release release = FixtureRelease(2);
  release.source =
      ReleaseSource{"docker://127.0.0.1:5000/shop/kiosk@sha256:" + std::string(64, 'e'),
                    Digest::Of(std::string("index"))};
  ASSERT_TRUE(PublishRelease(*repo_, release, FixtureRing()).ok());
  ASSERT_TRUE(repo_->targets().targets.at(ReleaseTargetName("kiosk", 2)).custom.contains("source"));
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
}

// A target that is not a release (no custom "flotilla") is passed over.
TEST_F(Client010Test, TakesAReleaseBesideATargetThatIsNotARelease) {
  ASSERT_TRUE(repo_->AddTargets({{"fleet/root.json", "{}", nullptr}}, FixtureRing()).ok());
  ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(2), FixtureRing()).ok());
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
}

// The release floor (metadata/release_floor.h) is a target without custom
// "flotilla": 0.1.0 passes over it and keeps taking releases.
TEST_F(Client010Test, TakesAReleaseBesideTheAppsFloor) {
  ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(2), FixtureRing()).ok());
  ASSERT_TRUE(PublishFloor(*repo_, {"kiosk", 2}, FixtureRing()).ok());
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
  ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(3), FixtureRing()).ok());
  r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 3\n");
}

// A release whose spec declares configuration (docs/config.md): 0.1.0's
// client carries app_spec verbatim and takes the release (its node then
// refuses the unknown spec field when it deploys: publish such releases once
// devices run a node that reads it).
TEST_F(Client010Test, TakesAReleaseWhoseSpecDeclaresConfig) {
  Release release = FixtureRelease(2);
  release.app_spec["config"] =
      Json::array({Json{{"name", "PLAYLIST_URL"}, {"pattern", "https://.*"}}});
  ASSERT_TRUE(PublishRelease(*repo_, release, FixtureRing()).ok());
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
}

// The offline validity window (docs/metadata.md): a root field 0.1.0 does not
// know and custom.offline_window beside custom.flotilla. 0.1.0 takes the
// root and the release, and keeps TUF's normal expiry (no window for it).
TEST_F(Client010Test, TakesAReleaseWithAnOfflineWindowUnderARootWithACap) {
  ASSERT_TRUE(repo_->RotateKeys({}, FixtureRing(), /*offline_window_max_days=*/90).ok());
  ASSERT_EQ(repo_->root().offline_window_max_days, 90u);
  Release release = FixtureRelease(2);
  release.offline_window = OfflineWindowOfDays(clock_.Now(), 30);
  ASSERT_TRUE(PublishRelease(*repo_, release, FixtureRing()).ok());
  ASSERT_TRUE(
      repo_->targets().targets.at(ReleaseTargetName("kiosk", 2)).custom.contains("offline_window"));
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
  ASSERT_TRUE(PublishRelease(*repo_, FixtureRelease(3), FixtureRing()).ok());
  clock_.Advance(std::chrono::hours(24 * 10));  // inside the window, timestamp expired
  r = Refresh010();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("expired"), std::string::npos) << r.output;
}

TEST_F(Client010Test, RefusesAReleaseWithAFieldItDoesNotKnow) {
  Json custom = ReleaseToJson(FixtureRelease(2));
  custom["flotilla"]["rollout"] = "waves";
  std::string content = CanonicalJson(custom).value();
  ASSERT_TRUE(
      repo_->AddTargets({{ReleaseTargetName("kiosk", 2), content, custom}}, FixtureRing()).ok());
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("rollout"), std::string::npos) << r.output;
}

// An app moved to an offline app key (docs/signing.md): 0.1.0 reads releases
// from the top-level targets only, so it keeps refreshing through the
// delegation and still sees the releases there, not the app role's.
TEST_F(Client010Test, RefreshesThroughAnAppDelegationAndSeesTopLevelReleasesOnly) {
  auto app_key = TufSigner::FromEd25519(Ed25519PrivateKey::Generate());
  const Duration year = std::chrono::hours(24 * 365);
  auto delegation = StageAppDelegation(*repo_, "kiosk", {app_key.key()}, 1, year);
  ASSERT_TRUE(delegation.ok()) << delegation.status().ToString();
  ASSERT_TRUE(
      AddSignature(*delegation, TufSigner::FromEd25519(FixtureKey(RoleType::kTargets))).ok());
  ASSERT_TRUE(repo_->AcceptTargets("targets", SerializeDocument(*delegation), FixtureRing()).ok());
  auto staged = StageRelease(*repo_, FixtureRelease(2), year);
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  ASSERT_TRUE(AddSignature(*staged, app_key).ok());
  ASSERT_TRUE(repo_->AcceptTargets("apps/kiosk", SerializeDocument(*staged), FixtureRing()).ok());
  auto r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 1\n");

  // The transition (docs/signing.md): the offline targets key lists the
  // release in the top-level targets too, and 0.1.0 takes it.
  auto top = StageRelease(*repo_, FixtureRelease(2), year, StageIn::kTopLevel);
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  ASSERT_TRUE(AddSignature(*top, TufSigner::FromEd25519(FixtureKey(RoleType::kTargets))).ok());
  ASSERT_TRUE(repo_->AcceptTargets("targets", SerializeDocument(*top), FixtureRing()).ok());
  r = Refresh010();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "kiosk 2\n");
}

// The top-level may list an app role's release only with the same bytes: a
// node's target search would take the top-level entry first.
TEST_F(Client010Test, TheTopLevelListsAnAppRolesReleaseOnlyAsItIs) {
  auto app_key = TufSigner::FromEd25519(Ed25519PrivateKey::Generate());
  const Duration year = std::chrono::hours(24 * 365);
  auto delegation = StageAppDelegation(*repo_, "kiosk", {app_key.key()}, 1, year);
  ASSERT_TRUE(delegation.ok());
  ASSERT_TRUE(
      AddSignature(*delegation, TufSigner::FromEd25519(FixtureKey(RoleType::kTargets))).ok());
  ASSERT_TRUE(repo_->AcceptTargets("targets", SerializeDocument(*delegation), FixtureRing()).ok());
  auto staged = StageRelease(*repo_, FixtureRelease(2), year);
  ASSERT_TRUE(staged.ok());
  ASSERT_TRUE(AddSignature(*staged, app_key).ok());
  ASSERT_TRUE(repo_->AcceptTargets("apps/kiosk", SerializeDocument(*staged), FixtureRing()).ok());
  Release other = FixtureRelease(2);
  other.app_spec = Json{{"command", {"/other"}}, {"restart", "always"}};
  auto top = StageRelease(*repo_, other, year, StageIn::kTopLevel);
  EXPECT_EQ(top.status().code(), StatusCode::kInvalidArgument) << top.status().ToString();
  EXPECT_EQ(StageRelease(*repo_, FixtureRelease(1), year, StageIn::kTopLevel).status().code(),
            StatusCode::kFailedPrecondition)
      << "release 1 is older than the app's newest and not in its role";
}

}  // namespace
}  // namespace flotilla::metadata
