#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/digest.h"
#include "core/ed25519.h"
#include "core/file_io.h"
#include "core/version.h"
#include "tests/test_util.h"

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
