// agent.json: written and read back, members a newer agent adds ignored, a
// newer format refused with a message, a missing file read as nothing
// installed.
#include "node/agent/agent_slots.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::node::agent {
namespace {

AgentSlots Example() {
  AgentSlots s;
  s.confirmed = 5;
  s.previous = 4;
  s.floor = 4;
  s.candidate = Candidate{6, 0, 4711, "0f6b2a6e", 812};
  s.rolled_back = RolledBack{3, "exited before it proved itself", 1796600000, false};
  return s;
}

TEST(AgentSlotsTest, FileRoundTripsAndAMissingFileIsNothingInstalled) {
  const std::string path = flotilla::testing::MakeTempDir("agent-slots") + "/agent.json";
  ASSERT_EQ(LoadAgentSlots(path).value(), AgentSlots{});
  ASSERT_TRUE(SaveAgentSlots(path, Example()).ok());
  EXPECT_EQ(LoadAgentSlots(path).value(), Example());
  AgentSlots staged;
  staged.candidate = Candidate{2, 1, 0, "", 0};
  ASSERT_TRUE(SaveAgentSlots(path, staged).ok());
  EXPECT_EQ(LoadAgentSlots(path).value(), staged);
  EXPECT_EQ(ReadTextFileBounded(path, 4096).value().find("pid"), std::string::npos);
}

TEST(AgentSlotsTest, MembersANewerAgentAddsAreIgnoredAndANewerFormatIsRefused) {
  auto read = ParseAgentSlots(
      R"({"format":1,"confirmed":5,"future":{"x":1},"candidate":{"release":6,"tries_left":1,"why":"y"}})",
      "agent.json");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->confirmed, 5u);
  EXPECT_EQ(read->candidate->release, 6u);

  auto newer = ParseAgentSlots(R"({"format":2,"confirmed":5})", "agent.json");
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().message(), "agent.json: format 2 is newer than this agent reads (1)");
}

TEST(AgentSlotsTest, BadFilesAreCorruptionNamingTheMember) {
  auto tries = ParseAgentSlots(
      R"({"format":1,"confirmed":5,"candidate":{"release":6,"tries_left":2}})", "agent.json");
  ASSERT_FALSE(tries.ok());
  EXPECT_EQ(tries.status().code(), StatusCode::kCorruption);
  EXPECT_NE(tries.status().message().find("candidate.tries_left"), std::string::npos)
      << tries.status().message();
  EXPECT_FALSE(ParseAgentSlots(R"({"format":1})", "agent.json").ok());
  EXPECT_FALSE(ParseAgentSlots("{\"format\":1,\"confirmed\":5", "agent.json").ok());
  EXPECT_FALSE(ParseAgentSlots(R"({"format":1,"confirmed":5,"confirmed":6})", "agent.json").ok());
}

TEST(AgentSlotsTest, TheLockIsHeldUntilItsHolderGoesAway) {
  const std::string path = flotilla::testing::MakeTempDir("agent-lock") + "/agent.lock";
  auto other_holder = [&] {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    const bool got = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0) ::close(fd);
    return got;
  };
  {
    auto lock = SlotsLock::Acquire(path);
    ASSERT_TRUE(lock.ok()) << lock.status().ToString();
    EXPECT_FALSE(other_holder());
  }
  EXPECT_TRUE(other_holder());
}

}  // namespace
}  // namespace flotilla::node::agent
