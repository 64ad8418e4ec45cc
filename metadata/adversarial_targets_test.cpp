// Adversarial suite, part 3: targets and their bytes, names and key files
// (delegations: delegation_test.cpp).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/adversarial_fixture.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_signing.h"

namespace flotilla::metadata::testing {
namespace {

namespace fs = std::filesystem;

class AdversarialTargets : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    CreateRepository();
    InitClient();
  }
  // The stored file of target `name` in the repository (consistent snapshot).
  std::string RepoTargetPath(const std::string& name) const {
    const TargetFile& t = repo_->targets().targets.at(name);
    auto slash = name.rfind('/');
    return repo_->targets_dir() + "/" + name.substr(0, slash + 1) + t.hashes.at("sha256") + "." +
           name.substr(slash + 1);
  }
  Result<DownloadedTarget> Download(const std::string& name) {
    auto client = RefreshedClient();
    if (!client) return Internal("refresh failed");
    ASSIGN_OR_RETURN(TargetFile info, client->GetTargetInfo(name));
    return client->DownloadTarget(info, target_dir_);
  }
  // Expects the download of `name` to fail as given, leaving every trusted file as it was.
  void ExpectDownloadRejected(const std::string& name, StatusCode code, std::string_view part) {
    ASSERT_TRUE(Refresh().ok());
    auto before = TrustedState();
    auto result = Download(name);
    ASSERT_FALSE(result.ok());
    ExpectStatus(result.status(), code, part);
    EXPECT_EQ(TrustedState(), before);
    if (fs::exists(target_dir_)) {
      EXPECT_TRUE(fs::is_empty(target_dir_));
    }
  }
};

TEST_F(AdversarialTargets, VerifiedTargetIsDownloadedOnceThenServedFromCache) {
  auto first = Download("apps/demo/release-1.json");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->fetched);
  EXPECT_EQ(first->path, target_dir_ + "/apps%2Fdemo%2Frelease-1.json");
  EXPECT_EQ(ReadTextFileBounded(first->path, 100).value(), "hello fleet\n");
  auto second = Download("apps/demo/release-1.json");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->fetched);
  EXPECT_EQ(remote_->target_fetches(), 1);
}

TEST_F(AdversarialTargets, TamperedLocalCopyIsFetchedAgain) {
  ASSERT_TRUE(Download("apps/demo/release-1.json").ok());
  ASSERT_TRUE(WriteFileAtomic(target_dir_ + "/apps%2Fdemo%2Frelease-1.json", "hello fleeT\n").ok());
  auto again = Download("apps/demo/release-1.json");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->fetched);
  EXPECT_EQ(ReadTextFileBounded(again->path, 100).value(), "hello fleet\n");
}

TEST_F(AdversarialTargets, TargetBytesThatDifferFromTheSignedHashAreRejected) {
  ASSERT_TRUE(WriteFileAtomic(RepoTargetPath("apps/demo/release-1.json"), "hello fleeT\n").ok());
  ExpectDownloadRejected("apps/demo/release-1.json", StatusCode::kCorruption,
                         "does not match its signed sha256");
}

TEST_F(AdversarialTargets, TargetShorterThanItsSignedLengthIsRejected) {
  ASSERT_TRUE(WriteFileAtomic(RepoTargetPath("apps/demo/release-1.json"), "hello\n").ok());
  ExpectDownloadRejected("apps/demo/release-1.json", StatusCode::kCorruption,
                         "the signed length is 12");
}

TEST_F(AdversarialTargets, TargetLongerThanItsSignedLengthIsCutThere) {
  ASSERT_TRUE(
      WriteFileAtomic(RepoTargetPath("apps/demo/release-1.json"), "hello fleet\nmore\n").ok());
  ExpectDownloadRejected("apps/demo/release-1.json", StatusCode::kResourceExhausted,
                         "more than the limit of 12");
}

TEST_F(AdversarialTargets, UnknownTargetIsNotFound) {
  ExpectDownloadRejected("apps/demo/release-2.json", StatusCode::kNotFound, "no target named");
}

