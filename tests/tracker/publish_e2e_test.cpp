// End-to-end tests of `flotilla-tracker init / publish / releases` with the
// real binary: a busybox-static image made by umoci + skopeo
// (tests/layerstore/make_image.sh), checked by a fresh TUF client
// (metadata/tuf_client.h) that trusts only root version 1, artifacts checked
// byte for byte, SIGKILL during publish at many points, and serve answering
// metadata fetches while publish runs beside it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/clock.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "core/zstd_stream.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_metadata_remote.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using metadata::Release;

const std::string kMakeImage = std::string(FLOTILLA_SOURCE_DIR) + "/tests/layerstore/make_image.sh";
constexpr char kSpec[] = R"({"name": "demo", "command": ["/bin/sh", "-c", "sleep 1000"]})";

// A fresh client trusting only root version 1: refreshes through `remote` and
// returns the newest release of each app it verified.
Result<std::map<std::string, Release>> RefreshFreshClient(const std::string& repo,
                                                          const std::string& client_dir,
                                                          metadata::RemoteRepository& remote) {
  ASSIGN_OR_RETURN(std::string root, ReadTextFileBounded(repo + "/metadata/1.root.json", 1 << 20));
  RETURN_IF_ERROR(metadata::TufClient::Initialize(client_dir, root));
  ASSIGN_OR_RETURN(auto client,
                   metadata::TufClient::Open(client_dir, remote, SystemClock::Instance()));
  RETURN_IF_ERROR(client->Refresh());
  return metadata::LatestReleases(*client->targets());
}

Result<std::map<std::string, Release>> VerifyAsFreshClient(const std::string& repo,
                                                           metadata::RemoteRepository& remote) {
  const std::string client_dir = MakeTempDir("client");
  auto latest = RefreshFreshClient(repo, client_dir, remote);
  fs::remove_all(client_dir);
  return latest;
}

Result<std::map<std::string, Release>> VerifyAsFreshClient(const std::string& repo) {
  metadata::DirectoryRemote remote(repo + "/metadata", repo + "/targets");
  return VerifyAsFreshClient(repo, remote);
}

// Every artifact of `release`: the file has the signed length and sha256, its
// torrent exists, and it decompresses to exactly the layer the release pins.
void ExpectArtifactsMatch(const std::string& repo, const Release& release) {
  ASSERT_EQ(release.artifacts.size(), release.image.layers.size());
  for (size_t i = 0; i < release.artifacts.size(); ++i) {
    const auto& artifact = release.artifacts[i];
    const auto& layer = release.image.layers[i];
    SCOPED_TRACE(artifact.sha256.ToString());
    auto bytes = ReadFileBounded(repo + "/artifacts/" + artifact.sha256.Hex(), 64 << 20);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    EXPECT_EQ(bytes->size(), artifact.length);
    EXPECT_EQ(Digest::Of(*bytes), artifact.sha256);
    EXPECT_EQ(artifact.compression, "zstd");
    EXPECT_EQ(artifact.layer, layer.diff_id);
    auto tar = ZstdDecompress(*bytes, layer.length);
    ASSERT_TRUE(tar.ok()) << tar.status().ToString();
    EXPECT_EQ(tar->size(), layer.length);
    EXPECT_EQ(Digest::Of(*tar), layer.diff_id);
    auto torrent =
        ReadTextFileBounded(repo + "/torrents/" + artifact.sha256.Hex() + ".torrent", 1 << 20);
    ASSERT_TRUE(torrent.ok()) << torrent.status().ToString();
    EXPECT_NE(torrent->find("http://127.0.0.1:9/announce"), std::string::npos);
    EXPECT_NE(torrent->find("http://127.0.0.1:9/artifacts/" + artifact.sha256.Hex() + "/"),
              std::string::npos);
  }
}

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("publish");
    ASSERT_FALSE(dir_.empty());
    fs::create_directories(dir_ + "/img");
    auto made = RunShell("bash " + kMakeImage + " " + dir_ + "/img 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/app.json", std::string(kSpec)).ok());
    repo_ = dir_ + "/repo";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Tracker() const { return BinaryPath("flotilla-tracker"); }
  CommandResult Init(const std::string& repo, const std::string& extra = "") {
    return RunShell(Tracker() + " init " + repo + " --public-url http://127.0.0.1:9 " + extra +
                    " 2>&1");
  }
  std::string PublishCommand(const std::string& image, const std::string& spec = "") const {
    return Tracker() + " publish --repository " + repo_ + " --app demo --spec " +
           (spec.empty() ? dir_ + "/app.json" : spec) + " " + image;
  }
  CommandResult Publish(const std::string& image, const std::string& spec = "") {
    return RunShell(PublishCommand(image, spec) + " 2>&1");
  }
  uint64_t VisibleVersion() {
    auto latest = VerifyAsFreshClient(repo_);
    EXPECT_TRUE(latest.ok()) << latest.status().ToString();
    if (!latest.ok() || !latest->contains("demo")) return 0;
    return latest->at("demo").version;
  }

  std::string dir_;
  std::string repo_;
};

