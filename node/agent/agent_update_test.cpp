// The agent update's state machine on the fake clock: staging rules, the
// launcher's one try and its rollback, the packaged agent never downgrading
// an installed one, the probation check confirming or rolling back.
#include "node/agent/agent_update.h"

#include <gtest/gtest.h>

#include <set>

namespace flotilla::node::agent {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kPid = 4711;
const std::string kBoot = "boot-1";

// Every release directory exists unless the test removes it.
struct Installed {
  std::set<uint64_t> missing;
  bool operator()(uint64_t release) const { return missing.count(release) == 0; }
};

Proof ProvedAs(uint64_t release) { return Proof{true, true, true, true, release}; }

class AgentUpdateTest : public ::testing::Test {
 protected:
  Moment Now() const { return MomentOf(clock_, kBoot); }
  LaunchChoice Launch(uint64_t packaged = 0) {
    return ChooseLaunch(slots_, packaged, kPid, Now(), installed_);
  }

  FakeClock clock_;
  Installed installed_;
  AgentSlots slots_;
};

TEST_F(AgentUpdateTest, StageRefusesReleasesNotNewerThanWhatRunsRolledBackOrBelowTheFloor) {
  slots_.confirmed = 5;
  slots_.floor = 7;
  slots_.rolled_back = RolledBack{8, "never READY", 0, false};
  EXPECT_EQ(Stage(slots_, 5, 0).message(), "agent release 5: not newer than release 5");
  EXPECT_EQ(Stage(slots_, 9, 9).message(), "agent release 9: not newer than release 9");
  EXPECT_EQ(Stage(slots_, 8, 0).message(),
            "agent release 8: release 8 was rolled back (never READY); waiting for a newer one");
  slots_.rolled_back.reset();
  EXPECT_EQ(Stage(slots_, 6, 0).message(), "agent release 6: below the floor 7");
  EXPECT_FALSE(slots_.candidate);

  ASSERT_TRUE(Stage(slots_, 7, 0).ok());
  ASSERT_TRUE(Stage(slots_, 9, 0).ok());  // a newer one replaces a staged one
  EXPECT_EQ(slots_.candidate->release, 9u);
  EXPECT_EQ(Stage(slots_, 8, 0).message(), "agent release 8: release 9 is staged already");

  Launch();
  EXPECT_EQ(Stage(slots_, 10, 0).message(), "agent release 10: release 9 is on probation");
}

TEST_F(AgentUpdateTest, LaunchTakesOneTryThenRollsBackToTheConfirmedRelease) {
  slots_.confirmed = 5;
  ASSERT_TRUE(Stage(slots_, 6, 0).ok());
  clock_.Advance(30s);
  LaunchChoice first = Launch();
  EXPECT_FALSE(first.packaged);
  EXPECT_EQ(first.release, 6u);
  EXPECT_TRUE(first.on_probation);
  EXPECT_EQ(first.why, "trying release 6 (probation 120 s)");
  EXPECT_EQ(slots_.candidate, (Candidate{6, 0, kPid, kBoot, Now().mono_s}));

  // It exited, crashed or was killed: the unit starts again.
  clock_.Advance(5s);
  LaunchChoice second = Launch();
  EXPECT_FALSE(second.packaged);
  EXPECT_EQ(second.release, 5u);
  EXPECT_FALSE(second.on_probation);
  EXPECT_EQ(second.why,
            "rolled back release 6: did not prove itself before it stopped; running installed "
            "release 5");
  EXPECT_FALSE(slots_.candidate);
  EXPECT_EQ(slots_.rolled_back,
            (RolledBack{6, "did not prove itself before it stopped", Now().unix_s, false}));
  EXPECT_EQ(slots_.confirmed, 5u);

  // Not retried; a newer release is.
  EXPECT_FALSE(Stage(slots_, 6, 0).ok());
  EXPECT_TRUE(Stage(slots_, 7, 0).ok());
}

TEST_F(AgentUpdateTest, AFirstUpdateRollsBackToThePackagedAgent) {
  ASSERT_TRUE(Stage(slots_, 4, 3).ok());
  EXPECT_EQ(Launch(3).release, 4u);
  LaunchChoice back = Launch(3);
  EXPECT_TRUE(back.packaged);
  EXPECT_EQ(back.release, 3u);
}

TEST_F(AgentUpdateTest, LaunchNeverDowngradesToAnOlderPackagedAgent) {
  slots_.confirmed = 5;
  // An older .deb installed by hand: the installed release keeps running.
  LaunchChoice older = Launch(3);
  EXPECT_FALSE(older.packaged);
  EXPECT_EQ(older.release, 5u);
  EXPECT_EQ(older.why, "running installed release 5; the packaged agent (release 3) is older");
  // A newer .deb wins, with no probation.
  LaunchChoice newer = Launch(7);
  EXPECT_TRUE(newer.packaged);
  EXPECT_EQ(newer.release, 7u);
  EXPECT_FALSE(newer.on_probation);
  EXPECT_EQ(newer.why, "running the packaged agent (release 7); installed release 5 is not newer");
  // The installed one is gone (a wiped data directory): the packaged one runs.
  installed_.missing = {5};
  EXPECT_TRUE(Launch(3).packaged);
  EXPECT_EQ(Launch(3).why,
            "running the packaged agent (release 3); installed release 5 is missing");
}

TEST_F(AgentUpdateTest, ANewerPackageInstalledByHandSupersedesAStagedOrTriedCandidate) {
  slots_.confirmed = 5;
  ASSERT_TRUE(Stage(slots_, 6, 3).ok());
  LaunchChoice staged = Launch(7);
  EXPECT_TRUE(staged.packaged);
  EXPECT_EQ(staged.release, 7u);
  EXPECT_EQ(staged.why,
            "dropped release 6: the packaged agent (release 7) is not older; running the packaged "
            "agent (release 7); installed release 5 is not newer");
  EXPECT_FALSE(slots_.candidate);
  EXPECT_FALSE(slots_.rolled_back);

  ASSERT_TRUE(Stage(slots_, 8, 7).ok());
  EXPECT_EQ(Launch(7).release, 8u);  // on probation
  LaunchChoice tried = Launch(8);    // the .deb of release 8 meanwhile
  EXPECT_TRUE(tried.packaged);
  EXPECT_EQ(tried.release, 8u);
  EXPECT_FALSE(slots_.rolled_back);
}

TEST_F(AgentUpdateTest, AConfirmedReleaseBelowARaisedFloorGivesWayToAPackagedOneAboveIt) {
  slots_.confirmed = 5;
  slots_.floor = 6;
  EXPECT_EQ(Launch(6).release, 6u);
  EXPECT_TRUE(Launch(6).packaged);
  // Nothing at or above the floor: the newest there is.
  EXPECT_EQ(Launch(4).release, 5u);
}

TEST_F(AgentUpdateTest, AStagedCandidateWhoseDirectoryIsGoneIsDropped) {
  slots_.confirmed = 5;
  ASSERT_TRUE(Stage(slots_, 6, 0).ok());
  installed_.missing = {6};
  LaunchChoice choice = Launch();
  EXPECT_EQ(choice.release, 5u);
  EXPECT_EQ(choice.why, "dropped staged release 6: not installed; running installed release 5");
  EXPECT_FALSE(slots_.candidate);
  EXPECT_FALSE(slots_.rolled_back);
}

TEST_F(AgentUpdateTest, CheckConfirmsACandidateThatProvedItselfWithinProbation) {
  slots_.confirmed = 5;
  slots_.previous = 4;
  EXPECT_EQ(CheckProbation(slots_, ProvedAs(5), Now()).action, CheckAction::kNothing);
  ASSERT_TRUE(Stage(slots_, 6, 0).ok());
  // Staged but not started: nothing to check.
  EXPECT_EQ(CheckProbation(slots_, ProvedAs(6), Now()).action, CheckAction::kNothing);
  Launch();
  clock_.Advance(10s);
  Proof starting{true, false, false, false, 0};
  EXPECT_EQ(CheckProbation(slots_, starting, Now()).action, CheckAction::kNothing);
  clock_.Advance(100s);
  Proof other_release = ProvedAs(5);
  EXPECT_EQ(CheckProbation(slots_, other_release, Now()).action, CheckAction::kNothing);
  CheckResult confirmed = CheckProbation(slots_, ProvedAs(6), Now());
  EXPECT_EQ(confirmed.action, CheckAction::kConfirmed);
  EXPECT_EQ(confirmed.why, "confirmed release 6");
  EXPECT_EQ(slots_.confirmed, 6u);
  EXPECT_EQ(slots_.previous, 5u);
  EXPECT_FALSE(slots_.candidate);
  EXPECT_EQ(Launch().release, 6u);
}

TEST_F(AgentUpdateTest, CheckRollsBackAfterProbationAndAsksForTheKillWhileItRuns) {
  slots_.confirmed = 5;
  ASSERT_TRUE(Stage(slots_, 6, 0).ok());
  Launch();
  Proof hung{true, false, false, false, 0};
  clock_.Advance(119s);
  EXPECT_EQ(CheckProbation(slots_, hung, Now()).action, CheckAction::kNothing);
  clock_.Advance(1s);
  CheckResult back = CheckProbation(slots_, hung, Now());
  EXPECT_EQ(back.action, CheckAction::kRolledBackKill);
  EXPECT_EQ(back.why,
            "rolled back release 6: not proven within 120 s (control API did not answer)");
  EXPECT_FALSE(slots_.candidate);
  EXPECT_EQ(slots_.confirmed, 5u);
  // The killed candidate's unit starts again: the confirmed one runs.
  EXPECT_EQ(Launch().release, 5u);
  EXPECT_EQ(slots_.rolled_back->release, 6u);
}

TEST_F(AgentUpdateTest, CheckNamesWhatWasMissingAndDoesNotKillWhatIsGone) {
  struct Case {
    Proof proof;
    CheckAction action;
    std::string missing;
  };
  const Case cases[] = {
      {Proof{false, false, false, false, 0}, CheckAction::kRolledBack, "not running"},
      {Proof{true, true, false, false, 0}, CheckAction::kRolledBackKill,
       "control API did not answer"},
      {Proof{true, false, true, false, 6}, CheckAction::kRolledBackKill, "not READY"},
      {Proof{true, true, true, false, 6}, CheckAction::kRolledBackKill, "metadata not verified"},
      {Proof{true, true, true, true, 5}, CheckAction::kRolledBackKill,
       "its status names another release"},
  };
  for (const Case& c : cases) {
    AgentSlots slots;
    slots.confirmed = 5;
    ASSERT_TRUE(Stage(slots, 6, 0).ok());
    ChooseLaunch(slots, 0, kPid, Now(), installed_);
    CheckResult r = CheckProbation(slots, c.proof, MomentOf(clock_, kBoot), 30s);
    EXPECT_EQ(r.action, CheckAction::kNothing);
    clock_.Advance(30s);
    r = CheckProbation(slots, c.proof, Now(), 30s);
    EXPECT_EQ(r.action, c.action) << c.missing;
    EXPECT_EQ(r.why, "rolled back release 6: not proven within 30 s (" + c.missing + ")");
  }
}

TEST_F(AgentUpdateTest, ARebootDuringProbationRollsBack) {
  slots_.confirmed = 5;
  ASSERT_TRUE(Stage(slots_, 6, 0).ok());
  Launch();
  CheckResult r = CheckProbation(slots_, ProvedAs(6), MomentOf(clock_, "boot-2"));
  EXPECT_EQ(r.action, CheckAction::kRolledBack);
  EXPECT_EQ(r.why, "rolled back release 6: the device restarted during its probation");
  EXPECT_EQ(slots_.confirmed, 5u);
}

}  // namespace
}  // namespace flotilla::node::agent
