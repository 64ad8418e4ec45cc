#include "core/command_groups.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/version.h"

namespace flotilla {
namespace {

// Runs `args` against an app with two groups ("a" answers 3, "b" answers 4).
int RunWith(std::vector<std::string> args, std::string* output = nullptr) {
  CLI::App app{"test program"};
  auto* a = app.add_subcommand("a", "first");
  auto* b = app.add_subcommand("b", "second");
  std::vector<CommandAction> groups = {[a] { return *a ? 3 : -1; }, [b] { return *b ? 4 : -1; }};
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  if (output != nullptr) ::testing::internal::CaptureStdout();
  int rc = RunCommandGroups(app, "prog", groups, static_cast<int>(argv.size()), argv.data());
  if (output != nullptr) *output = ::testing::internal::GetCapturedStdout();
  return rc;
}

TEST(CommandGroupsTest, TheChosenGroupRuns) {
  EXPECT_EQ(RunWith({"a"}), 3);
  EXPECT_EQ(RunWith({"b"}), 4);
}

TEST(CommandGroupsTest, NoSubcommandPrintsTheHelpAndFails) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunWith({}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("test program"), std::string::npos);
}

TEST(CommandGroupsTest, VersionAndParseErrorsAreCli11s) {
  std::string out;
  EXPECT_EQ(RunWith({"--version"}, &out), 0);
  EXPECT_EQ(out, std::string("prog ") + kVersion + "\n");
  ::testing::internal::CaptureStderr();
  EXPECT_NE(RunWith({"a", "b"}), 0);
  EXPECT_NE(RunWith({"--no-such-flag"}), 0);
  ::testing::internal::GetCapturedStderr();
}

}  // namespace
}  // namespace flotilla
