// `flotilla-node tuf` end to end: the real binary, real HTTP on loopback, the
// TUF reference implementation's repository and flotilla's own.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/repository.h"
#include "metadata/tuf_signing.h"
#include "tests/metadata/static_http_server.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using metadata::RoleType;

class TufCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    temp_ = MakeTempDir("tuf-e2e-");
    ASSERT_FALSE(temp_.empty());
    metadata_dir_ = temp_ + "/trusted";
    target_dir_ = temp_ + "/downloads";
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(temp_);
  }
  void Serve(const std::string& dir) {
    server_ = std::make_unique<StaticHttpServer>(
        std::vector<std::string>{"-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                                 dir},
        temp_ + "/http.log");
    ASSERT_GT(server_->port(), 0);
  }
  CommandResult Tuf(const std::string& args) {
    return RunShell(BinaryPath("flotilla-node") + " tuf --metadata-dir " + metadata_dir_ + " " +
                    args);
  }
  CommandResult Refresh() {
    return Tuf("--metadata-url " + server_->url("/metadata") + " refresh");
  }
  CommandResult Download(const std::string& name) {
    return Tuf("--metadata-url " + server_->url("/metadata") + " --target-name '" + name +
               "' --target-base-url " + server_->url("/targets") + " --target-dir " + target_dir_ +
               " download");
  }
  uint64_t TrustedVersion(const std::string& role) {
    auto text = ReadTextFileBounded(metadata_dir_ + "/" + role + ".json", 1 << 20);
    if (!text.ok()) return 0;
    return Json::parse(*text)["signed"]["version"].get<uint64_t>();
  }
  std::map<std::string, std::string> State() {
    std::map<std::string, std::string> state;
    for (const auto& dir : {metadata_dir_, target_dir_}) {
      if (!fs::exists(dir)) continue;
      for (const auto& e : fs::directory_iterator(dir)) {
        state[e.path()] = ReadTextFileBounded(e.path(), 64 << 20).value();
      }
    }
    return state;
  }

  std::string temp_, metadata_dir_, target_dir_;
  std::unique_ptr<StaticHttpServer> server_;
};

const std::string kFixture = std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/tuf-reference";

TEST_F(TufCliTest, ReferenceRepositoryRefreshesToRootV2AndDownloadsTheTarget) {
  Serve(kFixture);
  auto init = Tuf("init " + kFixture + "/metadata/1.root.json");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  EXPECT_EQ(TrustedVersion("root"), 1u);
  auto refresh = Refresh();
  ASSERT_EQ(refresh.exit_code, 0) << refresh.output;
  EXPECT_EQ(TrustedVersion("root"), 2u);
  EXPECT_EQ(TrustedVersion("timestamp"), 1u);
  EXPECT_EQ(TrustedVersion("snapshot"), 1u);
  EXPECT_EQ(TrustedVersion("targets"), 1u);
  // Trusted files are byte-for-byte what the server sent, under non-versioned names.
  EXPECT_EQ(ReadTextFileBounded(metadata_dir_ + "/root.json", 1 << 20).value(),
            ReadTextFileBounded(kFixture + "/metadata/2.root.json", 1 << 20).value());
  auto download = Download("apps/demo/release-1.json");
  ASSERT_EQ(download.exit_code, 0) << download.output;
  const std::string stored =
      "/targets/apps/demo/"
      "f6c4266aed92ab813ba19d876700457dab5a8dff5d584ac5664c911c36acdbb5.release-1.json";
  auto got = ReadTextFileBounded(target_dir_ + "/apps%2Fdemo%2Frelease-1.json", 1 << 20);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, ReadTextFileBounded(kFixture + stored, 1 << 20).value());
  EXPECT_EQ(Digest::Of(*got).Hex(),
            "f6c4266aed92ab813ba19d876700457dab5a8dff5d584ac5664c911c36acdbb5");
  // A second download finds the verified copy and does not fetch it again.
  auto again = Download("apps/demo/release-1.json");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("already present"), std::string::npos);
  EXPECT_EQ(server_->Requests(stored), 1);
  // The root chain was walked one version at a time and stopped at the first 404.
  EXPECT_EQ(server_->Requests("/metadata/2.root.json"), 1);
  EXPECT_EQ(server_->Requests("/metadata/3.root.json"), 3);
}

