#include "sim/scenario.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "sim/scenario_run.h"

namespace flotilla::sim {
namespace {

constexpr char kMinimal[] = R"({
  "name": "t", "time_limit_s": 100, "release": {"image": "a.tar"},
  "sites": [{"name": "only"}]
})";

std::string WithSites(const std::string& sites, const std::string& extra = "") {
  return R"({"name": "t", "time_limit_s": 100, "release": {"image": "a.tar", "previous": "p.tar"},
    "links": {"3g": {"down": {"rate_kbit": 2000, "delay_ms": 150, "jitter_ms": 20, "loss_percent": 1},
                     "up": {"rate_kbit": 500}}},
    "sites": )" +
         sites + extra + "}";
}

TEST(ScenarioTest, MinimalScenarioGetsDefaults) {
  auto s = ParseScenario(kMinimal, "/base");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "t");
  EXPECT_EQ(s->strategy, Strategy::kFlotilla);
  EXPECT_EQ(s->release.image, "/base/a.tar");
  EXPECT_EQ(s->release.previous, "");
  ASSERT_EQ(s->topology.sites.size(), 1u);
  EXPECT_EQ(s->topology.sites[0].devices, 1);
  EXPECT_TRUE(s->topology.sites[0].nat);
  EXPECT_FALSE(s->topology.sites[0].wan_down.shaped());
}

TEST(ScenarioTest, ProfilesGroupsAndUnitsExpand) {
  auto s = ParseScenario(
      WithSites(R"([{"name": "a-{i}", "count": 3, "devices": 4, "wan": "3g", "nat": false},
                    {"name": "b", "wan": {"down": {"rate_kbit": 1}}}])"),
      "/x");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->topology.sites.size(), 4u);
  EXPECT_EQ(s->topology.sites[2].name, "a-3");
  EXPECT_EQ(s->topology.sites[2].devices, 4);
  EXPECT_FALSE(s->topology.sites[2].nat);
  EXPECT_TRUE(s->topology.sites[3].nat);
  const LinkShape& down = s->topology.sites[0].wan_down;
  EXPECT_EQ(down.rate_kbit, 2000u);
  EXPECT_EQ(down.delay_us, 150'000u);
  EXPECT_EQ(down.jitter_us, 20'000u);
  EXPECT_EQ(down.loss_ppm, 10'000u);
  EXPECT_EQ(s->topology.sites[0].wan_up.rate_kbit, 500u);
  EXPECT_EQ(s->topology.sites[3].wan_down.rate_kbit, 1u);
}

TEST(ScenarioTest, ChurnIsExpandedDeterministicallyFromTheSeed) {
  std::string churn = R"(, "seed": 9, "churn": [
      {"random_devices": 0.25, "off_s_min": 10, "off_s_max": 30},
      {"device": "a-2/3", "off_s": [5, 50]},
      {"site": "a-1", "wan_down_s": [1, 2]}])";
  std::string text = WithSites(R"([{"name": "a-{i}", "count": 4, "devices": 4}])", churn);
  auto s = ParseScenario(text, "/");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->churn.size(), 4u + 1 + 1);
  auto again = ParseScenario(text, "/");
  EXPECT_EQ(s->churn, again->churn);
  EXPECT_EQ(s->churn.front().kind, ChurnEvent::Kind::kWanDown);
  for (const ChurnEvent& e : s->churn) {
    EXPECT_GE(e.from_s, 0);
    EXPECT_LE(e.to_s, 100);
    EXPECT_LT(e.from_s, e.to_s);
  }
  auto other = ParseScenario(
      WithSites(
          R"([{"name": "a-{i}", "count": 4, "devices": 4}])",
          R"(, "seed": 10, "churn": [{"random_devices": 0.25, "off_s_min": 10, "off_s_max": 30}])"),
      "/");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(std::vector<ChurnEvent>(s->churn.begin(), s->churn.begin() + 1), other->churn);
}

TEST(ScenarioTest, RandomChurnStartsNoLaterThanStartSMax) {
  auto s =
      ParseScenario(WithSites(R"([{"name": "a-{i}", "count": 4, "devices": 4}])",
                              R"(, "seed": 9, "churn": [{"random_devices": 0.5, "off_s_min": 10,
                                          "off_s_max": 30, "start_s_max": 5}])"),
                    "/");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->churn.size(), 8u);
  double latest = 0;
  for (const ChurnEvent& e : s->churn) latest = std::max(latest, e.from_s);
  EXPECT_LE(latest, 5);
  EXPECT_GT(latest, 0.5) << "starts are spread over [0, 5], not all at 0";
}

