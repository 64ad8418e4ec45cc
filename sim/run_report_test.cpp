#include "sim/run_report.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace flotilla::sim {
namespace {

RunReport TwentyDevices() {
  RunReport r;
  r.scenario = "unit";
  r.strategy = "flotilla";
  r.seed = 3;
  r.time_limit_s = 100;
  r.release = "2";
  r.release_bytes = 1'000'000;
  r.duration_s = 80;
  r.ended_by = "time limit";
  for (int i = 0; i < 20; ++i) {
    DeviceResult d;
    d.name = "s/d" + std::to_string(i);
    d.site = "s";
    d.completed = i < 19;  // the last one never finishes
    d.completion_s = 10.0 * (i + 1);
    d.state = d.completed ? "running" : "downloading";
    d.traffic.rx_lan = 1000 * i;
    r.devices.push_back(d);
  }
  r.devices.back().errors = {"link down"};
  r.sites = {{"s", 3'000'000, 200'000}};
  r.origin_egress_bytes = 1'500'000;
  r.origin_timeline = {{0.0, 0}, {1.0, 700'000}, {2.0, 1'500'000}};
  return r;
}

TEST(RunReportTest, SummaryCountsEveryDeviceNotOnlyCompletedOnes) {
  ReportSummary s = Summarize(TwentyDevices());
  EXPECT_EQ(s.devices, 20u);
  EXPECT_EQ(s.completed, 19u);
  EXPECT_DOUBLE_EQ(s.p50_s, 100.0);  // 10th of 19 completions
  EXPECT_DOUBLE_EQ(s.p95_s, 190.0);
  EXPECT_DOUBLE_EQ(s.max_s, 190.0);
  EXPECT_DOUBLE_EQ(s.time_to_95pct_s, 190.0) << "19 of 20 is exactly 95%";
  EXPECT_DOUBLE_EQ(s.origin_copies, 1.5);
  EXPECT_EQ(s.wan_rx_bytes, 3'000'000u);

  RunReport fewer = TwentyDevices();
  fewer.devices[17].completed = false;  // 18 of 20 < 95%
  EXPECT_DOUBLE_EQ(Summarize(fewer).time_to_95pct_s, -1);
}

TEST(RunReportTest, JsonRoundTrips) {
  RunReport r = TwentyDevices();
  auto back = RunReportFromJson(RunReportToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RunReportToJson(*back), RunReportToJson(r));
  EXPECT_TRUE(RunReportToJson(r)["devices"][19]["completion_s"].is_null());
  Json broken = RunReportToJson(r);
  broken["devices"][0].erase("traffic");
  EXPECT_FALSE(RunReportFromJson(broken).ok());
}

TEST(RunReportTest, TableNamesEveryDeviceAndItsError) {
  std::string table = SummaryTable(TwentyDevices());
  EXPECT_NE(table.find("devices completed   19 of 20"), std::string::npos) << table;
  EXPECT_NE(table.find("s/d19"), std::string::npos);
  EXPECT_NE(table.find("(link down)"), std::string::npos);
  EXPECT_NE(table.find("1.50 copies"), std::string::npos);
}

// Twenty devices in waves of 2, 8 and 10; the third wave never started.
RunReport RolloutOfTwenty() {
  RunReport r = TwentyDevices();
  RolloutResult rollout;
  r.origin_wait_s = 3;
  rollout.id = 4;
  rollout.waves = "10%,50%,100%";
  rollout.max_failures = "25%";
  rollout.soak_s = 60;
  rollout.state = "halted";
  rollout.reason = "wave 2: 3 of 8 devices failed";
  rollout.ended_s = 95;
  rollout.wave_started_s = {0.5, 40, -1};
  r.rollout = rollout;
  for (int i = 0; i < 20; ++i) {
    DeviceResult& d = r.devices[i];
    d.wave = i < 2 ? 1 : i < 10 ? 2 : 3;
    d.completed = i < 7;
    d.ran_release = i < 10;
    d.traffic.rx_origin = i < 2 ? 5000 : 100;
    d.final_release = 1;
    d.final_container = i == 15 ? "exited" : "running";
    d.final_health = i == 16 ? "unknown" : "healthy";
  }
  return r;
}

TEST(RunReportTest, RolloutWavesHaveTheirOwnT95AndBytes) {
  ReportSummary s = Summarize(RolloutOfTwenty());
  ASSERT_EQ(s.waves.size(), 3u);
  EXPECT_EQ(s.waves[0].size, 2u);
  EXPECT_EQ(s.waves[0].completed, 2u);
  EXPECT_DOUBLE_EQ(s.waves[0].t95_s, 20.0) << "the second of two, 95% rounds up";
  EXPECT_EQ(s.waves[0].rx_origin, 10'000u);
  EXPECT_DOUBLE_EQ(s.waves[1].started_s, 40);
  EXPECT_EQ(s.waves[1].size, 8u);
  EXPECT_EQ(s.waves[1].completed, 5u);
  EXPECT_DOUBLE_EQ(s.waves[1].t95_s, -1) << "5 of 8 never reach 95%";
  EXPECT_DOUBLE_EQ(s.waves[2].started_s, -1);
  EXPECT_EQ(s.waves[2].rx_lan, 1000u * (10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19));
  EXPECT_EQ(s.ran_release.size(), 10u);
  EXPECT_EQ(s.ran_release.front(), "s/d0");
  EXPECT_EQ(s.healthy_at_end, 18u) << "an exited container and an unknown health are not healthy";
  EXPECT_TRUE(Summarize(TwentyDevices()).waves.empty());
}

TEST(RunReportTest, RolloutJsonRoundTripsAndTableShowsIt) {
  RunReport r = RolloutOfTwenty();
  Json json = RunReportToJson(r);
  EXPECT_EQ(json["rollout"]["state"], "halted");
  EXPECT_EQ(json["rollout"]["ran_release"].size(), 10u);
  EXPECT_TRUE(json["rollout"]["wave_results"][2]["started_s"].is_null());
  EXPECT_EQ(json["devices"][3]["wave"], 2);
  EXPECT_EQ(json["devices"][15]["final"]["container"], "exited");
  EXPECT_EQ(json["node_origin_wait_s"], 3);
  EXPECT_TRUE(RunReportToJson(TwentyDevices())["node_origin_wait_s"].is_null());
  EXPECT_FALSE(RunReportToJson(TwentyDevices()).contains("wave"));
  EXPECT_TRUE(RunReportToJson(TwentyDevices())["rollout"].is_null());
  auto back = RunReportFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RunReportToJson(*back), json);

  std::string table = SummaryTable(r);
  EXPECT_NE(table.find("halted at 95.0 s (wave 2: 3 of 8 devices failed)"), std::string::npos)
      << table;
  EXPECT_NE(table.find("ran release 2       10 device(s): s/d0, s/d1"), std::string::npos) << table;
  EXPECT_NE(table.find("healthy at the end  18 of 20"), std::string::npos) << table;
  EXPECT_NE(table.find("strategy flotilla (origin wait 3 s)"), std::string::npos) << table;
}

TEST(RunReportTest, PlotsArePngFiles) {
  std::string dir = std::filesystem::temp_directory_path() / "fsim-plot-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  RunReport baseline = TwentyDevices();
  baseline.strategy = "http-full";
  ASSERT_TRUE(WritePlots({TwentyDevices(), baseline}, dir).ok());
  for (const char* name : {"completion-cdf.png", "origin-egress.png"}) {
    std::ifstream png(dir + "/" + name, std::ios::binary);
    char magic[4] = {};
    png.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << name;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::sim