TEST_F(PublishTest, FreshClientVerifiesReleaseAndArtifactsMatchLayers) {
  auto init = Init(repo_);
  ASSERT_EQ(init.exit_code, 0) << init.output;
  for (const char* f :
       {"keys/targets.key", "keys/snapshot.key", "keys/timestamp.key", "keys/root.key",
        "metadata/1.root.json", "metadata/timestamp.json", "tracker.db", "tracker.json"}) {
    EXPECT_TRUE(fs::exists(repo_ + "/" + f)) << f;
  }
  EXPECT_EQ(fs::status(repo_ + "/keys").permissions() & fs::perms::group_all, fs::perms::none);

  auto published = Publish(dir_ + "/img/docker.tar");
  ASSERT_EQ(published.exit_code, 0) << published.output;
  EXPECT_NE(published.output.find("compressing"), std::string::npos) << published.output;
  EXPECT_NE(published.output.find("published demo release 1"), std::string::npos);

  auto latest = VerifyAsFreshClient(repo_);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  ASSERT_TRUE(latest->contains("demo"));
  const Release& release = latest->at("demo");
  EXPECT_EQ(release.version, 1u);
  EXPECT_EQ(release.image.layers.size(), 3u);
  EXPECT_EQ(release.app_spec, ParseJsonStrict(kSpec).value());  // carried verbatim
  ExpectArtifactsMatch(repo_, release);

  auto listed = RunShell(Tracker() + " releases --repository " + repo_ + " 2>&1");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("demo"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find(release.image.config.ToString()), std::string::npos);
}

TEST_F(PublishTest, PublishingAgainBumpsTheVersionAndReusesArtifacts) {
  ASSERT_EQ(Init(repo_).exit_code, 0);
  ASSERT_EQ(Publish(dir_ + "/img/docker.tar").exit_code, 0);
  auto second = Publish(dir_ + "/img/oci.tar");  // same layers, OCI archive form
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("3 reused"), std::string::npos) << second.output;
  // An OCI layout directory holding several images: one chosen by ref name.
  auto third = RunShell(PublishCommand("--select img " + dir_ + "/img/oci") + " 2>&1");
  ASSERT_EQ(third.exit_code, 0) << third.output;

  auto latest = VerifyAsFreshClient(repo_);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->at("demo").version, 3u);
  ExpectArtifactsMatch(repo_, latest->at("demo"));
  auto listed = RunShell(Tracker() + " releases --repository " + repo_);
  for (const char* line : {"demo                           1", "demo                           2",
                           "demo                           3"}) {
    EXPECT_NE(listed.output.find(line), std::string::npos) << listed.output;
  }
}

TEST_F(PublishTest, InvalidAppSpecIsRefusedAndNothingIsPublished) {
  ASSERT_EQ(Init(repo_).exit_code, 0);
  auto before = ReadTextFileBounded(repo_ + "/metadata/timestamp.json", 1 << 20).value();
  const std::string bad = dir_ + "/bad.json";
  struct Case {
    std::string spec;
    std::string expect;
  };
  for (const Case& c : {Case{R"({"name": "demo", "command": ["/x"], "mounts": [{"type": "bind",
                             "source": "relative", "destination": "/data"}]})",
                             "mounts"},
                        Case{R"({"name": "other", "command": ["/x"]})", "not the app"},
                        Case{R"({"name": "demo", "command": ["/x"], "bogus": 1})", "bogus"},
                        Case{R"({"name": "demo", "name": "demo"})", "app spec"}}) {
    ASSERT_TRUE(WriteFileAtomic(bad, c.spec).ok());
    auto r = Publish(dir_ + "/img/docker.tar", bad);
    EXPECT_NE(r.exit_code, 0) << c.spec;
    EXPECT_NE(r.output.find("app spec"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << r.output;
  }
  EXPECT_EQ(ReadTextFileBounded(repo_ + "/metadata/timestamp.json", 1 << 20).value(), before);
  EXPECT_EQ(VisibleVersion(), 0u);
}

TEST_F(PublishTest, InitRefusesToClobberAndTakesAnOfflineRootKey) {
  ASSERT_EQ(Init(repo_).exit_code, 0);
  auto root_before = ReadTextFileBounded(repo_ + "/metadata/root.json", 1 << 20).value();
  auto again = Init(repo_);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("refusing to clobber"), std::string::npos) << again.output;
  EXPECT_EQ(ReadTextFileBounded(repo_ + "/metadata/root.json", 1 << 20).value(), root_before);

  // A root key made elsewhere (offline) signs root v1 and is not copied in.
  auto keygen = RunShell(Tracker() + " keygen " + dir_ + "/offline/root.key 2>&1");
  ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
  const std::string repo2 = dir_ + "/repo2";
  auto init2 = Init(repo2, "--root-key " + dir_ + "/offline/root.key");
  ASSERT_EQ(init2.exit_code, 0) << init2.output;
  EXPECT_FALSE(fs::exists(repo2 + "/keys/root.key"));
  auto pub = ReadTextFileBounded(dir_ + "/offline/root.key.pub", 200).value();
  pub.pop_back();
  EXPECT_NE(ReadTextFileBounded(repo2 + "/metadata/1.root.json", 1 << 20)->find(pub),
            std::string::npos);
  repo_ = repo2;
  ASSERT_EQ(Publish(dir_ + "/img/docker.tar").exit_code, 0);  // no root key needed
  EXPECT_EQ(VisibleVersion(), 1u);
}

