// The notice board on a fake clock over real files: a held request answered
// when its device's fleet timestamp (its state file, or an older tracker's
// timestamp.json) or the image timestamp changes (written by rename, as
// every metadata writer does), "unchanged" at its deadline,
// never for another device's change; a second request of a device drops its
// first; the cap on held requests.
#include "tracker/service/notice_board.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/zstd_stream.h"
#include "tests/support/test_util.h"
#include "tracker/storage/device_state.h"

namespace flotilla::tracker {
namespace {

using std::chrono::seconds;

class NoticeBoardTest : public ::testing::Test {
 protected:
  // The repository's image timestamp, device a's fleet repository as a state
  // file (tracker/storage/device_state.h) and device b's as an older
  // tracker's metadata/timestamp.json.
  void SetUp() override {
    dir_ = testing::MakeTempDir("notice-board-");
    ASSERT_FALSE(dir_.empty());
    repo_.root = dir_;
    std::filesystem::create_directories(repo_.metadata_dir());
    std::filesystem::create_directories(repo_.fleet_device_dir("a"));
    std::filesystem::create_directories(repo_.fleet_device_dir("b") + "/metadata");
    Sign(repo_.metadata_dir() + "/timestamp.json", 7);
    SignState("a", 3);
    Sign(repo_.fleet_device_dir("b") + "/metadata/timestamp.json", 5);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Timestamp(uint64_t version) {
    return Json{{"signatures", Json::array()},
                {"signed", {{"_type", "timestamp"}, {"version", version}}}}
        .dump();
  }
  // A timestamp document of `version`, replaced atomically.
  void Sign(const std::string& path, uint64_t version) {
    ASSERT_TRUE(WriteFileAtomic(path, Timestamp(version)).ok());
  }
  // Device `id`'s state file with its timestamp at `version`, replaced atomically.
  void SignState(const std::string& id, uint64_t version) {
    DeviceState state;
    state.root = 1;
    state.targets = version;
    state.snapshot = version;
    state.timestamp = version;
    state.expires = 2'000'000'000;
    state.document_sha256 = std::string(64, 'a');
    state.files = {{"timestamp.json", Timestamp(version)}};
    ASSERT_TRUE(WriteFileAtomic(repo_.fleet_device_dir(id) + "/" + kDeviceStateFile,
                                FormatDeviceState(state))
                    .ok());
  }
  NoticeBoard Board(size_t max_held = 10) {
    return NoticeBoard({.max_wait = seconds(50), .max_held = max_held}, clock_, repo_);
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
  RepositoryLayout repo_;
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
  SignState("a", 4);
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
  Sign(repo_.metadata_dir() + "/timestamp.json", 8);
  board.Tick();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, (Json{{"changed", true}, {"image", 8}, {"fleet", 3}}));
  EXPECT_EQ(*b, (Json{{"changed", true}, {"image", 8}, {"fleet", 5}}));
  EXPECT_EQ(board.held(), 0u);
}

TEST_F(NoticeBoardTest, ANewLogRequestWakesOnlyADeviceThatTakesThem) {
  NoticeBoard board = Board();
  std::map<std::string, uint64_t> pending;
  int reads = 0;
  board.set_pending_logs([&] {
    ++reads;
    return pending;
  });
  std::optional<Json> a, b;
  board.Hold("a", {7, 3, 0}, seconds(30),
             [&a](http::Reply reply) { a = ParseJsonStrict(reply.body).value(); }, {.logs = true});
  Hold(board, "b", {7, 5}, b);  // an older node: no `logs`
  board.Tick();
  EXPECT_FALSE(a || b);
  EXPECT_EQ(reads, 1);
  pending = {{"a", 12}, {"b", 4}};
  board.Tick();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (Json{{"changed", true}, {"image", 7}, {"fleet", 3}, {"logs", 12}}));
  EXPECT_FALSE(b) << "a device that did not ask with logs is not woken for them";
  board.Tick();
  EXPECT_EQ(reads, 2) << "no held request takes log requests: the database is not read";
  // Asking again with the request seen: held until a newer one, not woken
  // when the device's own upload closes it.
  a.reset();
  board.Hold("a", {7, 3, 12}, seconds(30),
             [&a](http::Reply reply) { a = ParseJsonStrict(reply.body).value(); }, {.logs = true});
  board.Tick();
  pending.erase("a");
  board.Tick();
  EXPECT_FALSE(a);
  pending["a"] = 13;
  board.Tick();
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)["logs"], 13);
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
  Sign(repo_.metadata_dir() + "/timestamp.json", 9);
  board.Tick();
  EXPECT_FALSE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["image"], 9);
  EXPECT_TRUE(board.HasRoomFor("c"));
}

TEST_F(NoticeBoardTest, AMalformedOrMissingTimestampReadsAsZero) {
  EXPECT_EQ(TimestampFileVersion(dir_ + "/missing.json"), 0u);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad.json", "{\"signed\": {\"version\": -1}}").ok());
  EXPECT_EQ(TimestampFileVersion(dir_ + "/bad.json"), 0u);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad.json", "not json").ok());
  EXPECT_EQ(TimestampFileVersion(dir_ + "/bad.json"), 0u);
  ASSERT_TRUE(WriteFileAtomic(repo_.fleet_device_dir("a") + "/state", "not a state file").ok());
  VersionProbe probe;
  EXPECT_EQ(FleetTimestampVersion(repo_, "a", probe), 0u);
  SignState("a", 12);
  EXPECT_EQ(FleetTimestampVersion(repo_, "a", probe), 12u);
  EXPECT_EQ(FleetTimestampVersion(repo_, "b", probe), 5u) << "an older tracker's layout";
  EXPECT_EQ(FleetTimestampVersion(repo_, "c", probe), 0u) << "no fleet repository";
}

