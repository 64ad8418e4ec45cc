// Device accounting: every byte a device receives lands in exactly one class
// (origin, own LAN, other sites' peers), decided by where it came from.
#include <gtest/gtest.h>

#include <filesystem>

#include "sim/device_accounting.h"
#include "sim/network_run.h"
#include "tests/sim/sim_test_util.h"
#include "tests/support/test_util.h"

namespace flotilla::sim::testing {
namespace {

constexpr int kDatagrams = 200, kPayload = 1000;
constexpr uint64_t kIpBytes = kDatagrams * (kPayload + 28);  // + IPv4 and UDP headers

TEST(DeviceAccountingTest, ParsesNftJson) {
  const std::string json = R"({"nftables":[{"metainfo":{"version":"1.0.6"}},
    {"counter":{"family":"inet","name":"rx_origin","table":"fsim_acct","handle":1,"packets":2,"bytes":100}},
    {"counter":{"family":"inet","name":"rx_lan","table":"fsim_acct","handle":2,"packets":1,"bytes":7}},
    {"counter":{"family":"inet","name":"rx_wan_peers","table":"fsim_acct","handle":3,"packets":0,"bytes":0}},
    {"counter":{"family":"inet","name":"tx_lan","table":"fsim_acct","handle":4,"packets":0,"bytes":5}},
    {"counter":{"family":"inet","name":"tx_wan","table":"fsim_acct","handle":5,"packets":0,"bytes":9}}]})";
  auto t = ParseDeviceAccounting(json);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, (DeviceTraffic{100, 7, 0, 5, 9}));
  EXPECT_FALSE(ParseDeviceAccounting(R"({"nftables":[]})").ok()) << "missing counters";
  EXPECT_FALSE(ParseDeviceAccounting("not json").ok());
}

TEST(DeviceAccountingTest, ClassifiesBySource) {
  TopologySpec spec;
  spec.sites = {SiteSpec{"home", 2, false}, SiteSpec{"away", 1, false}};
  auto run = NetworkRun::Start(spec, "accounting test");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  Topology& t = (*run)->topology();
  const std::string me = t.DeviceNetns(0, 0);
  ASSERT_TRUE(InstallDeviceAccounting(me, "10.1.0.0/24", Topology::CloudAddress()).ok());
  std::string dir = flotilla::testing::MakeTempDir("acct");

  struct Source {
    std::string ns;
    uint64_t DeviceTraffic::*counter;
  } sources[] = {{t.DeviceNetns(0, 1), &DeviceTraffic::rx_lan},
                 {t.CloudNetns(), &DeviceTraffic::rx_origin},
                 {t.DeviceNetns(1, 0), &DeviceTraffic::rx_wan_peers}};
  for (const Source& source : sources) {
    // Re-installing zeroes every counter.
    ASSERT_TRUE(InstallDeviceAccounting(me, "10.1.0.0/24", Topology::CloudAddress()).ok());
    auto probe =
        RunUdpProbe(source.ns, me, Topology::DeviceAddress(0, 0), kDatagrams, 200, kPayload, dir);
    ASSERT_EQ(probe.sender_exit, 0) << source.ns;
    auto traffic = ReadDeviceAccounting(me);
    ASSERT_TRUE(traffic.ok()) << traffic.status().ToString();
    // Warm-up and end datagrams come on top of the data.
    EXPECT_GE((*traffic).*source.counter, kIpBytes) << source.ns;
    EXPECT_LE((*traffic).*source.counter, kIpBytes * 3 / 2) << source.ns;
    uint64_t rx_total = traffic->rx_origin + traffic->rx_lan + traffic->rx_wan_peers;
    EXPECT_EQ(rx_total, (*traffic).*source.counter) << "bytes in a class they did not come from";
    // The sink echoes warm-ups back to the sender.
    bool lan_source = source.counter == &DeviceTraffic::rx_lan;
    EXPECT_EQ(traffic->tx_lan > 0, lan_source) << source.ns;
    EXPECT_EQ(traffic->tx_wan > 0, !lan_source) << source.ns;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::sim::testing
