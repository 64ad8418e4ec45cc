// Delegated targets roles (TUF 5.6.7) and target hashes: repositories built
// with TestRepository, read by TufClient over DirectoryRemote.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/adversarial_fixture.h"
#include "metadata/release.h"
#include "metadata/test_repository.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata::testing {
namespace {

namespace fs = std::filesystem;

TufSigner NewKey() { return TufSigner::FromEd25519(Ed25519PrivateKey::Generate()); }

DelegatedRole PathRole(const std::string& name, std::vector<std::string> paths,
                       bool terminating = false, uint32_t threshold = 1) {
  DelegatedRole role;
  role.name = name;
  role.paths = std::move(paths);
  role.terminating = terminating;
  role.keys.threshold = threshold;
  return role;
}

// Counts metadata fetches by name.
class CountingRemote final : public RemoteRepository {
 public:
  explicit CountingRemote(RemoteRepository& inner) : inner_(inner) {}
  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    ++fetches[name];
    return inner_.FetchMetadata(name, max_bytes);
  }
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override {
    return inner_.FetchTarget(url_path, max_bytes, dest_path);
  }
  std::map<std::string, int> fetches;

 private:
  RemoteRepository& inner_;
};

class DelegationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    temp_ = fs::temp_directory_path() / ("flotilla-delegation-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter_++));
    fs::remove_all(temp_);
    repo_ = std::make_unique<TestRepository>(temp_ + "/repo", clock_.Now());
    directory_ = std::make_unique<DirectoryRemote>(repo_->metadata_dir(), repo_->targets_dir());
    remote_ = std::make_unique<CountingRemote>(*directory_);
  }
  void TearDown() override { fs::remove_all(temp_); }

  // Publishes, installs root v1 in a fresh client dir (first call) and refreshes.
  std::unique_ptr<TufClient> Refreshed(ClientLimits limits = {}) {
    Status published = repo_->Publish();
    EXPECT_TRUE(published.ok()) << published.ToString();
    if (!fs::exists(ClientDir() + "/root.json")) {
      auto root = ReadTextFileBounded(repo_->metadata_dir() + "/1.root.json", 1 << 20);
      EXPECT_TRUE(TufClient::Initialize(ClientDir(), root.value()).ok());
    }
    auto client = TufClient::Open(ClientDir(), *remote_, clock_, limits);
    EXPECT_TRUE(client.ok());
    Status refreshed = (*client)->Refresh();
    EXPECT_TRUE(refreshed.ok()) << refreshed.ToString();
    return std::move(client).value();
  }
  std::string ClientDir() const { return temp_ + "/client"; }
  // The content of the target the client finds for `name`, downloaded and verified.
  Result<std::string> Fetch(TufClient& client, const std::string& name) {
    ASSIGN_OR_RETURN(TargetFile info, client.GetTargetInfo(name));
    ASSIGN_OR_RETURN(DownloadedTarget got, client.DownloadTarget(info, temp_ + "/downloads"));
    return ReadTextFileBounded(got.path, 1 << 20);
  }

  static inline int counter_ = 0;
  FakeClock clock_;
  std::string temp_;
  std::unique_ptr<TestRepository> repo_;
  std::unique_ptr<DirectoryRemote> directory_;
  std::unique_ptr<CountingRemote> remote_;
};

