// Devices in the field run 0.1.0. Two properties keep them working:
//  1. the trusted-state directory 0.1.0 wrote (tuf/ in a node's data
//     directory) is read by this client, which refreshes from it;
//  2. for an ed25519-only repository, the repository writer produces exactly
//     the bytes 0.1.0 produced (and so 0.1.0 clients read what it writes).
// metadata/testdata/tuf-0.1.0/ was written by the 0.1.0 code (no release tag
// exists; commit b3bfcca, project version 0.1.0, whose metadata format is what
// the 0.1.0 packages carry) running WriteCompatScenario below: fixed seeds, a
// fixed clock, release 1 published, a 0.1.0 client initialised and refreshed.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/compat_fixture.h"
#include "metadata/release.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

namespace fs = std::filesystem;

using namespace compat010;

const std::string kFixture = std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/tuf-0.1.0";
constexpr Duration kOfflineExpiry = std::chrono::hours(24 * 365);

// The scenario the fixture records: <out>/repository (the tracker's side) and
// <out>/tuf (a device's trusted state after one refresh).
void WriteCompatScenario(const std::string& out) {
  FakeClock clock(FixtureTime());
  std::map<RoleType, RoleKeyConfig> roles;
  for (RoleType role : kAllRoles) roles[role] = {{FixtureKey(role).public_key()}, 1};
  auto repo = Repository::Create(out + "/repository", roles, FixtureRing(), clock);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  ASSERT_TRUE(PublishRelease(**repo, FixtureRelease(1), FixtureRing()).ok());
  auto root = ReadTextFileBounded(out + "/repository/metadata/1.root.json", 1 << 20);
  ASSERT_TRUE(root.ok());
  ASSERT_TRUE(TufClient::Initialize(out + "/tuf", *root).ok());
  DirectoryRemote remote(out + "/repository/metadata", out + "/repository/targets");
  auto client = TufClient::Open(out + "/tuf", remote, clock);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Refresh().ok());
}

std::map<std::string, std::string> FilesUnder(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
    files[fs::relative(entry.path(), dir)] = ReadTextFileBounded(entry.path(), 1 << 20).value();
  }
  return files;
}

class Compat010Test : public ::testing::Test {
 protected:
  void SetUp() override {
    temp_ = fs::temp_directory_path() / ("flotilla-compat-" + std::to_string(::getpid()));
    fs::remove_all(temp_);
    fs::create_directories(temp_);
  }
  void TearDown() override { fs::remove_all(temp_); }
  std::string temp_;
};

TEST_F(Compat010Test, Ed25519RepositoryBytesAreWhat010Wrote) {
  ASSERT_TRUE(fs::exists(kFixture + "/repository/metadata/1.root.json"));
  WriteCompatScenario(temp_);
  auto expected = FilesUnder(kFixture);
  auto actual = FilesUnder(temp_);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(actual.size(), expected.size());
  for (const auto& [name, bytes] : expected) {
    auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << name << " is no longer written";
    EXPECT_EQ(it->second, bytes) << name << " differs from what 0.1.0 wrote";
  }
}

TEST_F(Compat010Test, TrustedStateOf010TakesTheNextRelease) {
  fs::copy(kFixture, temp_, fs::copy_options::recursive);
  FakeClock clock(FixtureTime() + std::chrono::hours(2));
  auto repo = Repository::Open(temp_ + "/repository", clock);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  ASSERT_TRUE(PublishRelease(**repo, FixtureRelease(2), FixtureRing()).ok());
  DirectoryRemote remote(temp_ + "/repository/metadata", temp_ + "/repository/targets");
  auto client = TufClient::Open(temp_ + "/tuf", remote, clock);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->Refresh().ok());
  auto releases = LatestReleases(*(*client)->targets());
  ASSERT_TRUE(releases.ok());
  EXPECT_EQ(releases->at("kiosk").version, 2u);
  auto info = (*client)->GetTargetInfo(ReleaseTargetName("kiosk", 2));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto got = (*client)->DownloadTarget(*info, temp_ + "/downloads");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
}

// Signs `doc` with `signer` and accepts it as `role` (docs/signing.md's flow).
Status SignAndAccept(Repository& repo, const std::string& role, SignedDocument doc,
                     const TufSigner& signer) {
  RETURN_IF_ERROR(AddSignature(doc, signer));
  return repo.AcceptTargets(role, SerializeDocument(doc), FixtureRing());
}

// A 0.1.0 repository migrated to an offline app key (the targets key signs the
// delegation offline): a device holding 0.1.0's trusted state takes the
// release the app key signed.
TEST_F(Compat010Test, TrustedStateOf010TakesAReleaseSignedByAnOfflineAppKey) {
  fs::copy(kFixture, temp_, fs::copy_options::recursive);
  FakeClock clock(FixtureTime() + std::chrono::hours(2));
  auto repo = Repository::Open(temp_ + "/repository", clock);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  auto app_key = TufSigner::Generate(KeyScheme::kEcdsaSha2Nistp256);
  ASSERT_TRUE(app_key.ok());
  auto delegation = StageAppDelegation(**repo, "kiosk", {app_key->key()}, 1, kOfflineExpiry);
  ASSERT_TRUE(delegation.ok()) << delegation.status().ToString();
  ASSERT_TRUE(SignAndAccept(**repo, "targets", *delegation,
                            TufSigner::FromEd25519(FixtureKey(RoleType::kTargets)))
                  .ok());
  auto staged = StageRelease(**repo, FixtureRelease(2), kOfflineExpiry);
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  Status accepted = SignAndAccept(**repo, AppRoleName("kiosk"), *staged, *app_key);
  ASSERT_TRUE(accepted.ok()) << accepted.ToString();

  DirectoryRemote remote(temp_ + "/repository/metadata", temp_ + "/repository/targets");
  auto client = TufClient::Open(temp_ + "/tuf", remote, clock);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->Refresh().ok());
  auto releases = TrustedReleases(**client);
  ASSERT_TRUE(releases.ok()) << releases.status().ToString();
  EXPECT_EQ(releases->at("kiosk").version, 2u);
  EXPECT_TRUE(fs::exists(temp_ + "/tuf/apps%2Fkiosk.json"));
}

}  // namespace
}  // namespace flotilla::metadata
