// Sealing to a device's Ed25519 key: what one key seals only that key opens.
#include "core/sealed_box.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

TEST(SealedBoxTest, OpensWithTheKeyItWasSealedToOnly) {
  const Ed25519PrivateKey device = Ed25519PrivateKey::Generate();
  const Ed25519PrivateKey other = Ed25519PrivateKey::Generate();
  const std::string value = "s3cr3t-value-0123456789abcdefghij";
  auto box = SealToKey(device.public_key(), value);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  EXPECT_EQ(box->find(value), std::string::npos) << "the box does not hold the value";
  EXPECT_NE(*SealToKey(device.public_key(), value), *box) << "an ephemeral key each time";

  auto opened = OpenSealedBox(device, *box);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, value);

  auto refused = OpenSealedBox(other, *box);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kCorruption);
  EXPECT_NE(refused.status().message().find("another key"), std::string::npos);

  // An empty value seals and opens too.
  auto empty = SealToKey(device.public_key(), "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*OpenSealedBox(device, *empty), "");
}

TEST(SealedBoxTest, AlteredOrMalformedBoxesAreRefused) {
  const Ed25519PrivateKey device = Ed25519PrivateKey::Generate();
  std::string box = *SealToKey(device.public_key(), "value");
  std::string altered = box;
  altered[10] = altered[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(OpenSealedBox(device, altered).ok());
  EXPECT_FALSE(OpenSealedBox(device, "not base64 !").ok());
  EXPECT_FALSE(OpenSealedBox(device, "AAAA").ok()) << "shorter than a seal";
  EXPECT_FALSE(OpenSealedBox(device, std::string(20000, 'A')).ok()) << "bounded";
  EXPECT_FALSE(SealToKey(device.public_key(), std::string(kMaxSealedValueBytes + 1, 'x')).ok());
}

}  // namespace
}  // namespace flotilla
