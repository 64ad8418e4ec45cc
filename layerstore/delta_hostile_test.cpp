// Deltas no encoder writes, made byte by byte (header and trailer right), that
// the applier must refuse before it writes more than the layer it promises.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "layerstore/delta.h"
#include "layerstore/delta_format.h"
#include "layerstore/delta_zstd.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

namespace fs = std::filesystem;
using namespace delta_internal;  // NOLINT: the codec's own internals

class DeltaHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flotilla-delta-hostile-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out");
    device_ = std::move(LayerStore::Open(dir_ / "device")).value();
    testing::TarBuilder tar;
    tar.File("old", std::string(4096, 'o'));
    const Bytes base = tar.Finish();
    base_ = Digest::Of(base);
    MemoryByteSource source(base);
    ASSERT_TRUE(device_->UnpackLayer(source, base_, base.size(), {}).ok());
  }
  void TearDown() override {
    device_.reset();
    fs::remove_all(dir_);
  }

  // A format-3 delta over the base: `recipe` (compressed), no literal
  // section, `patches` as the patch section, the trailer right.
  Bytes MakeDelta(const Bytes& recipe, const Bytes& patches, uint64_t target_length) {
    WireHeader wire;
    DeltaHeader& h = wire.header;
    h.bases = {base_};
    h.target = Digest::Of(recipe);
    h.target_length = target_length;
    h.window_log = kMinDeltaWindowLog;
    Bytes compressed = CompressWithPrefix(recipe, {}, 1, h.window_log).value();
    h.recipe_length = recipe.size();
    h.recipe_bytes = compressed.size();
    h.patch_bytes = patches.size();
    Bytes delta = EncodeHeader(wire);
    delta.insert(delta.end(), compressed.begin(), compressed.end());
    delta.insert(delta.end(), patches.begin(), patches.end());
    const Digest trailer = Digest::Of(delta);
    delta.insert(delta.end(), trailer.bytes().begin(), trailer.bytes().end());
    return delta;
  }

  Result<DeltaHeader> Apply(const Bytes& delta) {
    MemoryByteSource source(delta);
    return ApplyDeltaToFile(*device_, source, dir_ / "out/layer.tar");
  }

  fs::path dir_;
  std::unique_ptr<LayerStore> device_;
  Digest base_;
};

// A FILE record whose size, added to what the layer already holds, wraps past
// 2^64 would pass a bound checked as a sum; its PATCH would then write chunk
// after chunk (each a few bytes of the delta) far beyond target_length.
TEST_F(DeltaHostileTest, FileSizeThatWrapsTheLayerLengthIsRefused) {
  Bytes recipe{kRecordRaw, 1, 'x', kRecordFile};
  PutVarint(recipe, UINT64_MAX);  // with the RAW byte: 2^64, that is 0
  PutLengthPrefixed(recipe, "old");
  recipe.push_back(kOpPatch);
  PutVarint(recipe, 0);  // base 0, the FILE's own path, old size 4096
  PutVarint(recipe, 0);
  PutVarint(recipe, 4096);
  recipe.insert(recipe.end(), {0, 0, kRecordEnd});  // FILTER none, twice
  // Eight chunks of 2^18 zero bytes: 2 MiB, twice the promised layer.
  const Bytes chunk(PatchChunkSize(kMinDeltaWindowLog), 0);
  const Bytes frame = CompressWithPrefix(chunk, {}, 1, kMinDeltaWindowLog).value();
  Bytes patches;
  for (int i = 0; i < 8; ++i) {
    PutVarint(patches, frame.size());
    patches.insert(patches.end(), frame.begin(), frame.end());
  }
  auto applied = Apply(MakeDelta(recipe, patches, 1 << 20));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), StatusCode::kCorruption);
  EXPECT_NE(applied.status().message().find("layer too long"), std::string::npos)
      << applied.status().ToString();
  EXPECT_TRUE(fs::is_empty(dir_ / "out"));
}

}  // namespace
}  // namespace flotilla::layerstore
