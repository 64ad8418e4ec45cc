// Delta artifacts through the real binaries: `flotilla-tracker delta create`,
// `flotilla-node store apply-delta / delta-info`, and `flotilla-tracker
// publish` making signed delta artifacts that a device applies to reproduce
// the signed diff_id.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;

const std::string kMakePair = std::string(FLOTILLA_SOURCE_DIR) + "/tests/delta/make_pair.sh";

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string FileDigest(const std::string& path) {
  auto digest = HashFile(path);
  return digest.ok() ? digest->ToString() : digest.status().ToString();
}

class DeltaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("delta-e2e");
    ASSERT_FALSE(dir_.empty());
    auto made = RunShell("bash " + kMakePair + " " + dir_ + " 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    v1_ = ReadLines(dir_ + "/v1.ids");
    v2_ = ReadLines(dir_ + "/v2.ids");
    ASSERT_EQ(v1_.size(), 2u);
    ASSERT_EQ(v2_.size(), 2u);
    ASSERT_NE(v1_[0], v2_[0]);
    ASSERT_NE(v1_[1], v2_[1]);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CommandResult Node(const std::string& store, const std::string& args) {
    return RunShell(BinaryPath("flotilla-node") + " store -q --store " + store + " " + args +
                    " 2>&1");
  }
  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  }

  std::string dir_;
  std::vector<std::string> v1_, v2_;
};

TEST_F(DeltaE2eTest, CreateApplyAndInfoThroughTheCli) {
  const std::string tracker_store = dir_ + "/tracker-store", device = dir_ + "/device";
  ASSERT_EQ(Node(tracker_store, "import " + dir_ + "/v1.tar").exit_code, 0);
  ASSERT_EQ(Node(tracker_store, "import " + dir_ + "/v2.tar").exit_code, 0);
  ASSERT_EQ(Node(device, "import " + dir_ + "/v1.tar").exit_code, 0);
  for (size_t i = 0; i < v2_.size(); ++i) {
    SCOPED_TRACE(v2_[i]);
    const std::string delta = dir_ + "/layer" + std::to_string(i) + ".delta";
    auto created =
        Tracker("delta create --store " + tracker_store + " --base " + v1_[0] + " --base " +
                v1_[1] + " --target " + v2_[i] + " -o " + delta + " --level 19 --threads 2");
    ASSERT_EQ(created.exit_code, 0) << created.output;
    EXPECT_NE(created.output.find("delta "), std::string::npos) << created.output;
    auto layer_size = fs::file_size(dir_ + "/v2.tar");
    EXPECT_LT(fs::file_size(delta), layer_size / 20) << "a few changed lines cost little";

    auto info = Node(device, "delta-info " + delta);
    ASSERT_EQ(info.exit_code, 0) << info.output;
    EXPECT_NE(info.output.find("target " + v2_[i]), std::string::npos) << info.output;
    EXPECT_NE(info.output.find("base   " + v1_[0]), std::string::npos) << info.output;

    const std::string out = dir_ + "/rebuilt" + std::to_string(i) + ".tar";
    auto applied = Node(device, "apply-delta " + delta + " -o " + out + " --unpack");
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    EXPECT_EQ(FileDigest(out), v2_[i]);
    auto layers = Node(device, "layers");
    EXPECT_NE(layers.output.find(v2_[i].substr(7, 12)), std::string::npos) << layers.output;
  }
}