TEST_F(TufCliTest, UnknownTargetAndBadRootFailWithExitOne) {
  Serve(kFixture);
  ASSERT_EQ(Tuf("init " + kFixture + "/metadata/1.root.json").exit_code, 0);
  auto missing = Download("apps/demo/release-9.json");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no target named"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(target_dir_) && !fs::is_empty(target_dir_));
  ASSERT_TRUE(WriteFileAtomic(temp_ + "/bad-root.json", "{\"signed\": {}, \"signed\": {}}").ok());
  auto bad = RunShell(BinaryPath("flotilla-node") + " tuf --metadata-dir " + temp_ +
                      "/other init " + temp_ + "/bad-root.json");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("duplicate JSON key"), std::string::npos) << bad.output;
}

class FlotillaRepoOverHttp : public TufCliTest {
 protected:
  void SetUp() override {
    TufCliTest::SetUp();
    std::map<RoleType, metadata::RoleKeyConfig> roles;
    for (RoleType role : metadata::kAllRoles) {
      keys_.emplace(role, Ed25519PrivateKey::Generate());
      roles[role] = {{keys_.at(role).public_key()}, 1};
      ring_.Add(keys_.at(role));
    }
    auto repo =
        metadata::Repository::Create(temp_ + "/repo", roles, ring_, SystemClock::Instance());
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
    Serve(temp_ + "/repo");
    ASSERT_EQ(Tuf("init " + temp_ + "/repo/metadata/1.root.json").exit_code, 0);
  }
  metadata::Release DemoRelease(uint64_t version) {
    metadata::Release r;
    r.app = "demo";
    r.version = version;
    r.image = {Digest::Of("m"), Digest::Of("c"), "linux/arm64", {{Digest::Of("l"), 10}}};
    r.artifacts = {{Digest::Of("l"),
                    metadata::ArtifactKind::kFull,
                    {},
                    Digest::Of("a"),
                    5,
                    Digest::Of("t" + std::to_string(version)).bytes(),
                    "zstd"}};
    r.app_spec = Json{{"command", {"/demo"}}};
    return r;
  }

  std::map<RoleType, Ed25519PrivateKey> keys_;
  metadata::KeyRing ring_;
  std::unique_ptr<metadata::Repository> repo_;
};

TEST_F(FlotillaRepoOverHttp, ReleasesAndKeyRotationsReachTheClient) {
  ASSERT_TRUE(metadata::PublishRelease(*repo_, DemoRelease(1), ring_).ok());
  auto first = Download(metadata::ReleaseTargetName("demo", 1));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  // Rotate the targets and timestamp keys, publish release 2.
  auto targets2 = Ed25519PrivateKey::Generate(), timestamp2 = Ed25519PrivateKey::Generate();
  ring_.Add(targets2);
  ring_.Add(timestamp2);
  ASSERT_TRUE(repo_
                  ->RotateKeys({{RoleType::kTargets, {{targets2.public_key()}, 1}},
                                {RoleType::kTimestamp, {{timestamp2.public_key()}, 1}}},
                               ring_)
                  .ok());
  ASSERT_TRUE(metadata::PublishRelease(*repo_, DemoRelease(2), ring_).ok());
  auto second = Download(metadata::ReleaseTargetName("demo", 2));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(TrustedVersion("root"), 2u);
  auto bytes = ReadTextFileBounded(target_dir_ + "/apps%2Fdemo%2Frelease-2.json", 1 << 20);
  ASSERT_TRUE(bytes.ok());
  auto parsed = metadata::ParseRelease(ParseJsonStrict(*bytes).value());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->version, 2u);
}

TEST_F(FlotillaRepoOverHttp, OversizedTimestampIsCutAndNothingChanges) {
  ASSERT_EQ(Refresh().exit_code, 0);
  auto before = State();
  ASSERT_TRUE(
      WriteFileAtomic(temp_ + "/repo/metadata/timestamp.json", std::string(1 << 20, ' ')).ok());
  auto refresh = Refresh();
  EXPECT_EQ(refresh.exit_code, 1);
  EXPECT_NE(refresh.output.find("ResourceExhausted"), std::string::npos) << refresh.output;
  EXPECT_EQ(State(), before);
}