// Runs `command` in its own process group and SIGKILLs it after `delay`
// (unless it ended first). Returns true when it ran to completion.
bool RunAndKillAfter(const std::string& command, std::chrono::microseconds delay) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), nullptr);
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + delay;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(PublishTest, SigkillAtManyPointsLeavesOldOrNewReleaseAndRerunCompletes) {
  // How long an uninterrupted publish into a fresh repository takes here.
  const std::string probe = dir_ + "/probe";
  ASSERT_EQ(Init(probe).exit_code, 0);
  auto start = std::chrono::steady_clock::now();
  auto timed = RunShell(Tracker() + " publish --repository " + probe + " --app demo --spec " +
                        dir_ + "/app.json " + dir_ + "/img/docker.tar 2>&1");
  ASSERT_EQ(timed.exit_code, 0) << timed.output;
  const auto full = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);

  // Kill points spread over the first 3/4 of a publish, offset per round.
  // Later publishes reuse artifacts, and the machine's load changes while
  // the test runs, so a publish may beat its kill: the estimate follows the
  // fastest publish seen, and rounds go on (up to kMaxRounds) until at least
  // kMinKills publishes were killed.
  constexpr int kMinKills = 20;
  constexpr int kMaxRounds = 8;
  constexpr int kKillsPerRound = 8;
  constexpr int kOffsets = 4;  // kill points interleaved over 4 rounds
  auto estimate = full;
  int kills = 0;
  int completed = 0;
  for (int round = 0; round < kMaxRounds && kills < kMinKills; ++round) {
    repo_ = dir_ + "/crash" + std::to_string(round);
    ASSERT_EQ(Init(repo_).exit_code, 0);
    uint64_t visible = 0;
    for (int i = 0; i < kKillsPerRound; ++i) {
      const int offset = round % kOffsets;
      auto delay = estimate * 3 * (i * kOffsets + offset + 1) / (4 * kOffsets * kKillsPerRound);
      const auto started = std::chrono::steady_clock::now();
      bool finished = RunAndKillAfter(PublishCommand(dir_ + "/img/docker.tar"), delay);
      if (finished) {
        ++completed;
        estimate = std::min(estimate, std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now() - started));
      } else {
        ++kills;
      }
      SCOPED_TRACE("round " + std::to_string(round) + " kill " + std::to_string(i));
      const uint64_t now_visible = VisibleVersion();
      EXPECT_TRUE(now_visible == visible || now_visible == visible + 1)
          << "visible release went from " << visible << " to " << now_visible;
      if (finished) {
        EXPECT_EQ(now_visible, visible + 1);
      }
      if (now_visible > 0) {
        ExpectArtifactsMatch(repo_, VerifyAsFreshClient(repo_)->at("demo"));
      }
      visible = now_visible;
    }
    auto rerun = Publish(dir_ + "/img/docker.tar");
    ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
    EXPECT_EQ(VisibleVersion(), visible + 1);
    EXPECT_TRUE(fs::is_empty(repo_ + "/staging"));
  }
  std::printf("publish took %lld us (fastest %lld us); %d publishes killed, %d completed first\n",
              static_cast<long long>(full.count()), static_cast<long long>(estimate.count()), kills,
              completed);
  EXPECT_GE(kills, kMinKills);
}

