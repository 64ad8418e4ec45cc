#include "tracker/announce/reputation.h"

#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

const IpAddress kBad = IpAddress::Parse("198.51.100.7").value();

InfoHash20 Hash(uint8_t b) {
  InfoHash20 h;
  h.fill(b);
  return h;
}

TEST(PeerReputation, OneSiteNeverDelistsTwoSitesDo) {
  FakeClock clock;
  PeerReputation reputation(clock, std::chrono::seconds(100));
  // Any number of reports from one site leave the peer listed.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reputation.Report(Hash(1), kBad, 6881, "site:a"));
  EXPECT_FALSE(reputation.Delisted(Hash(1), kBad, 6881));
  ASSERT_TRUE(reputation.Report(Hash(1), kBad, 6881, "site:b"));
  EXPECT_TRUE(reputation.Delisted(Hash(1), kBad, 6881));
  // Only for that swarm, address and port.
  EXPECT_FALSE(reputation.Delisted(Hash(2), kBad, 6881));
  EXPECT_FALSE(reputation.Delisted(Hash(1), kBad, 6882));
  EXPECT_FALSE(reputation.Delisted(Hash(1), IpAddress::Parse("198.51.100.8").value(), 6881));
  EXPECT_EQ(reputation.mark_count(), 2u);
}

TEST(PeerReputation, MarksExpireWithThePeerTtl) {
  FakeClock clock;
  PeerReputation reputation(clock, std::chrono::seconds(100));
  ASSERT_TRUE(reputation.Report(Hash(1), kBad, 1, "site:a"));
  clock.Advance(std::chrono::seconds(60));
  ASSERT_TRUE(reputation.Report(Hash(1), kBad, 1, "site:b"));
  EXPECT_TRUE(reputation.Delisted(Hash(1), kBad, 1));
  clock.Advance(std::chrono::seconds(41));  // site a's report is 101 s old
  EXPECT_FALSE(reputation.Delisted(Hash(1), kBad, 1));
  // A repeated report keeps a mark alive past its first expiry.
  ASSERT_TRUE(reputation.Report(Hash(1), kBad, 1, "site:a"));
  EXPECT_TRUE(reputation.Delisted(Hash(1), kBad, 1));
  clock.Advance(std::chrono::seconds(200));
  ASSERT_TRUE(reputation.Report(Hash(3), kBad, 1, "site:a"));  // sweeps the old marks
  EXPECT_EQ(reputation.mark_count(), 1u);
}

TEST(PeerReputation, TableIsBounded) {
  FakeClock clock;
  PeerReputation reputation(clock, std::chrono::seconds(100), 3);
  for (uint16_t port = 1; port <= 3; ++port) {
    ASSERT_TRUE(reputation.Report(Hash(1), kBad, port, "site:a"));
  }
  EXPECT_FALSE(reputation.Report(Hash(1), kBad, 4, "site:a"));
  EXPECT_TRUE(reputation.Report(Hash(1), kBad, 3, "site:a")) << "a known mark is refreshed";
  EXPECT_EQ(reputation.mark_count(), 3u);
}

TEST(PeerReputation, SiteIsTheLabelElseTheSourceNetwork) {
  const IpAddress a = IpAddress::Parse("203.0.113.9").value();
  EXPECT_EQ(ReporterSite("shop-7", a), "site:shop-7");
  EXPECT_EQ(ReporterSite("", a), "net:203.0.113.0/24");
  EXPECT_EQ(ReporterSite("", IpAddress::Parse("203.0.113.200").value()), ReporterSite("", a));
  EXPECT_EQ(ReporterSite("", IpAddress::Parse("2001:db8:1:2::5").value()),
            "net:2001:0db8:0001::/48");
}

}  // namespace
}  // namespace flotilla::tracker
