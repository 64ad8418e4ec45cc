// The rollout model without storage: input parsing, wave assignment, the
// rollout limit in the desired-release rule, and evaluation steps.
#include "tracker/fleet/rollout.h"

#include <gtest/gtest.h>

#include <cmath>

namespace flotilla::tracker {
namespace {

TEST(RolloutParseTest, WavesSharesAndDurations) {
  EXPECT_EQ(ParseWaves("10%,50%,100%").value(), (std::vector<uint32_t>{1000, 5000, 10000}));
  EXPECT_EQ(ParseWaves("2.5%,100%").value(), (std::vector<uint32_t>{250, 10000}));
  EXPECT_EQ(ParseWaves("100%").value(), (std::vector<uint32_t>{10000}));
  for (const char* bad : {"", "10%,50%", "50%,10%,100%", "10,100%", "0%,100%", "10%,10%,100%",
                          "101%", "10%,,100%", "1.234%,100%", "x%,100%", "-5%,100%"}) {
    auto waves = ParseWaves(bad);
    EXPECT_EQ(waves.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseShare("5%").value(), 500u);
  EXPECT_EQ(ParseShare("0%").value(), 0u);
  EXPECT_EQ(ParseShare("12.25%").value(), 1225u);
  EXPECT_FALSE(ParseShare("5").ok());
  EXPECT_EQ(ShareText(1225), "12.25%");
  EXPECT_EQ(ShareText(250), "2.5%");
  EXPECT_EQ(ShareText(10000), "100%");
  EXPECT_EQ(ParseSeconds("30m").value(), 1800);
  EXPECT_EQ(ParseSeconds("1h").value(), 3600);
  EXPECT_EQ(ParseSeconds("90s").value(), 90);
  EXPECT_EQ(ParseSeconds("0").value(), 0);
  for (const char* bad : {"", "m", "-1m", "1x", "1.5h", "99999999d"}) {
    EXPECT_FALSE(ParseSeconds(bad).ok()) << bad;
  }
}

std::vector<FleetDevice> Sites(const std::vector<size_t>& sizes) {
  std::vector<FleetDevice> devices;
  for (size_t s = 0; s < sizes.size(); ++s) {
    for (size_t i = 0; i < sizes[s]; ++i) {
      const std::string name = "site" + std::to_string(s) + "-d" + std::to_string(i);
      devices.push_back({"dev-" + name, name, "site-" + std::to_string(s), {}});
    }
  }
  return devices;
}

// Waves have exact cumulative sizes (ceil of the share) and every site gives
// each wave its share of its own devices, within one device.
TEST(RolloutWavesTest, ExactSizesSpreadAcrossUnevenSites) {
  std::vector<size_t> sizes;
  for (size_t s = 0; s < 37; ++s) sizes.push_back(1 + (s * s * 7) % 53);  // 1..53, uneven
  sizes.push_back(400);                                                   // one big site
  const std::vector<FleetDevice> devices = Sites(sizes);
  const std::vector<uint32_t> waves = {100, 1000, 2500, 5000, 10000};
  const auto wave_of = AssignWaves(7, waves, devices);
  ASSERT_EQ(wave_of.size(), devices.size());
  for (size_t w = 0; w < waves.size(); ++w) {
    size_t cumulative = 0;
    std::map<std::string, size_t> per_site;
    for (const FleetDevice& d : devices) {
      if (wave_of.at(d.device_id) <= w) {
        ++cumulative;
        ++per_site[d.site];
      }
    }
    EXPECT_EQ(cumulative, CumulativeSize(waves[w], devices.size())) << "wave " << w;
    EXPECT_EQ(cumulative, static_cast<size_t>(std::ceil(waves[w] / 10000.0 * devices.size())));
    for (size_t s = 0; s < sizes.size(); ++s) {
      const double share = waves[w] / 10000.0 * sizes[s];
      const double taken = static_cast<double>(per_site["site-" + std::to_string(s)]);
      EXPECT_LE(std::abs(taken - share), 1.0) << "site " << s << " wave " << w;
    }
  }
  // The big site is not served first or last: it gives 1% of itself to wave 1.
  size_t big_first = 0;
  for (const FleetDevice& d : devices) {
    if (d.site == "site-37" && wave_of.at(d.device_id) == 0) ++big_first;
  }
  EXPECT_GE(big_first, 3u);
  EXPECT_LE(big_first, 5u);
}

TEST(RolloutWavesTest, DeterministicAndOrderIndependent) {
  std::vector<FleetDevice> devices = Sites({5, 3, 1, 8});
  const auto a = AssignWaves(3, {1000, 5000, 10000}, devices);
  std::reverse(devices.begin(), devices.end());
  EXPECT_EQ(AssignWaves(3, {1000, 5000, 10000}, devices), a);
  // Nine devices: 10% is 1, 50% is 5 (ceil), 100% is 9.
  const auto nine = AssignWaves(1, {1000, 5000, 10000}, Sites({4, 3, 2}));
  std::vector<size_t> sizes(3);
  for (const auto& [id, w] : nine) ++sizes[w];
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 4, 4}));
  // Another rollout starts elsewhere.
  bool differs = false;
  for (int64_t id = 4; id < 12 && !differs; ++id) {
    differs = AssignWaves(id, {1000, 5000, 10000}, devices) != a;
  }
  EXPECT_TRUE(differs);
}

