#include "core/digest.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

namespace flotilla {
namespace {

// FIPS 180-2 / NIST CAVP example vectors.
TEST(DigestTest, PublishedVectors) {
  EXPECT_EQ(Digest::Of("").Hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Digest::Of("abc").Hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Digest::Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").Hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256Hasher million_a;
  std::string thousand(1000, 'a');
  for (int i = 0; i < 1000; ++i) million_a.Update(thousand);
  EXPECT_EQ(million_a.Finish().Hex(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(DigestTest, StreamingEqualsOneShotForAnySplit) {
  std::string data(100'003, '\0');
  std::mt19937 rng(7);
  for (auto& c : data) c = static_cast<char>(rng());
  const Digest whole = Digest::Of(data);
  for (size_t chunk : {1u, 63u, 64u, 65u, 4096u, 99'999u}) {
    Sha256Hasher hasher;
    for (size_t off = 0; off < data.size(); off += chunk) {
      hasher.Update(std::string_view(data).substr(off, chunk));
    }
    EXPECT_EQ(hasher.bytes_hashed(), data.size());
    EXPECT_EQ(hasher.Finish(), whole) << "chunk " << chunk;
  }
}

TEST(DigestTest, FinishResetsTheHasher) {
  Sha256Hasher hasher;
  hasher.Update("abc");
  (void)hasher.Finish();
  hasher.Update("abc");
  EXPECT_EQ(hasher.Finish(), Digest::Of("abc"));
}

TEST(DigestTest, TextFormRoundTripsAndRejectsBadForms) {
  const Digest d = Digest::Of("abc");
  EXPECT_EQ(d.ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto parsed = Digest::Parse(d.ToString());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, d);

  const std::string hex = d.Hex();
  EXPECT_FALSE(Digest::Parse(hex).ok()) << "prefix is required";
  EXPECT_FALSE(Digest::Parse("sha512:" + hex).ok());
  EXPECT_FALSE(Digest::Parse("sha256:" + hex.substr(1)).ok());
  EXPECT_FALSE(Digest::Parse("sha256:" + hex + "0").ok());
  std::string upper = "sha256:" + hex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  upper.replace(0, 7, "sha256:");
  EXPECT_FALSE(Digest::Parse(upper).ok()) << "upper-case hex would give two text forms";
  std::string bad = "sha256:" + hex;
  bad[20] = 'g';
  EXPECT_EQ(Digest::Parse(bad).status().code(), StatusCode::kInvalidArgument);
}

std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  ::pclose(pipe);
  return out;
}

TEST(DigestTest, HashFileAgreesWithSha256sumOnALargeFile) {
  const std::string path = ::testing::TempDir() + "/digest_large.bin";
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937_64 rng(42);
    std::vector<uint64_t> block(1 << 17);  // 1 MiB
    for (int i = 0; i < 96; ++i) {         // 96 MiB, not a multiple of 64 MiB windows
      for (auto& w : block) w = rng();
      out.write(reinterpret_cast<const char*>(block.data()), block.size() * sizeof(uint64_t));
    }
    out.write("tail", 4);
  }
  auto ours = HashFile(path);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  const std::string theirs = RunCommand("sha256sum " + path).substr(0, 64);
  EXPECT_EQ(ours->Hex(), theirs);
  std::remove(path.c_str());
}

TEST(DigestTest, HashFileReportsAMissingFile) {
  auto r = HashFile("/nonexistent/flotilla/file");
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("/nonexistent/flotilla/file"), std::string::npos);
}

}  // namespace
}  // namespace flotilla