TEST(ScenarioTest, MistakesAreRefusedWithTheirPlace) {
  struct Case {
    std::string text, expect;
  } cases[] = {
      {WithSites(R"([{"name": "a", "wan": "4g"}])"), "no link profile '4g'"},
      {WithSites(R"([{"name": "a", "devcies": 3}])"), "unknown key 'sites[0].devcies'"},
      {WithSites(R"([{"name": "a", "count": 2}])"), "needs '{i}'"},
      {WithSites(R"([{"name": "a"}, {"name": "a"}])"), "duplicate site name"},
      {WithSites(R"([{"name": "a", "devices": 201}])"), "sites[0].devices: must be in 0..200"},
      {WithSites(R"([{"name": "a", "wan": {"down": {"loss_percent": 100}}}])"), "loss_percent"},
      {WithSites(R"([{"name": "a", "wan": {"down": {"delay_ms": 5, "jitter_ms": 10}}}])"),
       "jitter larger than the delay"},
      {WithSites(R"([{"name": "a"}])", R"(, "churn": [{"device": "a/1", "off_s": [1, 2]}])"),
       "no device 'a/1'"},
      {WithSites(R"([{"name": "a"}])", R"(, "churn": [{"device": "a/0", "off_s": [5, 500]}])"),
       "from < to <= time_limit_s"},
      {WithSites(R"([{"name": "a"}])", R"(, "strategy": "carrier-pigeon")"), "carrier-pigeon"},
      {WithSites(R"([])"), "non-empty"},
      {R"({"name": "t", "name": "u", "time_limit_s": 1, "release": {"image": "a"}, "sites": [{"name": "a"}]})",
       "duplicate"},
      {R"({"name": "t", "time_limit_s": 1, "release": {"image": "a"}, "sites": [{"name": "a"}],
          "strategy": "http-delta"})",
       "needs release.previous"},
  };
  for (const Case& c : cases) {
    auto s = ParseScenario(c.text, "/");
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.status().message().find(c.expect), std::string::npos)
        << "expected '" << c.expect << "' in: " << s.status().ToString();
  }
}

TEST(ScenarioTest, RolloutAndFailingHealthParse) {
  auto s = ParseScenario(WithSites(R"([{"name": "a"}])", R"(, "rollout": {"waves": "10%,50%,100%",
          "max_failures": "2.5%", "soak_s": 60, "wave_timeout_s": 120})"),
                         "/");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->rollout.has_value());
  EXPECT_EQ(s->rollout->waves, (std::vector<double>{10, 50, 100}));
  EXPECT_EQ(s->rollout->waves_text, "10%,50%,100%");
  EXPECT_DOUBLE_EQ(s->rollout->max_failures, 2.5);
  EXPECT_EQ(s->rollout->max_failures_text, "2.5%");
  EXPECT_EQ(s->rollout->soak_s, 60u);
  EXPECT_EQ(s->rollout->wave_timeout_s, 120u);
  EXPECT_FALSE(s->release.health_fails);
  EXPECT_EQ(ScenarioToJson(*s)["rollout"]["max_failures"], "2.5%");

  auto defaults =
      ParseScenario(WithSites(R"([{"name": "a"}])", R"(, "rollout": {"waves": "100%"})"), "/");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->rollout->max_failures_text, "5%");
  EXPECT_EQ(defaults->rollout->soak_s, 0u);
  EXPECT_EQ(defaults->rollout->wave_timeout_s, 600u);
  EXPECT_FALSE(ParseScenario(kMinimal, "/")->rollout.has_value());
  EXPECT_TRUE(ScenarioToJson(*ParseScenario(kMinimal, "/"))["rollout"].is_null());

  auto bad_release = ParseScenario(
      R"({"name": "t", "time_limit_s": 9, "sites": [{"name": "a"}],
          "release": {"image": "b.tar", "previous": "a.tar", "health_fails": true}})",
      "/");
  ASSERT_TRUE(bad_release.ok()) << bad_release.status().ToString();
  EXPECT_TRUE(bad_release->release.health_fails);
  EXPECT_EQ(bad_release->release.previous, "/a.tar");
}

TEST(ScenarioTest, WaveSharesAreExactPercentages) {
  EXPECT_EQ(ParseWaveShares("2.5%,100%").value(), (std::vector<double>{2.5, 100}));
  EXPECT_EQ(ParseWaveShares("100%").value(), (std::vector<double>{100}));
  for (const char* bad : {"", "10%,", "10,100%", "10%,50%", "50%,10%,100%", "10%,10%,100%",
                          "0%,100%", "1.234%,100%", "101%", "-5%,100%", "10 %,100%", ".5%,100%"}) {
    EXPECT_FALSE(ParseWaveShares(bad).ok()) << bad;
  }
  std::string many;
  for (int i = 1; i <= 21; ++i) many += std::to_string(i) + "%,";
  EXPECT_FALSE(ParseWaveShares(many + "100%").ok()) << "at most 20 waves";
}

