#include "node/transfer/peer_gate.h"

#include <gtest/gtest.h>

namespace flotilla::node::transfer {
namespace {

TEST(PeerGateTest, ABanHoldsForItsAddressOnlyAndIsNewOnce) {
  PeerGate gate;
  const lt::address bad = lt::make_address("192.0.2.9");
  EXPECT_FALSE(gate.Banned(bad));
  EXPECT_TRUE(gate.Ban(bad));
  EXPECT_FALSE(gate.Ban(bad));  // already banned: not counted twice
  EXPECT_TRUE(gate.Banned(bad));
  EXPECT_FALSE(gate.Banned(lt::make_address("192.0.2.10")));
  EXPECT_TRUE(gate.Ban(lt::make_address("2001:db8::9")));
  EXPECT_TRUE(gate.Banned(lt::make_address("2001:db8::9")));
}

}  // namespace
}  // namespace flotilla::node::transfer
