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

// Windows added one per command, shown by group show and fleet desired,
// cleared; a device sees the windows of each of its windowed groups.
TEST_P(FleetCliTest, GroupWindowsAddShowAndClear) {
  Fleet("group create shops --select site=shop-12");
  Fleet("group create sevens --select name=screen-7");
  Fleet("group create everything --select all");
  Json added =
      FleetJson("group window shops --days mon-fri --from 22:00 --to 06:00 --tz Europe/Berlin");
  EXPECT_EQ(added, Json::parse(R"({"group":"shops","windows":[{"days":"mon-fri","from":"22:00",)"
                               R"("group":"shops","to":"06:00","tz":"Europe/Berlin"}]})"));
  const std::string text =
      Fleet("group window shops --days sun,sat --from 03:00 --to 05:00 --tz UTC");
  EXPECT_EQ(text,
            "group shops: switches mon-fri 22:00-06:00 Europe/Berlin; "
            "sat-sun 03:00-05:00 UTC\n");
  Fleet("group window sevens --days daily --from 12:00 --to 24:00 --tz America/New_York");

  Json shown = FleetJson("group show shops");
  ASSERT_EQ(shown["windows"].size(), 2u) << shown.dump();
  EXPECT_EQ(shown["windows"][1]["days"], "sat-sun");
  EXPECT_NE(Fleet("group show shops").find("switches: mon-fri 22:00-06:00 Europe/Berlin; "),
            std::string::npos);
  EXPECT_NE(Fleet("group show everything").find("switches: any time (no maintenance window)"),
            std::string::npos);

  Json seven = FleetJson("fleet desired --device screen-7");
  ASSERT_EQ(seven["windows"].size(), 3u) << seven.dump();
  EXPECT_EQ(seven["windows"][0]["group"], "sevens") << "by group name";
  EXPECT_EQ(seven["windows"][0]["to"], "24:00");
  EXPECT_EQ(FleetJson("fleet desired --device lobby-1")["windows"].size(), 2u);

  EXPECT_EQ(FleetJson("group window shops --clear")["windows"], Json::array());
  Json lobby = FleetJson("fleet desired --device lobby-1");
  EXPECT_EQ(lobby["windows"], Json::array()) << "no windowed group: any time";
  EXPECT_NE(Fleet("fleet desired --device lobby-1").find("switches: any time"), std::string::npos);
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

  Fleet("group create shops --select site=shop-12");
  const std::vector<std::pair<std::string, std::string>> bad_windows = {
      {"--days mon-fri --from 22:00 --to 06:00 --tz Mars/Olympus",
       "time zone 'Mars/Olympus' is not in /usr/share/zoneinfo/"},
      {"--days mon-fri --from 22:00 --to 06:00 --tz ../../etc/passwd", "is not in"},
      {"--days mon-fri --from 25:00 --to 06:00 --tz UTC", "--from: time '25:00' is not HH:MM"},
      {"--days mon-fri --from 22:00 --to 6 --tz UTC", "--to: time '6' is not HH:MM"},
      {"--days funday --from 22:00 --to 06:00 --tz UTC", "'funday' is not a day"},
      {"--days daily --from 06:00 --to 06:00 --tz UTC", "the same time"},
      {"--days daily --from 06:00 --tz UTC", "needs all of --days, --from, --to and --tz"},
      {"", "give --days, --from, --to and --tz to add a window, or --clear"},
  };
  for (const auto& [flags, message] : bad_windows) {
    auto refused = Tracker("group window shops " + flags + db_flags_);
    EXPECT_EQ(refused.exit_code, 2) << flags << "\n" << refused.output;
    EXPECT_NE(refused.output.find("group window: "), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find(message), std::string::npos) << flags << "\n" << refused.output;
  }
  auto clear_and_add = Tracker("group window shops --clear --days daily" + db_flags_);
  EXPECT_NE(clear_and_add.exit_code, 0) << clear_and_add.output;
  auto no_such_group =
      Tracker("group window nothing --days daily --from 01:00 --to 02:00 --tz UTC" + db_flags_);
  EXPECT_EQ(no_such_group.exit_code, 1) << no_such_group.output;
  EXPECT_EQ(no_such_group.output,
            "group window: no group named 'nothing' (group list shows them)\n");
  EXPECT_EQ(FleetJson("group show shops")["windows"], Json::array()) << "nothing was stored";
  auto window_help = Tracker("group window --help");
  EXPECT_NE(window_help.output.find("only inside a window of one of those groups"),
            std::string::npos)
      << window_help.output;

  auto help = Tracker("group create --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("must all hold: site=LABEL, tag=LABEL"), std::string::npos)
      << help.output;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, FleetCliErrorTest, ::testing::Values("sqlite"),
                         [](const auto& info) { return std::string(info.param); });

// `floor` on a repository whose targets key is online (init without
// --offline-keys): signed at once, shown, only raised, to a published
// release; `pin` and `fleet desired` respect it.
TEST(FloorCliTest, SignedAtOnceWithTheOnlineTargetsKeyAndOnlyRaised) {
  const std::string dir = MakeTempDir("floor-cli");
  const std::string repo = dir + "/repo";
  auto run = [&](const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  };
  auto on_repo = [&](const std::string& args, int exit_code) {
    auto r = run(args + " --repository " + repo);
    EXPECT_EQ(r.exit_code, exit_code) << args << "\n" << r.output;
    return r.output;
  };
  ASSERT_TRUE(InitRepository(dir, repo));
  for (const char* seed : {"1", "2"}) ASSERT_TRUE(PublishImage(dir, repo, "kiosk", 16, seed));
  EXPECT_EQ(Json::parse(on_repo("floor --show --json", 0)), Json::parse(R"({"floors":{}})"));

  Json raised = Json::parse(on_repo("floor --app kiosk --release 1 --json", 0));
  EXPECT_EQ(raised["role"], "targets");
  EXPECT_GT(raised["targets_version"].get<uint64_t>(), 1u);
  EXPECT_FALSE(raised.contains("pending"));
  EXPECT_EQ(Json::parse(on_repo("floor --show --app kiosk --json", 0))["floor"], 1);
  EXPECT_NE(on_repo("floor --show", 0).find("kiosk"), std::string::npos);

  EXPECT_EQ(on_repo("floor --app kiosk --release 1", 1),
            "floor: the floor of kiosk is 1 already; a floor only goes up\n");
  EXPECT_NE(on_repo("floor --app kiosk --release 5", 1).find("no release 5 of kiosk is signed"),
            std::string::npos);
  EXPECT_NE(on_repo("floor --app kiosk", 2).find("give --app APP --release N, or --show"),
            std::string::npos);
  EXPECT_NE(on_repo("floor --app Kiosk/.. --release 2", 2).find("bad app name"), std::string::npos);
  EXPECT_NE(run("floor --app kiosk --release 2").output.find("no repository"), std::string::npos);
  EXPECT_NE(run("floor --show --release 2 --repository " + repo).exit_code, 0);
  EXPECT_NE(run("floor --help").output.find("A\nfloor only goes up"), std::string::npos);
  EXPECT_EQ(Json::parse(on_repo("floor --show --app kiosk --json", 0))["floor"], 1)
      << "nothing refused changed it";

  // The fleet side: a device pinned to 1, then the floor raised to 2.
  FakeClock clock;
  auto db = tracker::DeviceDb::Open(repo + "/tracker.db", clock);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Enroll("screen-7", "shop-12").ok());
  on_repo("group create all --select all", 0);
  on_repo("app assign kiosk --group all", 0);
  on_repo("pin --device screen-7 --app kiosk --release 1", 0);
  on_repo("floor --app kiosk --release 2", 0);
  EXPECT_EQ(on_repo("pin --device screen-7 --app kiosk --release 1", 1),
            "pin: release 1 of kiosk is below its floor 2 (signed by the image repository's "
            "offline keys): pin 2 or above\n");
  Json desired = Json::parse(on_repo("fleet desired --device screen-7 --json", 0));
  EXPECT_EQ(desired["apps"][0]["release"], 2) << desired.dump();
  EXPECT_EQ(desired["apps"][0]["reason"],
            "pinned on the device to 1, below the floor 2: the lowest release at or above it");
  std::filesystem::remove_all(dir);
}

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
