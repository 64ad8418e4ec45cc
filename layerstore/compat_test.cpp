// Devices in the field run 0.1.0: a store that 0.1.0 wrote opens with
// today's code unchanged, verifies, regenerates its layers and takes new ones.
// layerstore/testdata/store-0.1.0/ was written by the 0.1.0 store code
// (`flotilla-node store import` of the image make_image.py builds; no release
// tag exists, commit 23f4e79, project version 0.1.0); lock and the empty
// staging/, trash/ and quarantine/ directories are left out (Open makes them).
#include <gtest/gtest.h>

#include <filesystem>

#include "layerstore/layer_store.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

namespace fs = std::filesystem;

const std::string kFixture = std::string(FLOTILLA_SOURCE_DIR) + "/layerstore/testdata/store-0.1.0";
const Digest kBase =
    Digest::Parse("sha256:9d416074b2ae3f7bf0d40d24c3f602710220065168173ef0c4b4edf55eaf9a87")
        .value();
const Digest kTop =
    Digest::Parse("sha256:164267068825b34cf5304a816e67d5fafb9b5ad8d812c689bcf73f84c0096d99")
        .value();

std::string ReadLayerFile(LayerStore& store, const Digest& layer, const std::string& path) {
  auto fd = store.OpenLayerFile(layer, path);
  EXPECT_TRUE(fd.ok()) << fd.status().ToString();
  if (!fd.ok()) return "";
  uint8_t buf[4096];
  size_t n = ReadAll(fd->get(), buf).value();
  return std::string(reinterpret_cast<char*>(buf), n);
}

TEST(Compat010Test, StoreWrittenBy010OpensVerifiesAndGrows) {
  const std::string root = ::testing::TempDir() + "/store-0.1.0";
  fs::remove_all(root);
  fs::copy(kFixture, root, fs::copy_options::recursive);
  for (const char* extra : {"/make_image.py", "/README.md"}) fs::remove(root + extra);
  auto store = LayerStore::Open(root);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->recovery_notes().empty());

  auto image = (*store)->FindImage("fixture:1");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->config_digest.ToString(),
            "sha256:8501e255ab8a762a38fbb3c76131bddf43d3d7ef03690058f0b998a50a19db01");
  ASSERT_EQ(image->layers.size(), 2u);
  EXPECT_EQ(image->layers[0].diff_id, kBase);
  EXPECT_EQ(image->layers[1].diff_id, kTop);
  EXPECT_EQ(image->platform.ToString(), "linux/amd64");

  auto report = (*store)->Verify();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->layers_ok, 2u);
  EXPECT_EQ(report->blobs_ok, 2u);
  EXPECT_TRUE(report->problems.empty());
  EXPECT_EQ(ReadLayerFile(**store, kBase, "etc/motd"), "hello from 0.1.0\n");
  EXPECT_EQ(ReadLayerFile(**store, kTop, "etc/motd"), "v2\n");

  Bytes tar = testing::TarBuilder().File("new", "written today\n").Finish();
  MemoryByteSource source(tar);
  ASSERT_TRUE((*store)->UnpackLayer(source, Digest::Of(tar), tar.size(), {}).ok());
  ASSERT_TRUE((*store)->RemoveImage("fixture:1").ok());
  auto gc = (*store)->CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->layers_removed, 3u);  // the fixture's two and the unreferenced new one
  store->reset();
  fs::remove_all(root);
}

}  // namespace
}  // namespace flotilla::layerstore
