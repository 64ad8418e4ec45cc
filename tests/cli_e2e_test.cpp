#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/digest.h"
#include "core/ed25519.h"
#include "core/file_io.h"
#include "core/version.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("cli"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CliTest, EveryBinaryHasVersionAndHelp) {
  for (const char* name : {"flotilla-tracker", "flotilla-node", "flotilla-sim"}) {
    auto version = RunShell(BinaryPath(name) + " --version");
    EXPECT_EQ(version.exit_code, 0) << name << ": " << version.output;
    EXPECT_NE(version.output.find(kVersion), std::string::npos) << version.output;
    auto help = RunShell(BinaryPath(name) + " --help");
    EXPECT_EQ(help.exit_code, 0) << name;
    EXPECT_NE(help.output.find("flotilla"), std::string::npos);
    EXPECT_NE(help.output.find("--version"), std::string::npos);
  }
}

TEST_F(CliTest, UnknownSubcommandIsAClearError) {
  auto r = RunShell(BinaryPath("flotilla-tracker") + " frobnicate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("frobnicate"), std::string::npos) << r.output;
}

// flotilla-node is a static front end that runs `app ...` itself and execs
// flotilla-node-full for the rest: both halves answer, in one process, and a
// missing flotilla-node-full is a clear error, not a crash.
TEST_F(CliTest, NodeFrontEndRunsAppItselfAndExecsTheRest) {
  const std::string node = BinaryPath("flotilla-node");
  auto headers = RunShell("readelf -l " + node);
  EXPECT_EQ(headers.exit_code, 0) << headers.output;
  EXPECT_EQ(headers.output.find("interpreter"), std::string::npos) << "not static";
  auto app_help = RunShell(node + " app --help");
  EXPECT_EQ(app_help.exit_code, 0) << app_help.output;
  EXPECT_NE(app_help.output.find("deploy"), std::string::npos) << app_help.output;
  // `run --help` is the daemon's, answered by flotilla-node-full.
  auto run_help = RunShell(node + " run --help");
  EXPECT_EQ(run_help.exit_code, 0) << run_help.output;
  EXPECT_NE(run_help.output.find("--config"), std::string::npos) << run_help.output;
  auto digest = RunShell(node + " digest " + node);
  EXPECT_EQ(digest.exit_code, 0) << digest.output;
  // Alone in a directory, the front end still runs `app` and explains the rest.
  const std::string lonely = dir_ + "/flotilla-node";
  std::filesystem::copy_file(node, lonely);
  auto alone_app = RunShell(lonely + " app ls --help");
  EXPECT_EQ(alone_app.exit_code, 0) << alone_app.output;
  if (!std::filesystem::exists("/usr/libexec/flotilla/flotilla-node-full")) {
    auto alone = RunShell(lonely + " status");
    EXPECT_EQ(alone.exit_code, 127) << alone.output;
    EXPECT_NE(alone.output.find("cannot start flotilla-node-full"), std::string::npos)
        << alone.output;
    const std::string beside = std::filesystem::canonical(dir_).string() + "/flotilla-node-full";
    EXPECT_NE(alone.output.find(beside), std::string::npos) << alone.output;
  }
}

TEST_F(CliTest, KeygenWritesAUsableKeyAndNeverOverwrites) {
  const std::string key = dir_ + "/keys/root";
  auto r = RunShell(BinaryPath("flotilla-tracker") + " keygen " + key);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  struct stat st;
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pub_hex = ReadTextFileBounded(key + ".pub", 100).value();
  auto pub = Ed25519PublicKey::FromHex(pub_hex.substr(0, 64)).value();
  auto loaded = Ed25519PrivateKey::LoadFile(key, pub);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(VerifyEd25519(pub, AsBytes("m"), loaded->Sign(AsBytes("m"))).ok());
  EXPECT_EQ(r.output.find(HexEncode(ReadFileBounded(key, 32).value())), std::string::npos)
      << "the secret seed must never be printed";

  auto again = RunShell(BinaryPath("flotilla-tracker") + " keygen " + key);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("refusing to overwrite"), std::string::npos) << again.output;
  EXPECT_TRUE(Ed25519PrivateKey::LoadFile(key, pub).ok());
}

TEST_F(CliTest, NodeDigestMatchesTheLibrary) {
  const std::string file = dir_ + "/blob";
  ASSERT_TRUE(WriteFileAtomic(file, "hello flotilla").ok());
  auto r = RunShell(BinaryPath("flotilla-node") + " digest " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, Digest::Of("hello flotilla").ToString() + "  " + file + "\n");
  EXPECT_NE(RunShell(BinaryPath("flotilla-node") + " digest " + dir_ + "/missing").exit_code, 0);
}

}  // namespace
}  // namespace flotilla::testing