TEST_F(FlotillaRepoOverHttp, TamperedTargetIsRejectedAndNotKept) {
  ASSERT_TRUE(metadata::PublishRelease(*repo_, DemoRelease(1), ring_).ok());
  const auto& entry = repo_->targets().targets.at(metadata::ReleaseTargetName("demo", 1));
  std::string stored =
      temp_ + "/repo/targets/apps/demo/" + entry.hashes.at("sha256") + ".release-1.json";
  std::string bytes = ReadTextFileBounded(stored, 1 << 20).value();
  bytes[bytes.size() / 2] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(stored, bytes).ok());
  auto download = Download(metadata::ReleaseTargetName("demo", 1));
  EXPECT_EQ(download.exit_code, 1);
  EXPECT_NE(download.output.find("does not match its signed sha256"), std::string::npos)
      << download.output;
  EXPECT_TRUE(fs::is_empty(target_dir_));
}

TEST_F(FlotillaRepoOverHttp, UnreachableServerFailsAndChangesNothing) {
  ASSERT_EQ(Refresh().exit_code, 0);
  auto before = State();
  std::string url = server_->url("/metadata");
  server_.reset();  // nothing listens on that port any more
  auto refresh = Tuf("--metadata-url " + url + " refresh");
  EXPECT_EQ(refresh.exit_code, 1);
  EXPECT_NE(refresh.output.find("Unavailable"), std::string::npos) << refresh.output;
  EXPECT_EQ(State(), before);
}

TEST_F(FlotillaRepoOverHttp, OfflineRootSigningWithTheCommandLine) {
  ASSERT_EQ(Refresh().exit_code, 0);
  auto new_root = Ed25519PrivateKey::Generate();
  auto staged = repo_->StageRoot({{RoleType::kRoot, {{new_root.public_key()}, 1}}});
  ASSERT_TRUE(staged.ok());
  const std::string unsigned_root = temp_ + "/2.root.unsigned.json";
  ASSERT_TRUE(WriteFileAtomic(unsigned_root, metadata::SerializeDocument(*staged)).ok());
  ASSERT_TRUE(keys_.at(RoleType::kRoot).SaveFile(temp_ + "/old-root.key").ok());
  ASSERT_TRUE(new_root.SaveFile(temp_ + "/new-root.key").ok());
  auto sign = [&](const std::string& in, const std::string& key, const std::string& pub,
                  const std::string& out) {
    return RunShell(BinaryPath("flotilla-node") + " tuf sign " + in + " --key " + key +
                    " --public-key " + pub + " --out " + out);
  };
  // A key file that is not the key the operator expects signs nothing.
  auto wrong = sign(unsigned_root, temp_ + "/new-root.key",
                    keys_.at(RoleType::kRoot).public_key().Hex(), temp_ + "/wrong.json");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("not the expected"), std::string::npos) << wrong.output;
  EXPECT_FALSE(fs::exists(temp_ + "/wrong.json"));
  auto half = sign(unsigned_root, temp_ + "/old-root.key",
                   keys_.at(RoleType::kRoot).public_key().Hex(), temp_ + "/2.root.half.json");
  ASSERT_EQ(half.exit_code, 0) << half.output;
  auto full = sign(temp_ + "/2.root.half.json", temp_ + "/new-root.key",
                   new_root.public_key().Hex(), temp_ + "/2.root.json");
  ASSERT_EQ(full.exit_code, 0) << full.output;
  ASSERT_TRUE(
      repo_->PublishRoot(ReadTextFileBounded(temp_ + "/2.root.json", 1 << 20).value()).ok());
  auto refresh = Refresh();
  ASSERT_EQ(refresh.exit_code, 0) << refresh.output;
  EXPECT_EQ(TrustedVersion("root"), 2u);
}

}  // namespace
}  // namespace flotilla::testing
