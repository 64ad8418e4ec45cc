// The fleet commands with the real flotilla-tracker binary on a repository
// made by `init`: devices enrolled and releases recorded through the
// tracker's own database code, then tagged, grouped, pinned and recalled from
// the command line, on SQLite and on PostgreSQL (--database-url).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "tests/node/node_fixture.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/test_util.h"
#include "tracker/storage/device_db.h"

namespace flotilla::testing {
namespace {

class FleetCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("fleet-cli");
    ASSERT_FALSE(dir_.empty());
    const std::string repo = dir_ + "/repo";
    auto init = Tracker("init " + repo + " --public-url http://127.0.0.1:9");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    url_ = repo + "/tracker.db";
    db_flags_ = " --repository " + repo;
    if (GetParam() == "postgresql") {
      auto cluster = PostgresCluster::Shared();
      ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
      auto url = (*cluster)->CreateDatabase("fleet_cli");
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = *url;
      db_flags_ = " --database-url '" + url_ + "'";
    }
    auto db = tracker::DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (const char* name : {"screen-7", "screen-8", "lobby-1"}) {
      ASSERT_TRUE((*db)->Enroll(name, "shop-12").ok());
    }
    for (const char* release : {"6", "7", "8"}) {
      ASSERT_TRUE((*db)->RecordRelease("kiosk", release).ok());
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  }
  // Runs a fleet command on the test's database; it must succeed.
  std::string Fleet(const std::string& args) {
    auto run = Tracker(args + db_flags_);
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
    return run.output;
  }
  Json FleetJson(const std::string& args) {
    auto json = ParseJsonStrict(Fleet(args + " --json"));
    EXPECT_TRUE(json.ok()) << args << ": " << json.status().ToString();
    return json.ok() ? *json : Json();
  }

