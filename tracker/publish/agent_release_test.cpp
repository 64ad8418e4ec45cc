// The checks of `flotilla-tracker agent publish` on real executables: this
// machine's own, and arm64, armhf and armel (soft-float) ones that clang-14
// and lld-14 (scripts/setup.sh) link for the test, each with and without
// debug sections.
#include "tracker/publish/agent_release.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::tracker {
namespace {

class AgentReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("agent-release-");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A static executable for clang's `target`, with debug sections unless
  // `stripped` (compiled without -g); "" (and a failure naming the packages)
  // when it cannot be linked.
  std::string Executable(const std::string& target, bool stripped, const std::string& flags = "") {
    const std::string out = dir_ + "/" + target + (stripped ? "-stripped" : "-debug");
    auto built = testing::RunShell("printf 'void _start(void){for(;;);}\\n' > " + dir_ +
                                   "/start.c && clang-14 --target=" + target + " " + flags +
                                   (stripped ? "" : " -g") + " -nostdlib -static -fuse-ld=lld -o " +
                                   out + " " + dir_ + "/start.c 2>&1");
    EXPECT_EQ(built.exit_code, 0) << "clang-14 and lld-14 link the test's executables "
                                     "(scripts/setup.sh installs them): "
                                  << built.output;
    return built.exit_code == 0 ? out : "";
  }
  AgentArch Arch(const std::string& name) { return ParseAgentArch(name).value(); }

  std::string dir_;
};

TEST_F(AgentReleaseTest, ArchitecturesAreTheThreeDebianNames) {
  EXPECT_EQ(Arch("amd64").platform, "linux/amd64");
  EXPECT_EQ(Arch("arm64").app(), "flotilla-agent-arm64");
  EXPECT_EQ(Arch("armhf").platform, "linux/arm/v7");
  auto other = ParseAgentArch("aarch64");
  EXPECT_EQ(other.status().message(),
            "architecture 'aarch64': agents are published for amd64, arm64 and armhf");
}

TEST_F(AgentReleaseTest, ABinaryOfTheStatedArchitecturePassesAndAnotherIsRefused) {
  const std::string arm64 = Executable("aarch64-linux-gnu", true);
  const std::string armhf = Executable("armv7a-linux-gnueabihf", true);
  const std::string armel = Executable("armv7a-linux-gnueabi", true, "-mfloat-abi=soft");
  ASSERT_FALSE(arm64.empty() || armhf.empty() || armel.empty());
  EXPECT_TRUE(CheckAgentBinary(arm64, Arch("arm64")).ok());
  EXPECT_TRUE(CheckAgentBinary(armhf, Arch("armhf")).ok());
  // /bin/true: this machine's, stripped by Debian.
  const char* host = sizeof(void*) == 8 && std::filesystem::exists("/lib64/ld-linux-x86-64.so.2")
                         ? "amd64"
                         : nullptr;
  if (host != nullptr) EXPECT_TRUE(CheckAgentBinary("/bin/true", Arch(host)).ok());

  Status st = CheckAgentBinary(arm64, Arch("amd64"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), arm64 +
                              ": built for arm64, not amd64: give the binaries of the "
                              "architecture named by --arch");
  EXPECT_NE(CheckAgentBinary(armhf, Arch("arm64")).message().find("built for armhf, not arm64"),
            std::string::npos);
  EXPECT_NE(CheckAgentBinary(armel, Arch("armhf")).message().find("built for armel (soft float)"),
            std::string::npos);
  if (host != nullptr) {
    EXPECT_NE(CheckAgentBinary("/bin/true", Arch("armhf")).message().find("built for amd64"),
              std::string::npos);
  }
}

// Debug sections are refused with the way to strip them, not stripped here:
// the tracker publishes the bytes the agent's builder tested.
TEST_F(AgentReleaseTest, ABinaryWithDebugSectionsIsRefusedWithAHint) {
  const std::string debug = Executable("aarch64-linux-gnu", false);
  ASSERT_FALSE(debug.empty());
  Status st = CheckAgentBinary(debug, Arch("arm64"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(debug + ": carries debug sections (.debug_"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("strip --strip-debug"), std::string::npos) << st.message();
}

TEST_F(AgentReleaseTest, WhatIsNoRegularElfExecutableIsRefused) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/script", "#!/bin/sh\nexit 0\n").ok());
  EXPECT_EQ(CheckAgentBinary(dir_ + "/script", Arch("amd64")).message(),
            dir_ + "/script: not an ELF executable");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/cut", std::string("\x7f"
                                                         "ELF\x02\x01",
                                                         6))
                  .ok());
  EXPECT_EQ(CheckAgentBinary(dir_ + "/cut", Arch("amd64")).message(),
            dir_ + "/cut: not an ELF executable");
  std::filesystem::create_symlink("/bin/true", dir_ + "/link");
  EXPECT_FALSE(CheckAgentBinary(dir_ + "/link", Arch("amd64")).ok()) << "no link followed";
  EXPECT_EQ(CheckAgentBinary(dir_, Arch("amd64")).message(), dir_ + ": not a regular file");
}