TEST_F(PublishTest, ServedMetadataShowsTheNewReleaseWhilePublishRunsBeside) {
  ASSERT_EQ(Init(repo_).exit_code, 0);
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir_, repo_)) << tracker.Log();
  TrackerMetadataRemote remote(tracker.port());
  auto before = VerifyAsFreshClient(repo_, remote);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_TRUE(before->empty());

  for (uint64_t version = 1; version <= 2; ++version) {
    auto published = Publish(dir_ + "/img/docker.tar");
    ASSERT_EQ(published.exit_code, 0) << published.output;
    auto latest = VerifyAsFreshClient(repo_, remote);
    ASSERT_TRUE(latest.ok()) << latest.status().ToString();
    ASSERT_TRUE(latest->contains("demo"));
    EXPECT_EQ(latest->at("demo").version, version);
    for (const auto& artifact : latest->at("demo").artifacts) {
      HttpResponse r = HttpRequestTo(tracker.port(), "GET", "/artifacts/" + artifact.sha256.Hex());
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(Digest::Of(r.body), artifact.sha256);
    }
  }
  // The dashboard lists what publish recorded.
  HttpResponse page = HttpRequestTo(tracker.port(), "GET", "/");
  EXPECT_NE(page.body.find("demo"), std::string::npos);
  EXPECT_TRUE(tracker.running());
}

// A publish killed after its targets and snapshot but before its timestamp:
// the re-run puts the metadata back and publishes that same version.
TEST_F(PublishTest, RerunAfterAKillJustBeforeTheTimestampPublishesTheSameVersion) {
  ASSERT_EQ(Init(repo_).exit_code, 0);
  ASSERT_EQ(Publish(dir_ + "/img/docker.tar").exit_code, 0);
  {
    const std::string old_timestamp =
        ReadTextFileBounded(repo_ + "/metadata/timestamp.json", 1 << 20).value();
    auto repo = metadata::Repository::Open(repo_, SystemClock::Instance()).value();
    metadata::KeyRing ring;
    for (auto role : {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                      metadata::RoleType::kTimestamp}) {
      const std::string path = repo_ + "/keys/" + std::string(metadata::RoleName(role)) + ".key";
      ring.Add(metadata::LoadRoleKey(path, repo->root(), role).value());
    }
    Release half = metadata::LatestReleases(repo->targets()).value().at("demo");
    half.version = 2;
    ASSERT_TRUE(metadata::PublishRelease(*repo, half, ring).ok());
    ASSERT_TRUE(WriteFileAtomic(repo_ + "/metadata/timestamp.json", old_timestamp).ok());
  }
  EXPECT_EQ(VisibleVersion(), 1u);  // devices never saw the half release
  auto rerun = Publish(dir_ + "/img/docker.tar");
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("recovered:"), std::string::npos) << rerun.output;
  EXPECT_NE(rerun.output.find("published demo release 2"), std::string::npos) << rerun.output;
  EXPECT_EQ(VisibleVersion(), 2u);
}

// serve re-signs a timestamp that is past half its lifetime as soon as it starts.
TEST_F(PublishTest, ServeResignsATimestampNearItsExpiry) {
  ASSERT_EQ(Init(repo_).exit_code, 0);
  {
    // Sign the timestamp as if 13 of its 24 hours had passed already.
    FakeClock past(SystemClock::Instance().Now() - std::chrono::hours(13));
    auto repo = metadata::Repository::Open(repo_, past);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    auto key = metadata::LoadRoleKey(repo_ + "/keys/timestamp.key", (*repo)->root(),
                                     metadata::RoleType::kTimestamp);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    metadata::KeyRing ring;
    ring.Add(*key);
    ASSERT_TRUE((*repo)->ResignTimestamp(ring).ok());
  }
  auto version_of = [](const std::string& body) -> uint64_t {
    auto json = ParseJsonStrict(body);
    return json.ok() ? (*json)["signed"]["version"].get<uint64_t>() : 0;
  };
  const uint64_t before =
      version_of(ReadTextFileBounded(repo_ + "/metadata/timestamp.json", 1 << 20).value());
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir_, repo_)) << tracker.Log();
  uint64_t served = 0;
  for (int i = 0; i < 100 && served <= before; ++i) {
    served = version_of(HttpRequestTo(tracker.port(), "GET", "/metadata/timestamp.json").body);
    if (served <= before) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(served, before + 1) << tracker.Log();
  metadata::DirectoryRemote local(repo_ + "/metadata", repo_ + "/targets");
  EXPECT_TRUE(VerifyAsFreshClient(repo_, local).ok());
}

}  // namespace
}  // namespace flotilla::testing
