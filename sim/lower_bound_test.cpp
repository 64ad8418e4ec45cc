#include "sim/lower_bound.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::sim {
namespace {

constexpr double kRate2000 = 2000 * 1000.0 / 8 * 1472 / 1514;  // payload bytes/s

TEST(DeliverySeconds, UnlimitedInstantPathIsFree) {
  EXPECT_DOUBLE_EQ(DeliverySeconds(1 << 20, 0, 0), 0);
}

TEST(DeliverySeconds, NoLatencyIsBytesOverRate) {
  EXPECT_NEAR(DeliverySeconds(10'000'000, 0, 2000), 10'000'000 / kRate2000, 1e-9);
}

TEST(DeliverySeconds, SlowStartThenRate) {
  // 300 ms RTT at 2 Mbit/s: windows of 10, 20, 40 segments take an RTT
  // each, the 80-segment window exceeds the path; the rest goes at the rate.
  const double rtt = 0.3;
  const double ramp = 14480.0 + 28960 + 57920;
  EXPECT_NEAR(DeliverySeconds(10'000'000, rtt, 2000),
              2 * rtt + 3 * rtt + (10'000'000 - ramp) / kRate2000, 1e-9);
  // A small release is all RTTs: it fits in the first window.
  EXPECT_NEAR(DeliverySeconds(10'000, rtt, 2000), 2 * rtt + 10'000 / kRate2000, 1e-9);
}

class MinimalBytes : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = flotilla::testing::MakeTempDir("lower-bound");
    ASSERT_TRUE(CreateDirectories(repo_ + "/targets/apps/sim").ok());
  }
  void TearDown() override { std::filesystem::remove_all(repo_); }
  void Write(int version, const Json& flotilla) {
    std::string path = repo_ + "/targets/apps/sim/ab" + std::to_string(version) + ".release-" +
                       std::to_string(version) + ".json";
    ASSERT_TRUE(WriteFileAtomic(path, Json{{"flotilla", flotilla}}.dump()).ok());
  }
  static Json Layers(std::vector<std::string> ids) {
    Json layers = Json::array();
    for (auto& id : ids) layers.push_back({{"diff_id", id}});
    return {{"layers", layers}};
  }
  std::string repo_;
};

TEST_F(MinimalBytes, FirstReleaseIsItsFullArtifacts) {
  Write(1, {{"image", Layers({"A", "B"})},
            {"artifacts",
             {{{"kind", "full"}, {"layer", "A"}, {"length", 700}},
              {{"kind", "full"}, {"layer", "B"}, {"length", 300}}}}});
  EXPECT_EQ(MinimalReleaseBytes(repo_, "sim", 1).value(), 1000u);
}

TEST_F(MinimalBytes, HeldLayersAreFreeAndOnlyUsableDeltasCount) {
  Write(1, {{"image", Layers({"A", "B"})}, {"artifacts", Json::array()}});
  Write(2, {{"image", Layers({"A", "C", "D"})},
            {"artifacts",
             {{{"kind", "full"}, {"layer", "A"}, {"length", 700}},
              {{"kind", "full"}, {"layer", "C"}, {"length", 1000}},
              {{"kind", "delta"}, {"layer", "C"}, {"bases", {"B"}}, {"length", 100}},
              {{"kind", "delta"}, {"layer", "C"}, {"bases", {"X"}}, {"length", 10}},
              {{"kind", "full"}, {"layer", "D"}, {"length", 50}}}}});
  // A is held, C by its delta over B (the one over X is useless), D in full.
  EXPECT_EQ(MinimalReleaseBytes(repo_, "sim", 2).value(), 150u);
  EXPECT_FALSE(MinimalReleaseBytes(repo_, "sim", 3).ok());
}

Scenario OneSiteScenario(int devices) {
  Scenario s;
  SiteSpec site;
  site.devices = devices;
  site.wan_down = {.rate_kbit = 2000, .delay_us = 150000};
  site.wan_up = {.rate_kbit = 500, .delay_us = 150000};
  s.topology.sites = {site};
  return s;
}

TEST(ComputeT95LowerBound, SiteWanBindsWithoutChurn) {
  Scenario s = OneSiteScenario(4);
  s.topology.cloud_up.rate_kbit = 1'000'000;
  T95LowerBound b = ComputeT95LowerBound(s, 1'000'000);
  EXPECT_NEAR(b.site_wan_s, DeliverySeconds(1'000'000, 0.3, 2000), 1e-9);
  EXPECT_NEAR(b.origin_s, 1'000'000 * 8 / (1e9 * 1472 / 1514), 1e-9);
  EXPECT_EQ(b.t95_s, b.site_wan_s);
  EXPECT_EQ(b.binding, "site WAN downlink");
}

TEST(ComputeT95LowerBound, OriginBindsWhenItsUplinkIsNarrow) {
  Scenario s = OneSiteScenario(4);
  s.topology.sites.push_back(s.topology.sites[0]);
  s.topology.cloud_up.rate_kbit = 1000;  // two NAT'd sites: two copies at 1 Mbit/s
  T95LowerBound b = ComputeT95LowerBound(s, 1'000'000);
  EXPECT_NEAR(b.origin_s, 2 * 1'000'000 * 8 / (1e6 * 1472 / 1514), 1e-9);
  EXPECT_EQ(b.binding, "origin uplink");
}

TEST(ComputeT95LowerBound, ChurnEarlyEnoughHoldsBackThe95thPercentile) {
  Scenario s = OneSiteScenario(20);  // 95% = 19 devices
  s.churn = {{ChurnEvent::Kind::kDeviceOff, 0, 3, 0.5, 100},
             {ChurnEvent::Kind::kDeviceOff, 0, 4, 1.0, 200}};
  T95LowerBound b = ComputeT95LowerBound(s, 100'000);
  EXPECT_EQ(b.binding, "churn");
  EXPECT_EQ(b.t95_s, 100);
  // An outage that starts after the release could have arrived holds nothing.
  s.churn = {{ChurnEvent::Kind::kDeviceOff, 0, 3, 500, 900},
             {ChurnEvent::Kind::kDeviceOff, 0, 4, 500, 900}};
  EXPECT_EQ(ComputeT95LowerBound(s, 100'000).binding, "site WAN downlink");
}

}  // namespace
}  // namespace flotilla::sim