  std::string dir_;
  std::string url_;
  std::string db_flags_;
  FakeClock clock_;
};

TEST_P(FleetCliTest, TagGroupAssignPinRecallAndAskWhatADeviceRuns) {
  Json tagged = FleetJson("device tag screen-7 --add window --add outdoor");
  EXPECT_EQ(tagged["tags"], Json::array({"outdoor", "window"}));
  Fleet("device tag screen-8 --add window");
  Json moved = FleetJson("device move screen-8 --site shop-13");
  EXPECT_EQ(moved["site"], "shop-13");
  Json group = FleetJson("group create windows --select 'tag=window,site=shop-12'");
  EXPECT_EQ(group["selector"], "site=shop-12,tag=window");
  EXPECT_EQ(group["devices"], 1);
  Fleet("app assign kiosk --group windows");

  Json shown = FleetJson("group show windows");
  ASSERT_EQ(shown["devices"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["devices"][0]["device"], "screen-7");
  EXPECT_EQ(shown["apps"], Json::array({"kiosk"}));

  Json desired = FleetJson("fleet desired --device screen-7");
  ASSERT_EQ(desired["apps"].size(), 1u) << desired.dump();
  EXPECT_EQ(desired["apps"][0]["release"], 8);
  EXPECT_EQ(desired["groups"], Json::array({"windows"}));

  FleetJson("recall --app kiosk --release 8");
  desired = FleetJson("fleet desired --device screen-7");
  EXPECT_EQ(desired["apps"][0]["release"], 7) << "the newest not recalled";
  EXPECT_EQ(desired["apps"][0]["reason"], "newest release not recalled");

  Json pin = FleetJson("pin --group windows --app kiosk --release 6");
  EXPECT_EQ(pin, Json::parse(R"({"group":"windows","app":"kiosk","release":6})"));
  desired = FleetJson("fleet desired --device screen-7");
  EXPECT_EQ(desired["apps"][0]["release"], 6);
  EXPECT_EQ(desired["apps"][0]["reason"], "pinned by group windows");

  Fleet("unpin --group windows --app kiosk");
  const std::string text = Fleet("fleet desired --device screen-7");
  EXPECT_NE(text.find("release 7"), std::string::npos) << text;
  EXPECT_NE(text.find("newest release not recalled"), std::string::npos) << text;
  Json list = FleetJson("group list");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["apps"], Json::array({"kiosk"}));

  Json lobby = FleetJson("fleet desired --device lobby-1");
  EXPECT_TRUE(lobby["groups"].empty()) << "a device in no group";
  EXPECT_TRUE(lobby["apps"].empty()) << "runs nothing from the fleet";
}

INSTANTIATE_TEST_SUITE_P(Engines, FleetCliTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

class FleetCliErrorTest : public FleetCliTest {};

TEST_P(FleetCliErrorTest, BadInputIsRefusedWithAMessageAndChangesNothing) {
  auto bad = Tracker("group create w --select 'site=a,zone=1'" + db_flags_);
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("unknown key 'zone'"), std::string::npos) << bad.output;
  auto unknown = Tracker("device tag nobody --add x" + db_flags_);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_EQ(unknown.output, "device tag: no device named 'nobody'\n");
  auto unpublished = Tracker("pin --device screen-7 --app kiosk --release 9" + db_flags_);
  EXPECT_EQ(unpublished.exit_code, 1) << unpublished.output;
  EXPECT_NE(unpublished.output.find("release 9 of kiosk is not published"), std::string::npos);
  auto no_group = Tracker("group show nothing" + db_flags_);
  EXPECT_EQ(no_group.exit_code, 1);
  EXPECT_NE(no_group.output.find("no group named 'nothing'"), std::string::npos);
  auto no_db = Tracker("group list --repository " + dir_ + "/missing");
  EXPECT_EQ(no_db.exit_code, 1);
  EXPECT_NE(no_db.output.find("no tracker database at"), std::string::npos) << no_db.output;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/missing/tracker.db"));
  EXPECT_EQ(FleetJson("group list"), Json::array()) << "nothing was created";

  auto help = Tracker("group create --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("must all hold: site=LABEL, tag=LABEL"), std::string::npos)
      << help.output;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, FleetCliErrorTest, ::testing::Values("sqlite"),
                         [](const auto& info) { return std::string(info.param); });

// A repository made with `init --database-url` keeps everything in that
// database: init migrates it and names it in tracker.json (0600: the URL
// may hold a password), publish records the release there, and the fleet
// commands given only --repository find it through tracker.json.
TEST(FleetOnPostgresql, InitPublishAndFleetCommandsShareTheDatabaseTrackerJsonNames) {
  const std::string dir = MakeTempDir("fleet-pg");
  const std::string repo = dir + "/repo";
  auto cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto url = (*cluster)->CreateDatabase("fleet_pg");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto tracker = [&](const std::string& args) {
    auto run = RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
    return run.output;
  };
  tracker("init " + repo + " --public-url http://127.0.0.1:9 --database-url '" + *url + "'");
  EXPECT_FALSE(std::filesystem::exists(repo + "/tracker.db"));
  EXPECT_EQ(RunShell("stat -c %a " + repo + "/tracker.json").output, "600\n");
  ASSERT_TRUE(PublishImage(dir, repo, "kiosk", 16, "1", "1"))
      << RunShell("cat " + dir + "/publish.log").output;
  FakeClock clock;
  auto db = tracker::DeviceDb::Open(*url, clock);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Enroll("screen-1", "shop-1").ok());
  const std::string on_repo = " --repository " + repo;
  tracker("group create shop --select site=shop-1" + on_repo);
  tracker("app assign kiosk --group shop" + on_repo);
  auto desired = ParseJsonStrict(tracker("fleet desired --device screen-1 --json" + on_repo));
  ASSERT_TRUE(desired.ok()) << desired.status().ToString();
  ASSERT_EQ((*desired)["apps"].size(), 1u) << desired->dump();
  EXPECT_EQ((*desired)["apps"][0]["release"], 1) << "publish recorded it in PostgreSQL";
  EXPECT_FALSE(std::filesystem::exists(repo + "/tracker.db"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