TEST_F(NoticeBoardTest, AChangeOfTheOlderLayoutIsSeenToo) {
  NoticeBoard board = Board();
  std::optional<Json> b;
  Hold(board, "b", {7, 5}, b);
  board.Tick();
  EXPECT_FALSE(b);
  Sign(repo_.fleet_device_dir("b") + "/metadata/timestamp.json", 6);
  board.Tick();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (Json{{"changed", true}, {"image", 7}, {"fleet", 6}}));
}

// docs/tracker.md, "Notice": with `files=1` a fleet change carries the
// device's current fleet files, as the fleet route serves them, and the
// newest root version it offers; zstd-encoded when the device accepts it.
TEST_F(NoticeBoardTest, AFleetChangeCarriesTheFilesToADeviceThatAsksForThem) {
  const std::string sha(64, 'c');
  DeviceState state;
  state.root = 2;
  state.targets = 4;
  state.snapshot = 4;
  state.timestamp = 4;
  state.expires = 2'000'000'000;
  state.document_sha256 = sha;
  state.files = {{"timestamp.json", Timestamp(4)},
                 {"4.snapshot.json", R"({"s":4})"},
                 {"4.targets.json", R"({"t":4})"},
                 {sha + ".device.json", R"({"d":"a"})"},
                 {"3.targets.json", R"({"t":3})"}};
  const Json files{{"root", 2},
                   {"metadata",
                    {{"timestamp.json", Timestamp(4)},
                     {"4.snapshot.json", R"({"s":4})"},
                     {"4.targets.json", R"({"t":4})"}}},
                   {"targets", {{sha + ".device.json", R"({"d":"a"})"}}}};
  NoticeBoard board = Board();
  std::vector<http::Reply> replies;
  for (NoticeAsk ask : {NoticeAsk{.fleet_files = true},
                        NoticeAsk{.fleet_files = true, .zstd = true}, NoticeAsk{}}) {
    board.Hold(
        "a", {7, 3}, seconds(30),
        [&replies](http::Reply reply) { replies.push_back(std::move(reply)); }, ask);
    if (replies.empty()) {
      ASSERT_TRUE(WriteFileAtomic(repo_.fleet_device_dir("a") + "/" + kDeviceStateFile,
                                  FormatDeviceState(state))
                      .ok());
    }
    board.Tick();
  }
  ASSERT_EQ(replies.size(), 3u);
  Json plain = ParseJsonStrict(replies[0].body).value();
  EXPECT_EQ(plain["fleet_files"], files);
  EXPECT_EQ(plain["fleet"], 4);
  EXPECT_EQ(replies[0].headers,
            (std::vector<std::pair<std::string, std::string>>{{"Cache-Control", "no-store"}}));

  const auto& zstd = replies[1];
  EXPECT_EQ(zstd.headers, (std::vector<std::pair<std::string, std::string>>{
                              {"Cache-Control", "no-store"}, {"Content-Encoding", "zstd"}}));
  auto decoded = ZstdDecompress(AsBytes(zstd.body), 1 << 20);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(ParseJsonStrict(AsStringView(*decoded)).value(), plain);
  EXPECT_LT(zstd.body.size(), replies[0].body.size());

  EXPECT_EQ(ParseJsonStrict(replies[2].body).value(),
            (Json{{"changed", true}, {"image", 7}, {"fleet", 4}}))
      << "a device that did not ask gets the answer it always had";
}

TEST_F(NoticeBoardTest, NoFilesWithoutAFleetChangeOrAWholeStateFile) {
  NoticeBoard board = Board();
  std::optional<Json> a, b;
  board.Hold(
      "a", {7, 3}, seconds(30), [&a](http::Reply r) { a = ParseJsonStrict(r.body).value(); },
      NoticeAsk{.fleet_files = true});
  board.Hold(
      "b", {7, 5}, seconds(30), [&b](http::Reply r) { b = ParseJsonStrict(r.body).value(); },
      NoticeAsk{.fleet_files = true});
  Sign(repo_.metadata_dir() + "/timestamp.json", 8);  // an image change only
  board.Tick();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(a->contains("fleet_files"));
  EXPECT_FALSE(b->contains("fleet_files"));
  // An older tracker's layout (no state file): the device fetches its files.
  b.reset();
  board.Hold(
      "b", {8, 5}, seconds(30), [&b](http::Reply r) { b = ParseJsonStrict(r.body).value(); },
      NoticeAsk{.fleet_files = true});
  Sign(repo_.fleet_device_dir("b") + "/metadata/timestamp.json", 6);
  board.Tick();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (Json{{"changed", true}, {"image", 8}, {"fleet", 6}}));
  EXPECT_FALSE(CarriedFleetFiles(repo_, "b"));
  EXPECT_FALSE(CarriedFleetFiles(repo_, "no-such-device"));
}

TEST(NoticeReplyTest, IsNeverCached) {
  http::Reply reply = NoticeReply(true, {.image = 1, .fleet = 2});
  EXPECT_EQ(reply.content_type, "application/json");
  ASSERT_EQ(reply.headers.size(), 1u);
  EXPECT_EQ(reply.headers[0], (std::pair<std::string, std::string>{"Cache-Control", "no-store"}));
}

}  // namespace
}  // namespace flotilla::tracker