TEST_F(DeltaE2eTest, CliRefusesACorruptDeltaAndAMissingBase) {
  const std::string tracker_store = dir_ + "/tracker-store";
  ASSERT_EQ(Node(tracker_store, "import " + dir_ + "/v1.tar").exit_code, 0);
  ASSERT_EQ(Node(tracker_store, "import " + dir_ + "/v2.tar").exit_code, 0);
  const std::string delta = dir_ + "/top.delta";
  ASSERT_EQ(Tracker("delta create --store " + tracker_store + " --base " + v1_[1] + " --target " +
                    v2_[1] + " -o " + delta)
                .exit_code,
            0);
  // A device without the base: refused, nothing written.
  const std::string empty_device = dir_ + "/empty-device", out = dir_ + "/out.tar";
  auto missing = Node(empty_device, "apply-delta " + delta + " -o " + out);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("NotFound"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(out));
  // A flipped byte in the middle: refused, nothing written.
  auto bytes = ReadFileBounded(delta, 64 << 20);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[bytes->size() / 2] ^= 0x10;
  ASSERT_TRUE(WriteFileAtomic(delta + ".bad", *bytes).ok());
  auto corrupt = Node(tracker_store, "apply-delta " + delta + ".bad -o " + out);
  EXPECT_NE(corrupt.exit_code, 0);
  EXPECT_NE(corrupt.output.find("Corruption"), std::string::npos) << corrupt.output;
  EXPECT_FALSE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().string().find(".partial"), std::string::npos) << entry.path();
  }
}

TEST_F(DeltaE2eTest, PublishSignsDeltasThatADeviceApplies) {
  const std::string repo = dir_ + "/repo";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/app.json",
                              std::string(R"({"name": "demo", "command": ["/bin/sh"]})"))
                  .ok());
  ASSERT_EQ(Tracker("init " + repo + " --public-url http://127.0.0.1:9").exit_code, 0);
  const std::string publish =
      "publish --repository " + repo + " --app demo --spec " + dir_ + "/app.json ";
  auto first = Tracker(publish + dir_ + "/v1.tar");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = Tracker(publish + dir_ + "/v2.tar");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("2 deltas"), std::string::npos) << second.output;

  // What a fresh client trusting only root v1 verifies.
  const std::string client = dir_ + "/client";
  fs::create_directories(client);
  auto root = ReadTextFileBounded(repo + "/metadata/1.root.json", 1 << 20);
  ASSERT_TRUE(root.ok());
  ASSERT_TRUE(metadata::TufClient::Initialize(client, *root).ok());
  metadata::DirectoryRemote remote(repo + "/metadata", repo + "/targets");
  auto tuf = metadata::TufClient::Open(client, remote, SystemClock::Instance());
  ASSERT_TRUE(tuf.ok()) << tuf.status().ToString();
  ASSERT_TRUE((*tuf)->Refresh().ok());
  auto latest = metadata::LatestReleases(*(*tuf)->targets());
  ASSERT_TRUE(latest.ok());
  const metadata::Release& release = latest->at("demo");
  EXPECT_EQ(release.version, 2u);

  const std::string device = dir_ + "/device";
  ASSERT_EQ(Node(device, "import " + dir_ + "/v1.tar").exit_code, 0);
  size_t deltas = 0;
  for (const auto& artifact : release.artifacts) {
    if (artifact.kind != metadata::ArtifactKind::kDelta) continue;
    ++deltas;
    SCOPED_TRACE(artifact.layer.ToString());
    EXPECT_EQ(artifact.bases.size(), 2u);
    EXPECT_EQ(artifact.bases[0].ToString(), v1_[0]);
    const std::string file = repo + "/artifacts/" + artifact.sha256.Hex();
    EXPECT_EQ(fs::file_size(file), artifact.length);
    EXPECT_EQ(FileDigest(file), artifact.sha256.ToString());
    EXPECT_TRUE(fs::exists(repo + "/torrents/" + artifact.sha256.Hex() + ".torrent"));
    uint64_t full = 0;
    for (const auto& a : release.artifacts) {
      if (a.kind == metadata::ArtifactKind::kFull && a.layer == artifact.layer) full = a.length;
    }
    EXPECT_LT(artifact.length, full * 9 / 10);
    const std::string out = dir_ + "/layer.tar";
    auto applied = Node(device, "apply-delta " + file + " -o " + out + " --unpack");
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    EXPECT_EQ(FileDigest(out), artifact.layer.ToString());
    fs::remove(out);
  }
  EXPECT_EQ(deltas, 2u);
}

}  // namespace
}  // namespace flotilla::testing