TEST_F(AgentReleaseTest, TheThreeBinariesAreGivenByNameOrByTheirDirectory) {
  const std::string bin = dir_ + "/bin";
  std::filesystem::create_directories(bin);
  for (const char* name : {"flotilla-node", "flotilla-node-full", "flotilla-monitor", "other"}) {
    ASSERT_TRUE(WriteFileAtomic(bin + "/" + name, name).ok());
  }
  auto found = FindAgentBinaries({bin});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->size(), 3u);
  EXPECT_EQ(found->at("flotilla-monitor"), bin + "/flotilla-monitor");
  found = FindAgentBinaries(
      {bin + "/flotilla-monitor", bin + "/flotilla-node-full", bin + "/flotilla-node"});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->at("flotilla-node"), bin + "/flotilla-node");

  EXPECT_EQ(
      FindAgentBinaries({bin + "/flotilla-node", bin + "/flotilla-node-full"}).status().message(),
      "no flotilla-monitor given: an agent release is flotilla-node, flotilla-node-full "
      "and flotilla-monitor");
  EXPECT_NE(FindAgentBinaries({bin + "/flotilla-node", bin + "/other", bin + "/flotilla-monitor"})
                .status()
                .message()
                .find("other: not one of flotilla-node"),
            std::string::npos);
  std::filesystem::remove(bin + "/flotilla-node-full");
  EXPECT_EQ(FindAgentBinaries({bin}).status().code(), StatusCode::kNotFound);
}

// The image is an OCI layout of one uncompressed layer, the three files at
// its top (0755), for the architecture's platform.
TEST_F(AgentReleaseTest, TheImageIsOneLayerOfTheThreeBinaries) {
  std::map<std::string, std::string> binaries;
  for (const char* name : {"flotilla-node", "flotilla-node-full", "flotilla-monitor"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + name, std::string("bytes of ") + name).ok());
    binaries[name] = dir_ + "/" + name;
  }
  const std::string layout = dir_ + "/layout";
  ASSERT_TRUE(WriteAgentImage(binaries, Arch("armhf"), layout).ok());
  auto index = ParseJsonStrict(ReadTextFileBounded(layout + "/index.json", 1 << 20).value());
  ASSERT_TRUE(index.ok());
  const std::string manifest_digest = (*index)["manifests"][0]["digest"];
  auto manifest = ParseJsonStrict(
      ReadTextFileBounded(layout + "/blobs/sha256/" + manifest_digest.substr(7), 1 << 20).value());
  ASSERT_TRUE(manifest.ok());
  ASSERT_EQ((*manifest)["layers"].size(), 1u);
  EXPECT_EQ((*manifest)["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
  const std::string config_digest = (*manifest)["config"]["digest"];
  auto config = ParseJsonStrict(
      ReadTextFileBounded(layout + "/blobs/sha256/" + config_digest.substr(7), 1 << 20).value());
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((*config)["architecture"], "arm");
  EXPECT_EQ((*config)["variant"], "v7");
  const std::string layer_digest = (*manifest)["layers"][0]["digest"];
  auto listing =
      testing::RunShell("tar -tvf " + layout + "/blobs/sha256/" + layer_digest.substr(7) + " 2>&1");
  ASSERT_EQ(listing.exit_code, 0) << listing.output;
  EXPECT_NE(listing.output.find("-rwxr-xr-x"), std::string::npos) << listing.output;
  for (const char* name : {" flotilla-node\n", " flotilla-node-full\n", " flotilla-monitor\n"}) {
    EXPECT_NE(listing.output.find(name), std::string::npos) << listing.output;
  }
  EXPECT_EQ(std::count(listing.output.begin(), listing.output.end(), '\n'), 3);
}

}  // namespace
}  // namespace flotilla::tracker
