#include "sim/command.h"

#include <gtest/gtest.h>

namespace flotilla::sim {
namespace {

TEST(CommandTest, PassesStdinAndCollectsStdoutStderrAndExitCode) {
  auto r = RunCommand({"sh", "-c", "cat; echo oops >&2; exit 3"}, "hello\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, "hello\n");
  EXPECT_EQ(r->err, "oops\n");
  EXPECT_EQ(r->exit_code, 3);
}

TEST(CommandTest, ArgumentsAreNeverParsedByAShell) {
  auto r = RunChecked({"echo", "a; rm -rf /nonexistent", "$(id)"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "a; rm -rf /nonexistent $(id)\n");
}

TEST(CommandTest, ChildThatIgnoresItsStdinDoesNotKillUs) {
  std::string big(4 << 20, 'x');
  auto r = RunCommand({"true"}, big);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
}

TEST(CommandTest, FailuresCarryTheCommandAndItsStderr) {
  auto r = RunChecked({"sh", "-c", "echo 'no such device' >&2; exit 1"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no such device"), std::string::npos);
  EXPECT_NE(r.status().message().find("sh -c"), std::string::npos);
  EXPECT_FALSE(RunChecked({"/nonexistent/binary"}).ok());
}

TEST(CommandTest, OutputIsBounded) {
  auto r = RunCommand({"sh", "-c", "head -c 6000000 /dev/zero"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), kMaxCommandOutput);
}

}  // namespace
}  // namespace flotilla::sim
