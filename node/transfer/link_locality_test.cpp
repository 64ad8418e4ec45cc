#include "node/transfer/link_locality.h"

#include <gtest/gtest.h>

namespace flotilla::node::transfer {
namespace {

lt::address A(const char* text) { return lt::make_address(text); }

TEST(LinkLocality, SubnetMembershipFollowsThePrefix) {
  const Subnet site{A("10.2.0.7"), 24};
  EXPECT_TRUE(InSubnet(A("10.2.0.1"), site));
  EXPECT_TRUE(InSubnet(A("10.2.0.255"), site));
  EXPECT_FALSE(InSubnet(A("10.3.0.1"), site));
  EXPECT_FALSE(InSubnet(A("10.2.1.1"), site));
  EXPECT_TRUE(InSubnet(A("10.2.1.1"), Subnet{A("10.2.0.7"), 16}));
  EXPECT_TRUE(InSubnet(A("192.0.2.1"), Subnet{A("10.0.0.1"), 0}));
  EXPECT_FALSE(InSubnet(A("10.2.0.8"), Subnet{A("10.2.0.7"), 32}));
  EXPECT_FALSE(InSubnet(A("::ffff:10.2.0.1"), site)) << "families never mix";

  const Subnet v6{A("fd00:1:2:3::9"), 64};
  EXPECT_TRUE(InSubnet(A("fd00:1:2:3:ffff::1"), v6));
  EXPECT_FALSE(InSubnet(A("fd00:1:2:4::1"), v6));
  EXPECT_TRUE(InSubnet(A("fd00:1:2:4::1"), Subnet{A("fd00:1:2:3::9"), 46}));
  EXPECT_FALSE(InSubnet(A("fd00:1:6::1"), Subnet{A("fd00:1:2:3::9"), 46}));
}

TEST(LinkLocality, FollowerFilterAdmitsOnlyTheLanAndTheOrigin) {
  const std::vector<Subnet> lan = {{A("10.2.0.7"), 24}, {A("127.0.0.1"), 8}, {A("fd00:2::7"), 64}};
  const lt::ip_filter f = OnLinkOnlyFilter(lan, {A("10.100.0.1")});
  auto allowed = [&](const char* ip) { return f.access(A(ip)) == 0; };
  EXPECT_TRUE(allowed("10.2.0.1"));
  EXPECT_TRUE(allowed("10.2.0.254"));
  EXPECT_TRUE(allowed("127.0.0.3"));
  EXPECT_TRUE(allowed("10.100.0.1")) << "the origin stays reachable for the stall rule";
  EXPECT_TRUE(allowed("fd00:2::1234"));
  EXPECT_FALSE(allowed("10.1.0.2")) << "another site";
  EXPECT_FALSE(allowed("10.100.0.2"));
  EXPECT_FALSE(allowed("8.8.8.8"));
  EXPECT_FALSE(allowed("fd00:3::1"));
}

TEST(LinkLocality, AFollowerIsBehindItsLanInEveryIncompleteTorrent) {
  EXPECT_FALSE(IsLanFollower({})) << "nothing to fetch: serve other sites";
  EXPECT_TRUE(IsLanFollower({1}));
  EXPECT_TRUE(IsLanFollower({2, 1, 1}));
  EXPECT_FALSE(IsLanFollower({1, 0, 2}))
      << "first on its LAN for one torrent: it fetches for the site";
  EXPECT_FALSE(IsLanFollower({0}));
}

TEST(LinkLocality, LocalSubnetsHoldLoopback) {
  auto subnets = LocalSubnets();
  ASSERT_TRUE(subnets.ok()) << subnets.status().ToString();
  EXPECT_TRUE(OnLink(A("127.0.0.5"), *subnets)) << "peers on this host are on-link";
}

}  // namespace
}  // namespace flotilla::node::transfer
