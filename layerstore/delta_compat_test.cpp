// Devices in the field run 0.1.0: a delta that 0.1.0's tracker published
// (format 2) applies with today's code. layerstore/testdata/delta-v2/ holds
// bytes in format 2 exactly as 0.1.0 (commit 23f4e79) encodes them
// (EncodeDelta with window_log 20): base.tar.zst is the base layer
// (zstd-compressed here only to keep the fixture small) and v2.delta rebuilds
// the target layer from it with every op of that format: copies by path and
// by content, patches (a version rename, an edit, a file of two chunks),
// literal files in a frame, an empty file. Never regenerate these files with
// newer code.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "core/zstd_stream.h"
#include "layerstore/delta.h"

namespace flotilla::layerstore {
namespace {

namespace fs = std::filesystem;

const std::string kFixture = std::string(FLOTILLA_SOURCE_DIR) + "/layerstore/testdata/delta-v2";
const Digest kTarget =
    Digest::Parse("sha256:618dfa5ddeaed669bbdddff2e462e9e98fd12174ece8c3ea966a760782828d9f")
        .value();

TEST(DeltaCompatTest, FormatTwoDeltaAppliesToTheLayerItWasMadeFor) {
  const fs::path dir = ::testing::TempDir() + "/delta-compat";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto store = LayerStore::Open(dir / "store");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto packed = ReadFileBounded(kFixture + "/base.tar.zst", 1 << 20);
  ASSERT_TRUE(packed.ok()) << packed.status().ToString();
  auto base = ZstdDecompress(*packed, 1 << 20);
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  MemoryByteSource base_source(*base);
  auto base_info = (*store)->UnpackLayer(base_source, Digest::Of(*base), base->size(), {});
  ASSERT_TRUE(base_info.ok()) << base_info.status().ToString();

  auto header = ReadDeltaHeaderFile(kFixture + "/v2.delta");
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->version, 2);
  EXPECT_EQ(header->target, kTarget);
  EXPECT_EQ(header->bases, std::vector<Digest>{Digest::Of(*base)});

  auto delta = OpenFileSource(kFixture + "/v2.delta");
  ASSERT_TRUE(delta.ok());
  const std::string out = dir / "rebuilt.tar";
  auto applied = ApplyDeltaToFile(**store, **delta, out, {}, &kTarget);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  auto rebuilt = ReadFileBounded(out, 1 << 20);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(Digest::Of(*rebuilt), kTarget);
  EXPECT_EQ(rebuilt->size(), header->target_length);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::layerstore