TEST_F(AdversarialTargets, TargetNameWithDotDotInSignedTargetsIsRejected) {
  ASSERT_TRUE(Refresh().ok());
  uint64_t step = 0;
  for (const char* evil : {"../../etc/passwd", "apps/../../x", "/etc/passwd", "a//b", "a\\..\\b"}) {
    SCOPED_TRACE(evil);
    ++step;
    uint64_t targets_version = repo_->targets().common.version + step;
    std::string name = std::to_string(targets_version) + ".targets.json";
    Json tg = ReadSigned("targets.json");
    tg["version"] = targets_version;
    tg["targets"][evil] = tg["targets"]["apps/demo/release-1.json"];
    WriteSigned(name, tg, {&targets_key_});
    uint64_t snapshot_version = repo_->snapshot().common.version + step;
    RewriteSnapshotFor(std::to_string(snapshot_version) + ".snapshot.json", snapshot_version, name,
                       targets_version, repo_->timestamp().common.version + step);
    ExpectRefreshRejected(StatusCode::kPermissionDenied, "target name", {},
                          {"timestamp.json", "snapshot.json"});
    auto client = TufClient::Open(client_dir_, *remote_, clock_);
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(ReadTextFileBounded(client_dir_ + "/targets.json", 1 << 20).value(),
              ReadRaw(std::to_string(repo_->targets().common.version) + ".targets.json"));
  }
}

TEST_F(AdversarialTargets, NamesWithSlashPercentAndQuestionMarkStayInsideTheTargetDir) {
  const std::vector<std::string> names = {"dir/file", "100%.txt", "a%2F..%2Fb", "what?x=1",
                                          "hash#frag"};
  std::vector<TargetInput> inputs;
  for (const auto& n : names) inputs.push_back({n, "content of " + n, Json()});
  ASSERT_TRUE(repo_->AddTargets(inputs, AllKeys()).ok());
  for (const auto& n : names) {
    SCOPED_TRACE(n);
    auto got = Download(n);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(fs::path(got->path).parent_path(), fs::path(target_dir_));
    EXPECT_EQ(fs::path(got->path).filename().string(), PercentEncode(n));
    EXPECT_EQ(ReadTextFileBounded(got->path, 100).value(), "content of " + n);
  }
  // Nothing but the five files was created, and nothing outside target_dir_.
  EXPECT_EQ(std::distance(fs::directory_iterator(target_dir_), fs::directory_iterator()), 5);
  EXPECT_FALSE(fs::exists(temp_dir_ + "/b"));
}

TEST_F(AdversarialTargets, LookupOfAnUnsafeNameIsRefused) {
  ExpectDownloadRejected("../outside", StatusCode::kPermissionDenied, "'..' path segment");
}

TEST_F(AdversarialTargets, KeyFileWhosePublicHalfDoesNotMatchIsRefused) {
  const std::string key_file = temp_dir_ + "/not-the-root-key";
  ASSERT_TRUE(targets_key_.SaveFile(key_file).ok());
  // As a role key: the targets key is not a root key.
  auto loaded = LoadRoleKey(key_file, repo_->root(), RoleType::kRoot);
  ASSERT_FALSE(loaded.ok());
  ExpectStatus(loaded.status(), StatusCode::kPermissionDenied, "which is not a root key");
  // Offline signing with an expected public key: refused, nothing written.
  Json staged = repo_->StageRoot({}).value().signed_json;
  WriteSigned("staged-root.json", staged, {});
  Status st = SignMetadataFile(MetadataPath("staged-root.json"), key_file,
                               root_keys_[0].public_key(), temp_dir_ + "/signed-root.json");
  ExpectStatus(st, StatusCode::kPermissionDenied, "not the expected");
  EXPECT_FALSE(fs::exists(temp_dir_ + "/signed-root.json"));
}

TEST_F(AdversarialTargets, UnsupportedHashAlgorithmOnlyIsRejected) {
  ASSERT_TRUE(Refresh().ok());
  std::string name = std::to_string(repo_->targets().common.version + 1) + ".targets.json";
  Json tg = ReadSigned("targets.json");
  tg["version"] = repo_->targets().common.version + 1;
  Json& entry = tg["targets"]["apps/demo/release-1.json"];
  entry["hashes"] = {{"md5", "00112233445566778899aabbccddeeff"}};
  WriteSigned(name, tg, {&targets_key_});
  RewriteSnapshotFor(std::to_string(repo_->snapshot().common.version + 1) + ".snapshot.json",
                     repo_->snapshot().common.version + 1, name,
                     repo_->targets().common.version + 1, repo_->timestamp().common.version + 1);
  ExpectDownloadRejected("apps/demo/release-1.json", StatusCode::kCorruption,
                         "lists no hash flotilla computes (sha256, sha512)");
}

}  // namespace
}  // namespace flotilla::metadata::testing
