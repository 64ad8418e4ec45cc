// The topology as a whole: NAT semantics, ground-truth counters, isolation
// of concurrent runs.
#include "sim/topology.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "sim/network_run.h"
#include "tests/sim/sim_test_util.h"
#include "tests/support/test_util.h"

namespace flotilla::sim::testing {
namespace {

class TopologyTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = flotilla::testing::MakeTempDir("topo"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  bool Reaches(const std::string& from_ns, const std::string& to_ns, const std::string& address) {
    auto r = RunUdpProbe(from_ns, to_ns, address, 5, 1000, 100, dir_, /*timeout_s=*/3);
    return r.sender_exit == 0 && r.sink.value("received", 0) == 5;
  }

  std::string dir_;
};

TEST_F(TopologyTest, NatSitesAreReachableOnlyOutboundOpenSitesFromAnywhere) {
  TopologySpec spec;
  spec.sites = {SiteSpec{"nat-a", 2, true}, SiteSpec{"open", 1, false}, SiteSpec{"nat-b", 1, true}};
  auto run = NetworkRun::Start(spec, "nat test");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  Topology& t = (*run)->topology();
  const std::string cloud = t.CloudNetns();
  EXPECT_TRUE(Reaches(t.DeviceNetns(0, 0), cloud, Topology::CloudAddress()))
      << "NAT'd device -> cloud";
  EXPECT_TRUE(Reaches(t.DeviceNetns(0, 0), t.DeviceNetns(0, 1), Topology::DeviceAddress(0, 1)))
      << "LAN neighbours";
  EXPECT_TRUE(Reaches(t.DeviceNetns(0, 0), t.DeviceNetns(1, 0), Topology::DeviceAddress(1, 0)))
      << "NAT'd device -> device of an open site";
  EXPECT_TRUE(Reaches(cloud, t.DeviceNetns(1, 0), Topology::DeviceAddress(1, 0)))
      << "cloud -> device of an open site";
  EXPECT_FALSE(Reaches(cloud, t.DeviceNetns(0, 0), Topology::DeviceAddress(0, 0)))
      << "cloud must not open connections into a NAT'd site";
  EXPECT_FALSE(Reaches(t.DeviceNetns(1, 0), t.DeviceNetns(0, 0), Topology::DeviceAddress(0, 0)))
      << "an open site must not reach into a NAT'd one";
  EXPECT_FALSE(Reaches(t.DeviceNetns(0, 0), t.DeviceNetns(2, 0), Topology::DeviceAddress(2, 0)))
      << "two NAT'd sites must not reach each other";
}

TEST_F(TopologyTest, RouterAndOriginCountersAreGroundTruth) {
  TopologySpec spec;
  spec.sites = {SiteSpec{"a", 1, false}, SiteSpec{"b", 1, false}};
  auto run = NetworkRun::Start(spec, "counter test");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  Topology& t = (*run)->topology();
  auto site0 = t.SiteWanCounters(0).value(), site1 = t.SiteWanCounters(1).value();
  auto origin = t.OriginCounters().value();
  constexpr int kDatagrams = 1000, kPayload = 1000;
  auto r = RunUdpProbe(t.CloudNetns(), t.DeviceNetns(0, 0), Topology::DeviceAddress(0, 0),
                       kDatagrams, 100, kPayload, dir_);
  ASSERT_EQ(r.sender_exit, 0);
  ASSERT_EQ(r.sink["received"], kDatagrams);
  // Each datagram is payload + UDP 8 + IPv4 20 + Ethernet 14 bytes on the wire;
  // the slack covers warm-up and end datagrams and ARP.
  const uint64_t wire = uint64_t(kDatagrams) * (kPayload + 42);
  auto down0 = t.SiteWanCounters(0).value().rx_bytes - site0.rx_bytes;
  auto down1 = t.SiteWanCounters(1).value().rx_bytes - site1.rx_bytes;
  auto egress = t.OriginCounters().value().tx_bytes - origin.tx_bytes;
  EXPECT_GE(down0, wire);
  EXPECT_LE(down0, wire + 20'000);
  EXPECT_GE(egress, wire);
  EXPECT_LE(egress, wire + 20'000);
  EXPECT_LT(down1, 1'000u) << "site b carried none of it";
  EXPECT_FALSE(t.SiteWanCounters(2).ok());
}

TEST_F(TopologyTest, ConcurrentRunsShareAddressesButNothingElse) {
  auto a = NetworkRun::Start(OneSite({}, {}), "run a");
  auto b = NetworkRun::Start(OneSite({}, {}), "run b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->run_id(), (*b)->run_id());
  for (const auto* run : {&*a, &*b}) {
    for (const std::string& ns : (*run)->topology().AllNetns()) {
      EXPECT_NE(ns.find((*run)->run_id()), std::string::npos) << ns;
    }
    EXPECT_EQ(NetnsOf((*run)->run_id()).size(), (*run)->topology().AllNetns().size());
  }
  Topology& ta = (*a)->topology();
  EXPECT_TRUE(Reaches(ta.DeviceNetns(0, 0), ta.CloudNetns(), Topology::CloudAddress()));
  ASSERT_TRUE((*a)->Stop().ok());
  EXPECT_TRUE(NetnsOf((*a)->run_id()).empty());
  Topology& tb = (*b)->topology();
  EXPECT_TRUE(Reaches(tb.DeviceNetns(0, 0), tb.CloudNetns(), Topology::CloudAddress()))
      << "stopping one run must not disturb the other";
}

TEST_F(TopologyTest, CutLinksLoseEverythingAndRecover) {
  auto run = NetworkRun::Start(OneSite({}, {}, /*nat=*/true, /*devices=*/2), "churn test");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  Topology& t = (*run)->topology();
  const std::string cloud = t.CloudNetns(), d0 = t.DeviceNetns(0, 0), d1 = t.DeviceNetns(0, 1);
  ASSERT_TRUE(Reaches(d0, cloud, Topology::CloudAddress()));
  ASSERT_TRUE(t.SetSiteWanUp(0, false).ok());
  EXPECT_FALSE(Reaches(d0, cloud, Topology::CloudAddress())) << "WAN cut";
  EXPECT_TRUE(Reaches(d0, d1, Topology::DeviceAddress(0, 1))) << "the LAN works without the WAN";
  ASSERT_TRUE(t.SetSiteWanUp(0, true).ok());
  EXPECT_TRUE(Reaches(d0, cloud, Topology::CloudAddress())) << "WAN restored";
  ASSERT_TRUE(t.SetDeviceLinkUp(0, 1, false).ok());
  EXPECT_FALSE(Reaches(d0, d1, Topology::DeviceAddress(0, 1))) << "device 1 cut off";
  EXPECT_TRUE(Reaches(d0, cloud, Topology::CloudAddress())) << "device 0 unaffected";
  ASSERT_TRUE(t.SetDeviceLinkUp(0, 1, true).ok());
  EXPECT_TRUE(Reaches(d1, cloud, Topology::CloudAddress())) << "device 1 back";
  EXPECT_FALSE(t.SetDeviceLinkUp(0, 2, false).ok());
  EXPECT_FALSE(t.SetSiteWanUp(1, false).ok());
}

TEST_F(TopologyTest, InvalidSpecsAreRefusedBeforeAnythingIsMade) {
  TopologySpec empty;
  EXPECT_FALSE(NetworkRun::Start(empty, "x").ok());
  TopologySpec bad = OneSite(LinkShape{.delay_us = 1000, .jitter_us = 2000}, {});
  auto before = ListNetns().value();
  EXPECT_FALSE(NetworkRun::Start(bad, "x").ok());
  EXPECT_EQ(ListNetns().value().size(), before.size());
}

}  // namespace
}  // namespace flotilla::sim::testing
