#include "core/ed25519.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "core/file_io.h"

namespace flotilla {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

// RFC 8032, section 7.1, TEST 1 and TEST 2.
constexpr std::string_view kSeed1 =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kPub1 =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr std::string_view kSig1 =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
constexpr std::string_view kSeed2 =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr std::string_view kSig2 =
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

TEST(Ed25519Test, Rfc8032Vectors) {
  auto key1 = Ed25519PrivateKey::FromSeed(Hex(kSeed1)).value();
  EXPECT_EQ(key1.public_key().Hex(), kPub1);
  auto sig1 = key1.Sign({});
  EXPECT_EQ(HexEncode(sig1), kSig1);
  EXPECT_TRUE(VerifyEd25519(key1.public_key(), {}, sig1).ok());

  auto key2 = Ed25519PrivateKey::FromSeed(Hex(kSeed2)).value();
  const Bytes message = {0x72};
  EXPECT_EQ(HexEncode(key2.Sign(message)), kSig2);
  EXPECT_TRUE(VerifyEd25519(key2.public_key(), message, Hex(kSig2)).ok());
}

TEST(Ed25519Test, RejectsModifiedMessageSignatureAndWrongKey) {
  auto key = Ed25519PrivateKey::Generate();
  auto other = Ed25519PrivateKey::Generate();
  const std::string message = R"({"signed":{"version":1}})";
  auto sig = key.Sign(AsBytes(message));
  ASSERT_TRUE(VerifyEd25519(key.public_key(), AsBytes(message), sig).ok());

  std::string changed = message;
  changed[12] = '2';
  EXPECT_EQ(VerifyEd25519(key.public_key(), AsBytes(changed), sig).code(), StatusCode::kCorruption);

  for (size_t byte : {0u, 31u, 32u, 63u}) {
    auto bad = sig;
    bad[byte] ^= 0x01;
    EXPECT_FALSE(VerifyEd25519(key.public_key(), AsBytes(message), bad).ok()) << byte;
  }
  EXPECT_FALSE(VerifyEd25519(other.public_key(), AsBytes(message), sig).ok());
  EXPECT_FALSE(VerifyEd25519(key.public_key(), AsBytes(message), ByteSpan(sig.data(), 63)).ok());
}

// S + L verifies under a lax "mod L" check; a strict verifier must refuse it.
TEST(Ed25519Test, RejectsNonCanonicalSignature) {
  auto key = Ed25519PrivateKey::FromSeed(Hex(kSeed1)).value();
  auto sig = key.Sign({});
  const Bytes order = Hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
  unsigned carry = 0;
  for (size_t i = 0; i < 32; ++i) {
    unsigned sum = sig[32 + i] + order[i] + carry;
    sig[32 + i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
  }
  ASSERT_EQ(carry, 0u);
  EXPECT_FALSE(VerifyEd25519(key.public_key(), {}, sig).ok());
}

TEST(Ed25519Test, RejectsSmallOrderPublicKey) {
  auto identity =
      Ed25519PublicKey::FromHex("0100000000000000000000000000000000000000000000000000000000000000")
          .value();
  Ed25519Signature sig{};
  sig[0] = 1;  // R = identity, S = 0: "verifies" for any message under a lax check
  EXPECT_FALSE(VerifyEd25519(identity, AsBytes("anything"), sig).ok());
}

class KeyFileTest : public ::testing::Test {
 protected:
  std::string path_ = ::testing::TempDir() + "/key_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name();
  void SetUp() override { std::remove(path_.c_str()); }
  void TearDown() override { std::remove(path_.c_str()); }
};

TEST_F(KeyFileTest, SavesOnlyTheSeedWithMode0600AndLoadsIt) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.SaveFile(path_).ok());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto loaded = Ed25519PrivateKey::LoadFile(path_, key.public_key());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->public_key(), key.public_key());
  EXPECT_EQ(loaded->Sign(AsBytes("m")), key.Sign(AsBytes("m")));
}

TEST_F(KeyFileTest, RefusesToOverwriteAKey) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.SaveFile(path_).ok());
  EXPECT_EQ(Ed25519PrivateKey::Generate().SaveFile(path_).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Ed25519PrivateKey::LoadFile(path_, key.public_key()).ok());
}

TEST_F(KeyFileTest, RefusesAKeyWhosePublicHalfDoesNotMatch) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.SaveFile(path_).ok());
  auto other = Ed25519PrivateKey::Generate();
  auto loaded = Ed25519PrivateKey::LoadFile(path_, other.public_key());
  EXPECT_EQ(loaded.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(KeyFileTest, RefusesAWorldReadableKeyFile) {
  ASSERT_TRUE(Ed25519PrivateKey::Generate().SaveFile(path_).ok());
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  auto loaded = Ed25519PrivateKey::LoadFile(path_);
  EXPECT_EQ(loaded.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(loaded.status().message().find("chmod 600"), std::string::npos);
}

TEST_F(KeyFileTest, RefusesAFileThatIsNotExactlyASeed) {
  for (size_t size : {0u, 31u, 33u, 64u}) {
    std::remove(path_.c_str());
    ASSERT_TRUE(WriteFileAtomic(path_, std::string(size, 'k'), 0600).ok());
    EXPECT_EQ(Ed25519PrivateKey::LoadFile(path_).status().code(), StatusCode::kInvalidArgument)
        << size;
  }
}

}  // namespace
}  // namespace flotilla
