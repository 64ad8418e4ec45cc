// Every flotilla-tracker command an operator reads has --json: the real
// binary's standard output is then one JSON document (progress and
// summaries go to stderr), with the figures the text form prints. The fleet
// and rollout commands are checked in fleet_cli_test.cpp and
// rollout_e2e_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;

const std::string kMakeImage = std::string(FLOTILLA_SOURCE_DIR) + "/tests/layerstore/make_image.sh";
constexpr char kSpec[] = R"({"name": "demo", "command": ["/bin/sh", "-c", "sleep 1000"]})";

class CliJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("cli-json");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs the command with --json; its standard output alone must be one
  // JSON document (standard error is kept apart, for the failure message).
  Json Run(const std::string& args) {
    const std::string err = dir_ + "/stderr";
    auto run =
        RunShell("{ " + BinaryPath("flotilla-tracker") + " " + args + " --json 2>" + err + "; }");
    const std::string stderr_text = ReadTextFileBounded(err, 1 << 20).value_or("");
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output << stderr_text;
    auto json = ParseJsonStrict(run.output);
    EXPECT_TRUE(json.ok()) << args << ": not one JSON document: " << run.output;
    EXPECT_TRUE(!json.ok() || json->is_object()) << run.output;
    return json.ok() ? *json : Json::object();
  }

  std::string dir_;
};

TEST_F(CliJsonTest, KeysRepositoryAndSigningCommands) {
  Json key = Run("keygen " + dir_ + "/operator");
  EXPECT_EQ(key["public_key_file"], dir_ + "/operator.pub");
  EXPECT_EQ(key["public_key"].get<std::string>() + "\n",
            ReadTextFileBounded(dir_ + "/operator.pub", 1 << 10).value_or(""));

  const std::string repo = dir_ + "/repo";
  Json init = Run("init " + repo + " --offline-keys " + dir_ + "/offline --public-url " +
                  "http://127.0.0.1:9");
  EXPECT_EQ(init["repository"], repo);
  EXPECT_EQ(init["offline_keys"], dir_ + "/offline");
  EXPECT_TRUE(fs::exists(init["root_key"].get<std::string>())) << init.dump();
  EXPECT_TRUE(fs::exists(init["configuration"].get<std::string>())) << init.dump();

  Run("keygen " + dir_ + "/kiosk");
  Json staged =
      Run("stage-app --repository " + repo + " --app kiosk --key-pub " + dir_ + "/kiosk.pub");
  const std::string pending = staged["staged"];
  EXPECT_TRUE(fs::exists(pending)) << staged.dump();
  Json signed_file = Run("sign " + pending + " --key " + dir_ + "/offline/targets.key");
  EXPECT_EQ(signed_file["signed"], pending);
  Json accepted = Run("accept --repository " + repo + " " + pending);
  EXPECT_EQ(accepted["role"], "targets");
  EXPECT_GE(accepted["version"].get<uint64_t>(), 2u);
  Json root =
      Run("stage-root --repository " + repo + " --rotate timestamp=" + dir_ + "/operator.pub");
  EXPECT_TRUE(fs::exists(root["staged"].get<std::string>())) << root.dump();

  Json releases = Run("releases --repository " + repo);
  EXPECT_EQ(releases["releases"], Json::array());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/blob", std::string(1000, 'x')).ok());
  Json artifact = Run("artifact add --repository " + repo + " --public-url http://127.0.0.1:9 " +
                      dir_ + "/blob");
  EXPECT_EQ(artifact["length"], 1000);
}

TEST_F(CliJsonTest, ImagePublishDeltaBundleBackupAndRestoreCommands) {
  fs::create_directories(dir_ + "/img");
  auto made = RunShell("bash " + kMakeImage + " " + dir_ + "/img 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // The image group's own options come before its subcommand.
  const std::string image = "image -q --store " + dir_ + "/store ";

  Json imported = Run(image + "import " + dir_ + "/img/docker.tar");
  ASSERT_EQ(imported["layers"].size(), 3u) << imported.dump();
  EXPECT_EQ(imported["format"], "docker-archive");
  Json images = Run(image + "ls");
  ASSERT_EQ(images["images"].size(), 1u);
  EXPECT_EQ(images["images"][0]["id"], imported["id"]);
  Json delta =
      Run("delta create --store " + dir_ + "/store --base " +
          imported["layers"][1]["diff_id"].get<std::string>() + " --target " +
          imported["layers"][2]["diff_id"].get<std::string>() + " -o " + dir_ + "/delta.bin");
  EXPECT_EQ(delta["target"], imported["layers"][2]["diff_id"]);
  EXPECT_EQ(delta["delta_bytes"].get<uint64_t>(), fs::file_size(dir_ + "/delta.bin"));
  Json removed = Run(image + "rm " + imported["id"].get<std::string>());
  EXPECT_EQ(removed["layers_freed"], 3);

  const std::string repo = dir_ + "/repo";
  Run("init " + repo + " --public-url http://127.0.0.1:9");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/app.json", std::string(kSpec)).ok());
  Json published = Run("publish --repository " + repo + " --app demo --spec " + dir_ +
                       "/app.json " + dir_ + "/img/docker.tar");
  EXPECT_EQ(published["app"], "demo");
  EXPECT_EQ(published["release"], 1);
  EXPECT_EQ(published["pending"], nullptr);
  EXPECT_EQ(published["artifacts_made"], 3);
  Json releases = Run("releases --repository " + repo);
  ASSERT_EQ(releases["releases"].size(), 1u);
  EXPECT_EQ(releases["releases"][0]["layers"], 3);
  Json bundle =
      Run("bundle --repository " + repo + " --app demo --release 1 --out " + dir_ + "/demo.tar");
  EXPECT_EQ(bundle["artifacts"], 3);
  EXPECT_TRUE(fs::exists(dir_ + "/demo.tar"));

  Json backup = Run("backup --repository " + repo + " " + dir_ + "/backup");
  EXPECT_EQ(backup["backup"], dir_ + "/backup");
  EXPECT_GT(backup["entries"].get<uint64_t>(), 5u);
  Json restored = Run("restore " + dir_ + "/backup --repository " + dir_ + "/restored");
  EXPECT_EQ(restored["repository"], dir_ + "/restored");
  EXPECT_GT(restored["timestamp_version"].get<uint64_t>(), 1u);
}

}  // namespace
}  // namespace flotilla::testing