TEST_F(DelegationTest, NonTerminatingDelegationLetsTheSearchGoOn) {
  repo_->Delegate("targets", PathRole("first", {"apps/*"}), {NewKey()});
  repo_->Delegate("targets", PathRole("second", {"apps/*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("second", "apps/tool", "from second").ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, "apps/tool").value_or("?"), "from second");
  // Both roles were verified on the way and persisted under their names.
  EXPECT_TRUE(fs::exists(ClientDir() + "/first.json"));
  EXPECT_TRUE(fs::exists(ClientDir() + "/second.json"));
}

TEST_F(DelegationTest, TerminatingDelegationEndsTheSearch) {
  repo_->Delegate("targets", PathRole("first", {"apps/*"}, /*terminating=*/true), {NewKey()});
  repo_->Delegate("targets", PathRole("second", {"apps/*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("second", "apps/tool", "from second").ok());
  auto client = Refreshed();
  ExpectStatus(client->GetTargetInfo("apps/tool").status(), StatusCode::kNotFound,
               "no target named apps%2Ftool");
  EXPECT_EQ(remote_->fetches.count("1.second.json"), 0u);
  // Outside the terminating role's paths the next delegation is still followed.
  ASSERT_TRUE(repo_->AddTarget("second", "lib/x", "x").ok());
  repo_->Role("targets").delegations->roles[1].paths = {"apps/*", "lib/*"};
  repo_->Touch("targets");
  auto again = Refreshed();
  EXPECT_EQ(Fetch(*again, "lib/x").value_or("?"), "x");
}

TEST_F(DelegationTest, EarlierDelegationWinsOverALaterOne) {
  repo_->Delegate("targets", PathRole("first", {"apps/*"}), {NewKey()});
  repo_->Delegate("targets", PathRole("second", {"apps/*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("first", "apps/tool", "from first").ok());
  ASSERT_TRUE(repo_->AddTarget("second", "apps/tool", "from second").ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, "apps/tool").value_or("?"), "from first");
}

TEST_F(DelegationTest, EveryRoleOnThePathMustCoverTheTarget) {
  repo_->Delegate("targets", PathRole("apps", {"apps/*"}), {NewKey()});
  repo_->Delegate("apps", PathRole("anything", {"*", "*/*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("anything", "apps/tool", "tool").ok());
  ASSERT_TRUE(repo_->AddTarget("anything", "other/tool", "not for apps to give").ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, "apps/tool").value_or("?"), "tool");
  ExpectStatus(client->GetTargetInfo("other/tool").status(), StatusCode::kNotFound, "other%2Ftool");
}

TEST_F(DelegationTest, WildcardsDoNotCrossSlashes) {
  repo_->Delegate("targets", PathRole("one-level", {"apps/*", "v?/bin"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("one-level", "apps/a/b", "deep").ok());
  ASSERT_TRUE(repo_->AddTarget("one-level", "apps/.hidden", "dot").ok());
  ASSERT_TRUE(repo_->AddTarget("one-level", "v1/bin", "v1").ok());
  auto client = Refreshed();
  ExpectStatus(client->GetTargetInfo("apps/a/b").status(), StatusCode::kNotFound, "apps%2Fa%2Fb");
  EXPECT_EQ(Fetch(*client, "apps/.hidden").value_or("?"), "dot");  // fnmatch: '*' matches '.'
  EXPECT_EQ(Fetch(*client, "v1/bin").value_or("?"), "v1");
}

TEST_F(DelegationTest, ThresholdOfADelegatedRole) {
  auto a = NewKey(), b = NewKey();
  repo_->Delegate("targets", PathRole("pair", {"*"}, false, /*threshold=*/2), {a, b});
  ASSERT_TRUE(repo_->AddTarget("pair", "tool", "two keys").ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, "tool").value_or("?"), "two keys");
  // Re-signed by one of the two keys only: refused, and the trusted copy stays.
  const std::string trusted = ReadTextFileBounded(ClientDir() + "/pair.json", 1 << 20).value();
  repo_->tamper = [](const std::string& role, SignedDocument& doc) {
    if (role == "pair") doc.signatures.resize(1);
  };
  ASSERT_TRUE(repo_->AddTarget("pair", "tool2", "one key").ok());
  auto again = Refreshed();
  ExpectStatus(again->GetTargetInfo("tool2").status(), StatusCode::kCorruption,
               "1 valid signature(s), threshold is 2");
  EXPECT_EQ(ReadTextFileBounded(ClientDir() + "/pair.json", 1 << 20).value(), trusted);
}

TEST_F(DelegationTest, CyclesAndLongChainsEndTheSearch) {
  repo_->Delegate("targets", PathRole("a", {"*"}), {NewKey()});
  repo_->Delegate("a", PathRole("b", {"*"}), {NewKey()});
  repo_->Delegate("b", PathRole("a", {"*"}), repo_->Signers("a"));  // back to a
  auto client = Refreshed();
  ExpectStatus(client->GetTargetInfo("missing").status(), StatusCode::kNotFound,
               "3 role(s) searched");
  // A chain longer than the limit: the search stops at the limit.
  repo_->Delegate("b", PathRole("c0", {"*"}), {NewKey()});
  for (int i = 0; i < 40; ++i) {
    repo_->Delegate("c" + std::to_string(i), PathRole("c" + std::to_string(i + 1), {"*"}),
                    {NewKey()});
  }
  ASSERT_TRUE(repo_->AddTarget("c40", "deep", "too deep").ok());
  ClientLimits limits;
  limits.max_delegations = 10;
  auto limited = Refreshed(limits);
  ExpectStatus(limited->GetTargetInfo("deep").status(), StatusCode::kNotFound,
               "10 role(s) searched");
}

TEST_F(DelegationTest, PathHashPrefixes) {
  const std::string name = "apps/hashed";
  const std::string prefix = Digest::Of(name).Hex().substr(0, 2);
  DelegatedRole bin;
  bin.name = "bin-" + prefix;
  bin.path_hash_prefixes = std::vector<std::string>{prefix};
  DelegatedRole other;
  other.name = "bin-other";
  other.path_hash_prefixes = std::vector<std::string>{prefix == "00" ? "01" : "00"};
  repo_->Delegate("targets", other, {NewKey()});
  repo_->Delegate("targets", bin, {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("bin-" + prefix, name, "hashed").ok());
  ASSERT_TRUE(repo_->AddTarget("bin-other", name, "wrong bin").ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, name).value_or("?"), "hashed");
}

TEST_F(DelegationTest, SuccinctHashBins) {
  SuccinctRoles bins;
  bins.bit_length = 5;
  bins.name_prefix = "bins";
  repo_->DelegateSuccinct("targets", bins, {NewKey()});
  const std::string name = "apps/binned";
  // TAP 15: the bin is the first bit_length bits of the path's SHA-256, in hex padded to 2 digits.
  const Digest digest = Digest::Of(name);
  const auto& hash = digest.bytes();
  const uint32_t bin = hash[0] >> 3;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%02x", bin);
  const std::string expected_bin = "bins-" + std::string(suffix);
  ASSERT_EQ(repo_->Role("targets").delegations->succinct_roles->RoleFor(name), expected_bin);
  ASSERT_TRUE(repo_->AddTarget(expected_bin, name, "binned").ok());
  const std::string wrong = bins.BinName((bin + 1) % 32);
  ASSERT_TRUE(repo_->AddTarget(wrong, "apps/elsewhere-not-here", "misplaced").ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, name).value_or("?"), "binned");
  EXPECT_TRUE(fs::exists(ClientDir() + "/" + expected_bin + ".json"));
  // A target listed in a bin it does not hash to is not found there.
  if (repo_->Role("targets").delegations->succinct_roles->RoleFor("apps/elsewhere-not-here") !=
      wrong) {
    EXPECT_FALSE(client->GetTargetInfo("apps/elsewhere-not-here").ok());
  }
}

TEST_F(DelegationTest, UnusualRoleNamesNeverChooseAPath) {
  const std::vector<std::string> names = {"?", "#", "/", "..", "a/../../escaped", "%2e%2e"};
  for (const auto& name : names) {
    const std::string target = "n/" + PercentEncode(name) + "-t";
    repo_->Delegate("targets", PathRole(name, {target}), {NewKey()});
    ASSERT_TRUE(repo_->AddTarget(name, target, "signed by " + name).ok());
  }
  auto client = Refreshed();
  for (const auto& name : names) {
    EXPECT_EQ(Fetch(*client, "n/" + PercentEncode(name) + "-t").value_or("?"), "signed by " + name);
    EXPECT_TRUE(fs::exists(ClientDir() + "/" + PercentEncode(name) + ".json")) << name;
  }
  EXPECT_TRUE(fs::exists(ClientDir() + "/...json"));
  EXPECT_FALSE(fs::exists(temp_ + "/escaped.json"));
  EXPECT_FALSE(fs::exists(ClientDir() + "/a"));
  for (const auto& entry : fs::directory_iterator(ClientDir())) {
    EXPECT_TRUE(entry.is_regular_file()) << entry.path();
  }
}

TEST_F(DelegationTest, DelegatedMetadataIsCheckedAgainstTheSnapshot) {
  repo_->Delegate("targets", PathRole("vendor", {"*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("vendor", "tool", "tool").ok());
  ASSERT_TRUE(repo_->Publish().ok());
  // Bytes that differ from the snapshot's hash.
  const std::string file = repo_->metadata_dir() + "/1.vendor.json";
  const std::string bytes = ReadTextFileBounded(file, 1 << 20).value();
  std::string changed = bytes;
  changed[changed.size() - 2] = ' ';  // the newline before the closing brace
  ASSERT_TRUE(WriteFileAtomic(file, changed).ok());
  auto client = Refreshed();
  ExpectStatus(client->GetTargetInfo("tool").status(), StatusCode::kCorruption,
               "1.vendor.json does not match its signed sha256");
  EXPECT_FALSE(fs::exists(ClientDir() + "/vendor.json"));
  // A role the snapshot does not list.
  ASSERT_TRUE(WriteFileAtomic(file, bytes).ok());
  repo_->snapshot().meta.erase("vendor.json");
  repo_->Touch("targets");
  ASSERT_TRUE(repo_->Publish().ok());
  auto root = ReadTextFileBounded(repo_->metadata_dir() + "/1.root.json", 1 << 20);
  ASSERT_TRUE(TufClient::Initialize(temp_ + "/fresh", root.value()).ok());
  auto unlisted = TufClient::Open(temp_ + "/fresh", *remote_, clock_);
  ASSERT_TRUE((*unlisted)->Refresh().ok());
  ExpectStatus((*unlisted)->GetTargetInfo("tool").status(), StatusCode::kCorruption,
               "the snapshot does not list vendor.json");
}

TEST_F(DelegationTest, ExpiredDelegatedRoleIsRefused) {
  repo_->Delegate("targets", PathRole("vendor", {"*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("vendor", "tool", "tool").ok());
  ASSERT_TRUE(repo_->PublishRoot().ok());
  repo_->expiry = std::chrono::hours(1);
  ASSERT_TRUE(repo_->Publish().ok());
  repo_->expiry = std::chrono::hours(24 * 30);
  repo_->Touch("targets");  // targets, snapshot and timestamp fresh; vendor stays as it was
  auto client = Refreshed();
  EXPECT_TRUE(client->GetTargetInfo("tool").ok());
  clock_.Advance(std::chrono::hours(2));
  auto later = Refreshed();
  ExpectStatus(later->GetTargetInfo("tool").status(), StatusCode::kFailedPrecondition,
               "delegated role vendor metadata expired");
}

TEST_F(DelegationTest, VerifiedDelegatedMetadataIsNotFetchedAgain) {
  repo_->Delegate("targets", PathRole("vendor", {"*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("vendor", "tool", "tool").ok());
  auto client = Refreshed();
  ASSERT_TRUE(client->GetTargetInfo("tool").ok());
  ASSERT_TRUE(client->GetTargetInfo("tool").ok());
  auto next = Refreshed();  // new timestamp and snapshot, vendor unchanged
  ASSERT_TRUE(next->GetTargetInfo("tool").ok());
  EXPECT_EQ(remote_->fetches["1.vendor.json"], 1);
}

TEST_F(DelegationTest, DelegatedRoleVersionRollbackIsRefused) {
  repo_->Delegate("targets", PathRole("vendor", {"*"}), {NewKey()});
  ASSERT_TRUE(repo_->AddTarget("vendor", "tool", "tool").ok());
  ASSERT_TRUE(repo_->Publish().ok());
  ASSERT_TRUE(repo_->AddTarget("vendor", "tool", "tool v2").ok());
  auto client = Refreshed();  // vendor v2 trusted
  ASSERT_TRUE(client->GetTargetInfo("tool").ok());
  // The snapshot (signed by the snapshot key) names vendor v1 again.
  repo_->snapshot().meta["vendor.json"].version = 1;
  repo_->snapshot().meta["vendor.json"].length.reset();
  repo_->snapshot().meta["vendor.json"].hashes.clear();
  ASSERT_TRUE(repo_->Publish().ok());
  auto client2 = TufClient::Open(ClientDir(), *remote_, clock_);
  ExpectStatus((*client2)->Refresh(), StatusCode::kCorruption,
               "version rollback of vendor.json: 1 < trusted 2");
}

TEST_F(DelegationTest, Sha512OnlyAndMixedHashTargets) {
  ASSERT_TRUE(repo_->AddTarget("targets", "only512", "sha512 only", {"sha512"}).ok());
  ASSERT_TRUE(repo_->AddTarget("targets", "both", "both hashes", {"sha256", "sha512"}).ok());
  ASSERT_TRUE(repo_->AddTarget("targets", "unknown-too", "with blake3", {"sha256", "blake3"}).ok());
  ASSERT_TRUE(repo_->AddTarget("targets", "unknown-only", "md5 only", {"md5"}).ok());
  auto client = Refreshed();
  EXPECT_EQ(Fetch(*client, "only512").value_or("?"), "sha512 only");
  EXPECT_EQ(Fetch(*client, "both").value_or("?"), "both hashes");
  EXPECT_EQ(Fetch(*client, "unknown-too").value_or("?"), "with blake3");
  ExpectStatus(Fetch(*client, "unknown-only").status(), StatusCode::kCorruption,
               "lists no hash flotilla computes");
  // Every supported hash must match: a wrong sha512 beside a right sha256 is refused.
  repo_->Role("targets").targets["both"].hashes["sha512"] = std::string(128, '0');
  repo_->Touch("targets");
  auto again = Refreshed();
  fs::remove_all(temp_ + "/downloads");
  auto info = again->GetTargetInfo("both");
  ASSERT_TRUE(info.ok());
  ExpectStatus(again->DownloadTarget(*info, temp_ + "/downloads").status(), StatusCode::kCorruption,
               "does not match its signed sha512");
  EXPECT_TRUE(fs::is_empty(temp_ + "/downloads"));
}

Release AppRelease(const std::string& app, uint64_t version) {
  Release r;
  r.app = app;
  r.version = version;
  r.image.manifest = Digest::Of(app + " manifest");
  r.image.config = Digest::Of(app + " config");
  r.image.platform = "linux/arm64";
  r.image.layers = {{Digest::Of(app + " layer"), 4096}};
  r.artifacts = {{Digest::Of(app + " layer"),
                  ArtifactKind::kFull,
                  {},
                  Digest::Of(app + " artifact"),
                  1024,
                  Digest::Of(app + " torrent").bytes(),
                  "zstd"}};
  return r;
}

// Lists `release` in `role` as its release target.
void ListRelease(TestRepository& repo, const std::string& role, const std::string& name,
                 const Release& release) {
  Json custom = ReleaseToJson(release);
  ASSERT_TRUE(repo.AddTarget(role, name, CanonicalJson(custom).value()).ok());
  repo.Role(role).targets[name].custom = custom;
}

// An app key signs its own app's releases only: an entry its role lists
// outside its delegation's paths is never a release the device takes.
TEST_F(DelegationTest, TrustedReleasesTakeEachAppRoleOnlyWithinItsPaths) {
  repo_->Delegate("targets", PathRole("apps/kiosk", {"apps/kiosk/*"}, true), {NewKey()});
  repo_->Delegate("targets", PathRole("apps/other", {"apps/other/*"}, true), {NewKey()});
  ListRelease(*repo_, "apps/kiosk", "apps/kiosk/release-3.json", AppRelease("kiosk", 3));
  ListRelease(*repo_, "apps/other", "apps/other/release-1.json", AppRelease("other", 1));
  ListRelease(*repo_, "apps/kiosk", "apps/other/release-9.json", AppRelease("other", 9));
  auto client = Refreshed();
  auto releases = TrustedReleases(*client);
  ASSERT_TRUE(releases.ok()) << releases.status().ToString();
  EXPECT_EQ(releases->at("kiosk").version, 3u);
  EXPECT_EQ(releases->at("other").version, 1u);
}

// A role that fails to verify takes out its own app only, including the
// older release the top-level targets still lists for it.
TEST_F(DelegationTest, TrustedReleasesLeaveOutOnlyTheAppWhoseRoleFails) {
  repo_->Delegate("targets", PathRole("apps/kiosk", {"apps/kiosk/*"}, true), {NewKey()});
  repo_->Delegate("targets", PathRole("apps/other", {"apps/other/*"}, true), {NewKey()});
  ListRelease(*repo_, "targets", "apps/kiosk/release-1.json", AppRelease("kiosk", 1));
  ListRelease(*repo_, "apps/kiosk", "apps/kiosk/release-2.json", AppRelease("kiosk", 2));
  ListRelease(*repo_, "apps/other", "apps/other/release-1.json", AppRelease("other", 1));
  repo_->tamper = [](const std::string& role, SignedDocument& doc) {
    if (role == "apps/kiosk") doc.signatures[0].sig_hex = std::string(128, '0');
  };
  auto client = Refreshed();
  std::vector<Status> refused;
  auto releases = TrustedReleases(*client, &refused);
  ASSERT_TRUE(releases.ok()) << releases.status().ToString();
  EXPECT_FALSE(releases->contains("kiosk"));
  EXPECT_EQ(releases->at("other").version, 1u);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].ToString().find("apps%2Fkiosk"), std::string::npos) << refused[0].ToString();
}

}  // namespace
}  // namespace flotilla::metadata::testing
