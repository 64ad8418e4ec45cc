#include "core/zstd_stream.h"

#include <gtest/gtest.h>

#include <random>

namespace flotilla {
namespace {

Bytes MixedData(size_t size) {
  Bytes data(size);
  std::mt19937 rng(1);
  for (size_t i = 0; i < size; ++i) {
    data[i] = (i / 4096) % 2 ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(i % 251);
  }
  return data;
}

TEST(ZstdTest, RoundTripInUnevenChunks) {
  const Bytes input = MixedData(3 << 20);
  Bytes compressed;
  ZstdCompressor compressor({.level = 3}, [&](ByteSpan c) {
    compressed.insert(compressed.end(), c.begin(), c.end());
    return Status::Ok();
  });
  for (size_t off = 0; off < input.size(); off += 77'777) {
    ByteSpan chunk(input.data() + off, std::min<size_t>(77'777, input.size() - off));
    ASSERT_TRUE(compressor.Write(chunk).ok());
  }
  ASSERT_TRUE(compressor.Finish().ok());
  EXPECT_LT(compressed.size(), input.size() * 3 / 4);

  Bytes output;
  ZstdDecompressor decompressor({.max_output_bytes = input.size()}, [&](ByteSpan c) {
    output.insert(output.end(), c.begin(), c.end());
    return Status::Ok();
  });
  for (size_t off = 0; off < compressed.size(); off += 1000) {
    ByteSpan chunk(compressed.data() + off, std::min<size_t>(1000, compressed.size() - off));
    ASSERT_TRUE(decompressor.Write(chunk).ok());
  }
  ASSERT_TRUE(decompressor.Finish().ok());
  EXPECT_EQ(output, input);
  EXPECT_EQ(decompressor.output_bytes(), input.size());
}

TEST(ZstdTest, OneShotHelpersRoundTrip) {
  const Bytes input = MixedData(100'000);
  auto compressed = ZstdCompress(input);
  ASSERT_TRUE(compressed.ok());
  auto output = ZstdDecompress(*compressed, input.size());
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  EXPECT_EQ(*output, input);
}

TEST(ZstdTest, OutputBoundIsExactAndInclusive) {
  const Bytes input = MixedData(10'000);
  auto compressed = ZstdCompress(input).value();
  EXPECT_TRUE(ZstdDecompress(compressed, 10'000).ok());
  EXPECT_EQ(ZstdDecompress(compressed, 9'999).status().code(), StatusCode::kResourceExhausted);
}

// 4 GiB of zeros compresses to ~128 KiB. Decompressing it with a 16 MiB bound
// must stop at the bound, having produced no more than the bound.
TEST(ZstdTest, DecompressionBombIsCutOffAtItsBound) {
  Bytes bomb;
  ZstdCompressor compressor({.level = 1}, [&](ByteSpan c) {
    bomb.insert(bomb.end(), c.begin(), c.end());
    return Status::Ok();
  });
  const Bytes zeros(1 << 20, 0);
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(compressor.Write(zeros).ok());
  ASSERT_TRUE(compressor.Finish().ok());
  ASSERT_LT(bomb.size(), 1u << 20);

  uint64_t delivered = 0;
  ZstdDecompressor decompressor({.max_output_bytes = 16 << 20}, [&](ByteSpan c) {
    delivered += c.size();
    return Status::Ok();
  });
  Status st = decompressor.Write(bomb);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_LE(delivered, 16u << 20);
  EXPECT_GT(delivered, 15u << 20);
}

TEST(ZstdTest, TruncatedAndCorruptStreamsAreErrors) {
  const Bytes input = MixedData(200'000);
  auto compressed = ZstdCompress(input).value();
  Bytes truncated(compressed.begin(), compressed.begin() + compressed.size() / 2);
  EXPECT_EQ(ZstdDecompress(truncated, input.size()).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ZstdDecompress({}, input.size()).status().code(), StatusCode::kCorruption);
  Bytes garbage = compressed;
  garbage[garbage.size() / 2] ^= 0xff;
  EXPECT_FALSE(ZstdDecompress(garbage, input.size()).ok()) << "checksum catches corruption";
  EXPECT_FALSE(ZstdDecompress(Bytes{'n', 'o', 't', 'z'}, 100).ok());
}

TEST(ZstdTest, RefusesAWindowLargerThanAllowed) {
  const Bytes input = MixedData(1 << 20);
  auto compressed = ZstdCompress(input, {.level = 3, .window_log = 26}).value();
  Bytes out;
  ZstdDecompressor small({.max_output_bytes = 1 << 21, .max_window_log = 18}, [&](ByteSpan c) {
    out.insert(out.end(), c.begin(), c.end());
    return Status::Ok();
  });
  Status st = small.Write(compressed);
  if (st.ok()) st = small.Finish();
  EXPECT_FALSE(st.ok()) << "a 2^26 window must not be accepted under a 2^18 limit";
}

TEST(ZstdTest, SinkErrorsStopTheStream) {
  auto compressed = ZstdCompress(MixedData(1 << 20)).value();
  ZstdDecompressor decompressor({.max_output_bytes = 1 << 21},
                                [](ByteSpan) { return ResourceExhausted("disk full"); });
  Status st = decompressor.Write(compressed);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(), "disk full");
}

}  // namespace
}  // namespace flotilla
