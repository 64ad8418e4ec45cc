// Sealing to a device's Ed25519 key: what one key seals only that key opens.
#include "core/sealed_box.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace flotilla {
namespace {

SealedBoxOpener Opener(uint8_t fill) { return SealedBoxOpener::FromSeed(Bytes(32, fill)).value(); }

TEST(SealedBoxTest, OpensWithTheKeyItWasSealedToOnly) {
  const SealedBoxOpener device = Opener(1);
  const SealedBoxOpener other = Opener(2);
  EXPECT_EQ(device.public_key(), Ed25519PrivateKey::FromSeed(Bytes(32, 1)).value().public_key())
      << "the opener's key is the Ed25519 key of the same seed";
  const std::string value = "s3cr3t-value-0123456789abcdefghij";
  auto box = SealToKey(device.public_key(), value);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  EXPECT_EQ(box->find(value), std::string::npos) << "the box does not hold the value";
  EXPECT_NE(*SealToKey(device.public_key(), value), *box) << "an ephemeral key each time";

  auto opened = device.Open(*box);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, value);
  WipeString(*opened);
  EXPECT_TRUE(opened->empty());

  auto refused = other.Open(*box);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kCorruption);
  EXPECT_NE(refused.status().message().find("another key"), std::string::npos);

  auto empty = SealToKey(device.public_key(), "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(device.Open(*empty).value(), "");
}

TEST(SealedBoxTest, AlteredOrMalformedBoxesAreRefused) {
  const SealedBoxOpener device = Opener(3);
  const std::string box = SealToKey(device.public_key(), "value").value();
  std::string altered = box;
  altered[10] = altered[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(device.Open(altered).ok());
  EXPECT_FALSE(device.Open("not base64 !").ok());
  EXPECT_FALSE(device.Open("AAAA").ok()) << "shorter than a seal";
  EXPECT_FALSE(device.Open(std::string(20000, 'A')).ok()) << "bounded";
  EXPECT_FALSE(SealToKey(device.public_key(), std::string(kMaxSealedValueBytes + 1, 'x')).ok());
}

TEST(SealedBoxTest, LoadsTheDeviceKeyFile) {
  const std::string dir = ::testing::TempDir() + "/sealed-box";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.SaveFile(dir + "/device-key").ok());
  auto opener = SealedBoxOpener::LoadFile(dir + "/device-key");
  ASSERT_TRUE(opener.ok()) << opener.status().ToString();
  EXPECT_EQ(opener->public_key(), key.public_key());
  EXPECT_EQ(opener->Open(SealToKey(key.public_key(), "v").value()).value(), "v");
  ::chmod((dir + "/device-key").c_str(), 0644);
  EXPECT_FALSE(SealedBoxOpener::LoadFile(dir + "/device-key").ok()) << "readable by others";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla
