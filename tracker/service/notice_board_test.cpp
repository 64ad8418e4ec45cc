// The notice board on a fake clock over real files: a held request answered
// when its device's fleet timestamp or the image timestamp changes (written
// by rename, as every metadata writer does), "unchanged" at its deadline,
// never for another device's change; a second request of a device drops its
// first; the cap on held requests.
#include "tracker/service/notice_board.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::tracker {
namespace {

using std::chrono::seconds;

class NoticeBoardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("notice-board-");
    ASSERT_FALSE(dir_.empty());
    std::filesystem::create_directories(dir_ + "/fleet/a");
    std::filesystem::create_directories(dir_ + "/fleet/b");
    Sign(dir_ + "/timestamp.json", 7);
    Sign(dir_ + "/fleet/a/timestamp.json", 3);
    Sign(dir_ + "/fleet/b/timestamp.json", 5);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A timestamp document of `version`, replaced atomically.
  void Sign(const std::string& path, uint64_t version) {
    const Json doc{{"signatures", Json::array()},
                   {"signed", {{"_type", "timestamp"}, {"version", version}}}};
    ASSERT_TRUE(WriteFileAtomic(path, doc.dump()).ok());
  }
  NoticeBoard Board(size_t max_held = 10) {
    return NoticeBoard(
        {.max_wait = seconds(50), .max_held = max_held}, clock_, dir_ + "/timestamp.json",
        [this](const std::string& id) { return dir_ + "/fleet/" + id + "/timestamp.json"; });
  }
  // Holds a request of `id` that records its answer in `out`.
  void Hold(NoticeBoard& board, const std::string& id, NoticeVersions seen,
            std::optional<Json>& out, int wait_s = 30) {
    board.Hold(id, seen, seconds(wait_s), [&out, id](http::Reply reply) {
      EXPECT_EQ(reply.authenticated_as, id);
      EXPECT_EQ(reply.status, http::status::ok);
      out = ParseJsonStrict(reply.body).value();
    });
  }

  std::string dir_;
  FakeClock clock_;
};

TEST_F(NoticeBoardTest, CurrentReadsBothVersions) {
  NoticeBoard board = Board();
  EXPECT_EQ(board.Current("a"), (NoticeVersions{.image = 7, .fleet = 3}));
  EXPECT_EQ(board.Current("no-such-device"), (NoticeVersions{.image = 7, .fleet = 0}));
}

TEST_F(NoticeBoardTest, AFleetChangeAnswersThatDeviceOnly) {
  NoticeBoard board = Board();
  std::optional<Json> a, b;
  Hold(board, "a", {7, 3}, a);
  Hold(board, "b", {7, 5}, b);
  board.Tick();
  EXPECT_FALSE(a || b) << "nothing changed";
  Sign(dir_ + "/fleet/a/timestamp.json", 4);
  board.Tick();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (Json{{"changed", true}, {"image", 7}, {"fleet", 4}}));
  EXPECT_FALSE(b);
  EXPECT_EQ(board.held(), 1u);
}

TEST_F(NoticeBoardTest, AnImageChangeAnswersEveryone) {
  NoticeBoard board = Board();
  std::optional<Json> a, b;
  Hold(board, "a", {7, 3}, a);
  Hold(board, "b", {7, 5}, b);
  board.Tick();
  Sign(dir_ + "/timestamp.json", 8);
  board.Tick();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, (Json{{"changed", true}, {"image", 8}, {"fleet", 3}}));
  EXPECT_EQ(*b, (Json{{"changed", true}, {"image", 8}, {"fleet", 5}}));
  EXPECT_EQ(board.held(), 0u);
}

TEST_F(NoticeBoardTest, UnchangedAtTheDeadline) {
  NoticeBoard board = Board();
  std::optional<Json> a;
  Hold(board, "a", {7, 3}, a, 10);
  clock_.Advance(seconds(9));
  board.Tick();
  EXPECT_FALSE(a);
  clock_.Advance(seconds(1));
  board.Tick();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (Json{{"changed", false}, {"image", 7}, {"fleet", 3}}));
}

TEST_F(NoticeBoardTest, ASecondRequestDropsTheFirstAndTheCapHolds) {
  NoticeBoard board = Board(/*max_held=*/2);
  std::optional<Json> first, second, b;
  bool first_dropped = false;
  {
    auto guard = std::shared_ptr<void>(nullptr, [&](void*) { first_dropped = true; });
    board.Hold("a", {7, 3}, seconds(30),
               [&first, guard](http::Reply r) { first = ParseJsonStrict(r.body).value(); });
  }
  Hold(board, "a", {7, 3}, second);
  EXPECT_TRUE(first_dropped) << "the first answer is destroyed: its connection closes";
  Hold(board, "b", {7, 5}, b);
  EXPECT_TRUE(board.HasRoomFor("a"));
  EXPECT_FALSE(board.HasRoomFor("c"));
  Sign(dir_ + "/timestamp.json", 9);
  board.Tick();
  EXPECT_FALSE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["image"], 9);
  EXPECT_TRUE(board.HasRoomFor("c"));
}

TEST_F(NoticeBoardTest, AMalformedOrMissingTimestampReadsAsZero) {
  TimestampProbe probe;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad.json", "{\"signed\": {\"version\": -1}}").ok());
  EXPECT_EQ(probe.Read(dir_ + "/bad.json"), 0u);
  EXPECT_EQ(probe.Read(dir_ + "/missing.json"), 0u);
  EXPECT_EQ(probe.Read(dir_ + "/timestamp.json"), 7u);
  Sign(dir_ + "/timestamp.json", 12);
  EXPECT_EQ(probe.Read(dir_ + "/timestamp.json"), 12u);
}

TEST(NoticeReplyTest, IsNeverCached) {
  http::Reply reply = NoticeReply(true, {.image = 1, .fleet = 2});
  EXPECT_EQ(reply.content_type, "application/json");
  ASSERT_EQ(reply.headers.size(), 1u);
  EXPECT_EQ(reply.headers[0], (std::pair<std::string, std::string>{"Cache-Control", "no-store"}));
}

}  // namespace
}  // namespace flotilla::tracker
