// flotilla-node run: bad configuration and a busy data directory give clear
// errors and exit codes (2: configuration, 1: cannot start).
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

class NodeCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("node-cli-"); }
  void TearDown() override { RunShell("rm -rf " + dir_); }
  CommandResult Run(const std::string& config_text) {
    EXPECT_TRUE(WriteFileAtomic(dir_ + "/c.json", config_text).ok());
    return RunShell("timeout 20 " + BinaryPath("flotilla-node") + " run --config " + dir_ +
                    "/c.json 2>&1");
  }
  std::string dir_;
};

TEST_F(NodeCli, BadConfigurationsNameWhatIsWrong) {
  Json good = NodeConfigFor("n", dir_ + "/data", "http://127.0.0.1:1", dir_ + "/none.json", "app");
  Json typo = good;
  typo["refresh_interval"] = 5;
  auto r = Run(typo.dump());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown key 'refresh_interval'"), std::string::npos) << r.output;

  Json mode = good;
  mode["transfer_mode"] = "carrier-pigeon";
  r = Run(mode.dump());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("transfer_mode"), std::string::npos) << r.output;

  r = Run("{not json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("c.json"), std::string::npos) << r.output;

  r = RunShell(BinaryPath("flotilla-node") + " run --config " + dir_ + "/missing.json 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("missing.json"), std::string::npos) << r.output;

  // A valid file whose root of trust is missing: the daemon cannot start.
  r = Run(good.dump());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("root_of_trust"), std::string::npos) << r.output;
}

TEST_F(NodeCli, SecondDaemonOnTheSameDataDirectoryIsRefused) {
  // Any root that parses will do: make one with the tracker's init.
  ASSERT_TRUE(InitRepository(dir_, dir_ + "/repo"));
  Json config = NodeConfigFor("n", dir_ + "/data", "http://127.0.0.1:1",
                              dir_ + "/repo/metadata/1.root.json", "app");
  NodeProcess first;
  ASSERT_TRUE(first.Start(dir_, config));
  ASSERT_TRUE(WaitFor([&] { return first.Log().find("started") != std::string::npos; },
                      std::chrono::seconds(20)))
      << first.Log();
  auto second = Run(config.dump());
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.output.find("another flotilla-node runs"), std::string::npos) << second.output;
  EXPECT_EQ(first.Stop(), 0);
}

}  // namespace
}  // namespace flotilla::testing
