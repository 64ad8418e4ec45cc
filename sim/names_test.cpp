#include "sim/names.h"

#include <gtest/gtest.h>

#include <set>

#include "sim/netns.h"
#include "sim/probe.h"

namespace flotilla::sim {
namespace {

TEST(NamesTest, RunIdsAreValidAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRunId();
    EXPECT_TRUE(ValidateRunId(id).ok()) << id;
    ids.insert(id);
  }
  EXPECT_GT(ids.size(), 995u);
}

TEST(NamesTest, NetnsNamesCarryTheirRunId) {
  EXPECT_EQ(NetnsName("abc123", "s0d2"), "fsim-abc123-s0d2");
  EXPECT_EQ(RunIdOfNetns("fsim-abc123-s0d2"), "abc123");
  EXPECT_EQ(RunIdOfNetns("fsim-abc123-"), std::nullopt);
  EXPECT_EQ(RunIdOfNetns("fsim-ABC123-x"), std::nullopt);
  EXPECT_EQ(RunIdOfNetns("fsim-abc12-xx"), std::nullopt);
  EXPECT_EQ(RunIdOfNetns("other-abc123-x"), std::nullopt);
  EXPECT_FALSE(ValidateRunId("../etc").ok());
  EXPECT_FALSE(ValidateRunId("abc12").ok());
}

TEST(ProbeTest, DatagramsRoundTripAndForeignBytesAreRefused) {
  Bytes d = EncodeProbe({ProbeKind::kEnd, 123456789012345, 987654321}, 200);
  ASSERT_EQ(d.size(), 200u);
  auto back = DecodeProbe(d);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->kind, ProbeKind::kEnd);
  EXPECT_EQ(back->seq, 123456789012345u);
  EXPECT_EQ(back->sent_ns, 987654321u);
  d[0] = 'X';
  EXPECT_FALSE(DecodeProbe(d).has_value());
  EXPECT_FALSE(DecodeProbe(Bytes(10, 0)).has_value());
}

TEST(ProbeTest, StatsCountDuplicatesReorderingAndDelays) {
  ProbeStats s;
  s.AddData(0, 10'000'000, 100);
  s.AddData(2, 30'000'000, 100);
  s.AddData(1, 20'000'000, 100);
  s.AddData(2, 99'000'000, 100);
  s.SetSent(4);
  Json j = s.ToJson();
  EXPECT_EQ(j["received"], 3);
  EXPECT_EQ(j["sent"], 4);
  EXPECT_EQ(j["duplicates"], 1);
  EXPECT_EQ(j["reordered"], 1);
  EXPECT_EQ(j["bytes"], 300);
  EXPECT_EQ(j["delay_us"]["min"], 10'000);
  EXPECT_EQ(j["delay_us"]["p50"], 20'000);
  EXPECT_EQ(j["delay_us"]["max"], 30'000);
  EXPECT_EQ(j["delay_us"]["mean"], 20'000);
}

}  // namespace
}  // namespace flotilla::sim

namespace flotilla::sim {
namespace {

TEST(NetDevTest, ParsesTheKernelsCounterTable) {
  const std::string text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:       0       0    0    0    0     0          0         0        0       0    0    "
      "0    0     0       0          0\n"
      "   wan: 18446744073709551615 12    0    0    0     0          0         0 4242 7    0    0 "
      "   0     0       0          0\n"
      "  wan0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n";
  auto wan = ParseNetDev(text, "wan");
  ASSERT_TRUE(wan.ok()) << wan.status().ToString();
  EXPECT_EQ(wan->rx_bytes, 18446744073709551615u);
  EXPECT_EQ(wan->rx_packets, 12u);
  EXPECT_EQ(wan->tx_bytes, 4242u);
  EXPECT_EQ(wan->tx_packets, 7u);
  EXPECT_EQ(ParseNetDev(text, "wan0")->tx_bytes, 3u);
  EXPECT_EQ(ParseNetDev(text, "wa").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ParseNetDev("  eth0: 1 2 3\n", "eth0").status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace flotilla::sim