// Kiosk 5, 6 (recalled) and 7 published; a rollout of 7 over the windows group.
class RolloutLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b", "c", "lobby"}) {
      state_.devices[name] = FleetDevice{
          std::string("dev-") + name, name, "shop",
          name == std::string("lobby") ? std::set<std::string>{} : std::set<std::string>{"window"}};
    }
    state_.groups["windows"] =
        FleetGroup{"windows", Selector::Parse("tag=window").value(), {"kiosk"}, {}};
    state_.groups["everyone"] =
        FleetGroup{"everyone", Selector::Parse("all").value(), {"kiosk"}, {}};
    state_.releases["kiosk"] = {5, 6, 7};
    state_.recalls["kiosk"] = {6};
    rollout_.id = 1;
    rollout_.app = "kiosk";
    rollout_.release = 7;
    rollout_.group = "windows";
    rollout_.waves = {3000, 10000};
  }
  std::optional<uint64_t> Desired(const std::string& device) {
    RolloutLimits limits(state_, {rollout_}, {{1, {{"dev-a", 0}, {"dev-b", 1}}}});
    return DesiredReleases(state_, &limits).For(state_.devices.at(device), "kiosk").release;
  }

  FleetState state_;
  Rollout rollout_;
};

TEST_F(RolloutLimitTest, StartedWavesReachTheReleaseLaterWavesKeepThePrevious) {
  EXPECT_EQ(Desired("a"), 7u) << "wave 1 started";
  EXPECT_EQ(Desired("b"), 5u) << "wave 2 not started: newest not recalled below 7";
  EXPECT_EQ(Desired("c"), 5u) << "covered, not a member yet: the last wave";
  EXPECT_EQ(Desired("lobby"), 7u) << "outside the rollout's group: not limited";
  rollout_.state = RolloutState::kHalted;
  EXPECT_EQ(Desired("a"), 7u) << "a halt keeps started waves";
  EXPECT_EQ(Desired("b"), 5u);
  rollout_.state = RolloutState::kRunning;
  rollout_.current_wave = 1;
  EXPECT_EQ(Desired("b"), 7u);
  EXPECT_EQ(Desired("c"), 7u);
  rollout_.state = RolloutState::kAborted;
  EXPECT_EQ(Desired("a"), 5u) << "abort sends its devices back";
  EXPECT_EQ(Desired("b"), 5u);
  EXPECT_EQ(Desired("lobby"), 7u);
  rollout_.state = RolloutState::kCompleted;
  state_.releases["kiosk"].insert(8);
  EXPECT_EQ(Desired("b"), 8u) << "a completed rollout limits nothing";
}

TEST_F(RolloutLimitTest, PinsBeatRollouts) {
  state_.device_pins["b"]["kiosk"] = 7;
  EXPECT_EQ(Desired("b"), 7u);
  state_.device_pins["a"]["kiosk"] = 5;
  EXPECT_EQ(Desired("a"), 5u);
}