TEST(ScenarioTest, RolloutMistakesAreRefusedWithTheirPlace) {
  const std::string site = R"([{"name": "a"}])";
  struct Case {
    std::string text, expect;
  } cases[] = {
      {WithSites(site, R"(, "rollout": {"soak_s": 60})"), "rollout.waves: required"},
      {WithSites(site, R"(, "rollout": {"waves": "10%,50%"})"), "rollout.waves: '10%,50%'"},
      {WithSites(site, R"(, "rollout": {"waves": "100%", "max_failures": "5"})"),
       "rollout.max_failures: '5' is not a percentage"},
      {WithSites(site, R"(, "rollout": {"waves": "100%", "soak_s": -1})"), "rollout.soak_s"},
      {WithSites(site, R"(, "rollout": {"waves": "100%", "soak_s": 1.5})"), "whole seconds"},
      {WithSites(site, R"(, "rollout": {"waves": "100%", "wave_timeout_s": 0})"),
       "rollout.wave_timeout_s"},
      {WithSites(site, R"(, "rollout": {"waves": "100%", "max_failure": "5%"})"),
       "unknown key 'rollout.max_failure'"},
      {WithSites(site, R"(, "rollout": "10%,100%")"), "rollout"},
      {R"({"name": "t", "time_limit_s": 9, "release": {"image": "b"}, "sites": [{"name": "a"}],
          "rollout": {"waves": "100%"}})",
       "rollout: needs release.previous"},
      {R"({"name": "t", "time_limit_s": 9, "sites": [{"name": "a"}],
          "release": {"image": "b", "health_fails": true}})",
       "release.health_fails: needs release.previous"},
      {R"({"name": "t", "time_limit_s": 9, "sites": [{"name": "a"}],
          "release": {"image": "b", "previous": "a", "health_fails": "yes"}})",
       "release.health_fails"},
  };
  for (const Case& c : cases) {
    auto s = ParseScenario(c.text, "/");
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.status().message().find(c.expect), std::string::npos)
        << "expected '" << c.expect << "' in: " << s.status().ToString();
  }
}

TEST(ScenarioTest, NodeConfigCarriesTheOriginWaitOnlyWhenSet) {
  auto s = ParseScenario(WithSites(R"([{"name": "a", "devices": 2}])"), "/");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Json config = NodeConfigFor(*s, 0, 1, "/data", "/token", "/root.json");
  EXPECT_EQ(config["device_name"], "a-d1");
  EXPECT_FALSE(config.contains("origin_wait_s")) << "the node's default";
  s->node_origin_wait_s = 3;
  EXPECT_EQ(NodeConfigFor(*s, 0, 1, "/data", "/token", "/root.json")["origin_wait_s"], 3);
}

TEST(ScenarioTest, ShippedScenariosAreValid) {
  for (const char* name : {"small", "small-no-nat", "small-upgrade", "city", "city-calm",
                           "city-rollout", "city-rollout-bad"}) {
    auto s = LoadScenario(std::string(FLOTILLA_SOURCE_DIR) + "/sim/scenarios/" + name + ".json");
    ASSERT_TRUE(s.ok()) << name << ": " << s.status().ToString();
  }
  auto city = LoadScenario(std::string(FLOTILLA_SOURCE_DIR) + "/sim/scenarios/city.json");
  ASSERT_TRUE(city.ok());
  EXPECT_EQ(city->topology.sites.size(), 10u);
  EXPECT_EQ(city->churn.size(), 4u + 1);  // 10% of 40 devices, and one WAN outage
  auto small = LoadScenario(std::string(FLOTILLA_SOURCE_DIR) + "/sim/scenarios/small-no-nat.json");
  EXPECT_FALSE(small->topology.sites[0].nat);
  // The rollout scenarios: city's sites and links, no churn, and the baseline
  // city-calm the same without a rollout.
  auto bad =
      LoadScenario(std::string(FLOTILLA_SOURCE_DIR) + "/sim/scenarios/city-rollout-bad.json");
  auto good = LoadScenario(std::string(FLOTILLA_SOURCE_DIR) + "/sim/scenarios/city-rollout.json");
  auto calm = LoadScenario(std::string(FLOTILLA_SOURCE_DIR) + "/sim/scenarios/city-calm.json");
  ASSERT_TRUE(bad.ok() && good.ok() && calm.ok());
  for (const Scenario* s : {&*bad, &*good, &*calm}) {
    EXPECT_EQ(ScenarioToJson(*s)["sites"], ScenarioToJson(*city)["sites"]) << s->name;
    EXPECT_TRUE(s->churn.empty()) << s->name;
  }
  EXPECT_TRUE(bad->release.health_fails);
  EXPECT_FALSE(good->release.health_fails);
  EXPECT_EQ(bad->rollout->waves_text, "10%,50%,100%");
  EXPECT_EQ(bad->rollout->max_failures_text, "25%");
  EXPECT_EQ(bad->rollout->soak_s, 60u);
  EXPECT_EQ(good->rollout->soak_s, 0u);
  EXPECT_FALSE(calm->rollout.has_value());
}

}  // namespace
}  // namespace flotilla::sim