// A rollout of 7 in waves of 4 and 4 devices, at most 25% failing, soak 60 s.
class RolloutEvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rollout_.id = 1;
    rollout_.app = "kiosk";
    rollout_.release = 7;
    rollout_.waves = {5000, 10000};
    rollout_.soak_s = 60;
    rollout_.max_failures = 2500;
    rollout_.wave_timeout_s = 600;
    rollout_.wave_started_at = 1000;
    for (int i = 0; i < 8; ++i) {
      const std::string name = "d" + std::to_string(i);
      members_.push_back({"dev-" + name, name, i < 4 ? 0u : 1u, i < 4 ? 1000 : 0, 0, "", 0});
    }
  }
  void Report(int i, const std::string& state, const std::string& health, int64_t at,
              const std::string& release = "7", const std::string& app = "kiosk",
              const std::string& failure = "") {
    reports_["dev-d" + std::to_string(i)] = {app, release, state, health, failure, at};
  }
  RolloutStep Step(int64_t now) { return EvaluateRollout(rollout_, members_, reports_, now); }

  Rollout rollout_;
  std::vector<RolloutMember> members_;
  std::map<std::string, ReportSeen> reports_;
};

TEST_F(RolloutEvaluateTest, HealthyForTheSoakTimeStartsTheNextWaveThenCompletes) {
  for (int i = 0; i < 3; ++i) Report(i, "running", "healthy", 1010);
  Report(3, "downloading", "unknown", 1010);  // slow: pending, not failed
  RolloutStep step = Step(1020);
  EXPECT_EQ(step.waves[0].soaking, 3u);
  EXPECT_EQ(step.waves[0].pending, 1u);
  EXPECT_FALSE(step.changed) << "not soaked yet";
  step = Step(1070);
  EXPECT_EQ(step.waves[0].healthy, 3u);
  ASSERT_TRUE(step.changed) << "3 of 4 healthy is 75%: enough";
  EXPECT_EQ(rollout_.current_wave, 1u);
  EXPECT_EQ(rollout_.wave_started_at, 1070);
  EXPECT_EQ(step.released, (std::vector<std::string>{"dev-d4", "dev-d5", "dev-d6", "dev-d7"}));
  EXPECT_EQ(members_[4].sent_at, 1070);
  for (int i = 4; i < 8; ++i) Report(i, "running", "healthy", 1080);
  EXPECT_FALSE(Step(1100).changed);
  step = Step(1140);
  EXPECT_EQ(rollout_.state, RolloutState::kCompleted);
  EXPECT_EQ(step.released.size(), 8u);
}

TEST_F(RolloutEvaluateTest, FailuresPastTheThresholdHaltWithTheDevicesNamed) {
  Report(0, "running", "healthy", 1010);
  Report(1, "rolled_back", "healthy", 1010, "6");
  EXPECT_FALSE(Step(1020).changed) << "1 of 4 is 25%: not past it";
  Report(2, "running", "unhealthy", 1030);
  RolloutStep step = Step(1040);
  ASSERT_EQ(rollout_.state, RolloutState::kHalted);
  EXPECT_EQ(step.waves[0].failed, 2u);
  EXPECT_EQ(rollout_.reason,
            "wave 1: 2 of 4 devices failed (at most 25% may): d1: switch rolled back (runs "
            "release 6); d2: health check failed on release 7");
  EXPECT_TRUE(step.released.empty()) << "the next wave never starts";
  for (int i = 0; i < 4; ++i) Report(i, "running", "healthy", 1100);
  Step(2000);
  EXPECT_EQ(rollout_.state, RolloutState::kHalted) << "a halt holds until resumed";
  EXPECT_EQ(rollout_.current_wave, 0u);
}

TEST_F(RolloutEvaluateTest, VerificationFailureCountsStaleAndOtherAppReportsDoNot) {
  Report(0, "failed", "unknown", 1010);
  Report(1, "rolled_back", "healthy", 900, "6");            // before the wave started
  Report(2, "rolled_back", "healthy", 1010, "3", "clock");  // another app
  RolloutStep step = Step(1020);
  EXPECT_EQ(step.waves[0].failed, 1u);
  EXPECT_EQ(members_[0].failure, "failed on release 7");
  EXPECT_EQ(step.waves[0].silent, 3u);
  EXPECT_EQ(rollout_.state, RolloutState::kRunning);
}

// The verdict of each failure kind a report may name: the release's own
// failures count, what the node retries by itself (a fetch, a full disk) is
// pending; a failed report without a kind (a 0.1.0 node) counts as before.
TEST_F(RolloutEvaluateTest, EachFailureKindHasItsVerdict) {
  struct Case {
    std::string state, failure, verdict;  // verdict: the member's failure, "" for pending
  };
  const std::vector<Case> cases = {
      {"failed", "verification", "verification failed on release 7"},
      {"failed", "deploy", "deployment failed on release 7"},
      {"failed", "health", "health check failed on release 7"},
      {"failed", "", "failed on release 7"},
      {"failed", "transfer", ""},
      {"failed", "disk", ""},
      {"rolled_back", "health", "switch rolled back, health check failed (runs release 6)"},
      {"rolled_back", "deploy", "switch rolled back, deployment failed (runs release 6)"},
      {"rolled_back", "", "switch rolled back (runs release 6)"},
  };
  for (const Case& c : cases) {
    Report(0, c.state, "unknown", 1010, c.state == "rolled_back" ? "6" : "7", "kiosk", c.failure);
    RolloutStep step = Step(1020);
    EXPECT_EQ(members_[0].failure, c.verdict) << c.state << " " << c.failure;
    EXPECT_EQ(step.waves[0].failed, c.verdict.empty() ? 0u : 1u) << c.state << " " << c.failure;
    EXPECT_EQ(step.waves[0].pending, c.verdict.empty() ? 4u : 3u) << c.state << " " << c.failure;
    EXPECT_EQ(rollout_.state, RolloutState::kRunning) << "1 of 4 is not past 25%";
  }
  // A device that retries its fetch turns into a failure once the release
  // itself fails, and into a verdict of health once it runs.
  Report(0, "failed", "unknown", 1030, "7", "kiosk", "transfer");
  Step(1040);
  EXPECT_EQ(members_[0].failure, "");
  Report(0, "running", "healthy", 1050);
  Step(1060);
  EXPECT_EQ(members_[0].healthy_since, 1050);
}

TEST_F(RolloutEvaluateTest, TheHaltReasonNamesTheFailureKinds) {
  Report(0, "failed", "unknown", 1010, "7", "kiosk", "verification");
  Report(1, "failed", "unknown", 1010, "7", "kiosk", "transfer");
  Report(2, "failed", "unknown", 1010, "7", "kiosk", "disk");
  EXPECT_FALSE(Step(1020).changed) << "only one of 4 failed the release; two retry";
  Report(3, "rolled_back", "healthy", 1030, "6", "kiosk", "health");
  RolloutStep step = Step(1040);
  ASSERT_EQ(rollout_.state, RolloutState::kHalted);
  EXPECT_EQ(step.waves[0].failed, 2u);
  EXPECT_EQ(step.waves[0].pending, 2u);
  EXPECT_EQ(rollout_.reason,
            "wave 1: 2 of 4 devices failed (at most 25% may): d0: verification failed on release "
            "7; d3: switch rolled back, health check failed (runs release 6)");
}

TEST_F(RolloutEvaluateTest, SilentDevicesArePendingAndLeftOutAfterTheWaveTimeout) {
  Report(0, "running", "healthy", 1010);
  Report(1, "running", "healthy", 1010);
  RolloutStep step = Step(1500);
  EXPECT_EQ(step.waves[0].silent, 2u);
  EXPECT_EQ(step.waves[0].failed, 0u) << "silent is not failed";
  EXPECT_FALSE(step.changed) << "2 of 4 is not enough before the timeout";
  step = Step(1600);
  EXPECT_TRUE(step.changed) << "after it, 2 of 2 that report are";
  EXPECT_EQ(rollout_.current_wave, 1u);
}

TEST_F(RolloutEvaluateTest, PausedCountsButNeverAdvancesOrHalts) {
  rollout_.state = RolloutState::kPaused;
  for (int i = 0; i < 4; ++i) Report(i, "rolled_back", "healthy", 1010, "6");
  RolloutStep step = Step(5000);
  EXPECT_EQ(step.waves[0].failed, 4u);
  EXPECT_FALSE(step.changed);
  EXPECT_EQ(rollout_.state, RolloutState::kPaused);
}

}  // namespace
}  // namespace flotilla::tracker
