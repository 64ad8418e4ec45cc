// LayerStore with real files and a real SQLite index: unpack, exact tar
// regeneration, whiteouts, verify/quarantine, GC and crash recovery at open.
#include "layerstore/layer_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/file_io.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

using testing::TarBuilder;

class LayerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/lstoreXXXXXX";
    dir_ = ::mkdtemp(pattern.data());
    root_ = dir_ + "/store";
    auto store = LayerStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  Result<LayerInfo> Unpack(const Bytes& tar, UnpackOptions options = {}) {
    MemoryByteSource source(tar);
    return store_->UnpackLayer(source, Digest::Of(tar), tar.size(), options);
  }

  Bytes Regenerate(const Digest& id) {
    Bytes out;
    Status st = store_->WriteLayerTar(id, [&](ByteSpan b) {
      out.insert(out.end(), b.begin(), b.end());
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  std::string dir_, root_;
  std::unique_ptr<LayerStore> store_;
};

Bytes SampleLayer() {
  return TarBuilder()
      .Dir("etc", 0750)
      .File("etc/motd", "hello\n", 0640, {{"user.note", "kept"}})
      .File("etc/big", std::string(300000, 'x'))
      .Symlink("etc/link", "/etc/motd")
      .Hardlink("etc/motd2", "etc/motd")
      .Fifo("etc/pipe")
      .File("data/" + std::string(150, 'n') + "/long", "long name via pax\n")
      .File("gone/.wh.old", "")
      .File("opaque/.wh..wh..opq", "")
      .File("opaque/new", "new\n")
      .Finish();
}

TEST_F(LayerStoreTest, UnpacksEveryEntryTypeAndRegeneratesTheExactTar) {
  Bytes tar = SampleLayer();
  auto info = Unpack(tar);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->length, tar.size());
  auto tree = store_->LayerTreePath(info->diff_id);
  ASSERT_TRUE(tree.ok());
  struct stat st;
  ASSERT_EQ(::lstat((*tree + "/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
  ASSERT_EQ(::lstat((*tree + "/etc/motd").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_nlink, 2u);
  struct stat st2;
  ASSERT_EQ(::lstat((*tree + "/etc/motd2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  char value[16] = {};
  EXPECT_EQ(::getxattr((*tree + "/etc/motd").c_str(), "user.note", value, sizeof value), 4);
  EXPECT_STREQ(value, "kept");
  ASSERT_EQ(::lstat((*tree + "/etc/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::lstat((*tree + "/etc/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat((*tree + "/gone/old").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_NE(::lstat((*tree + "/gone/.wh.old").c_str(), &st), 0);
  char opaque[4] = {};
  EXPECT_EQ(::getxattr((*tree + "/opaque").c_str(), "trusted.overlay.opaque", opaque, 4), 1);
  EXPECT_EQ(opaque[0], 'y');

  EXPECT_EQ(Regenerate(info->diff_id), tar);
  auto fd = store_->OpenLayerFile(info->diff_id, "./etc/motd");
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  char buf[16] = {};
  EXPECT_EQ(::read(fd->get(), buf, sizeof buf), 6);
  EXPECT_STREQ(buf, "hello\n");
  EXPECT_FALSE(store_->OpenLayerFile(info->diff_id, "etc/link").ok());
}

TEST_F(LayerStoreTest, RegeneratesATarMadeByGnuTar) {
  std::string src = dir_ + "/src";
  std::string cmd = "mkdir -p " + src + "/a/b && echo one > " + src + "/a/one && " +
                    "head -c 70000 /dev/urandom > " + src + "/a/b/rand && ln -s one " + src +
                    "/a/sl && tar --format=gnu -C " + src + " -cf " + dir_ + "/gnu.tar .";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto tar = ReadFileBounded(dir_ + "/gnu.tar", 1 << 24);
  ASSERT_TRUE(tar.ok());
  auto info = Unpack(*tar);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(Regenerate(info->diff_id), *tar);
}

TEST_F(LayerStoreTest, VerifyQuarantinesACorruptLayerAndItCanBeUnpackedAgain) {
  Bytes tar = SampleLayer();
  auto info = Unpack(tar);
  ASSERT_TRUE(info.ok());
  auto clean = store_->Verify();
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok());
  EXPECT_EQ(clean->layers_ok, 1u);
  auto tree = store_->LayerTreePath(info->diff_id);
  ASSERT_TRUE(tree.ok());
  {
    std::fstream f(*tree + "/etc/big", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('y');  // same size, different bytes: only a re-hash can tell
  }
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_NE(report->problems[0].find("corrupt"), std::string::npos);
  auto found = store_->FindLayer(info->diff_id);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->state, LayerState::kQuarantined);
  EXPECT_FALSE(store_->LayerTreePath(info->diff_id).ok());
  auto again = Unpack(tar);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Regenerate(info->diff_id), tar);
  EXPECT_TRUE(store_->Verify()->ok());
}

TEST_F(LayerStoreTest, UnreferencedLayersAreCollected) {
  auto info = Unpack(SampleLayer());
  ASSERT_TRUE(info.ok());
  auto gc = store_->CollectGarbage();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->layers_removed, 1u);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/layers/" + info->diff_id.Hex()));
  EXPECT_TRUE(store_->ListLayers()->empty());
}

TEST_F(LayerStoreTest, RemoveLayerDropsOneLayerAndItsFiles) {
  auto info = Unpack(SampleLayer());
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(store_->RemoveLayer(info->diff_id).ok());
  EXPECT_FALSE(std::filesystem::exists(root_ + "/layers/" + info->diff_id.Hex()));
  EXPECT_TRUE(store_->ListLayers()->empty());
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/trash"));
  EXPECT_TRUE(store_->RemoveLayer(info->diff_id).ok())
      << "removing an absent layer is not an error";
  EXPECT_TRUE(store_->Verify()->ok());
}

TEST_F(LayerStoreTest, OpenRemovesWhatACrashLeftBehind) {
  auto info = Unpack(SampleLayer());
  ASSERT_TRUE(info.ok());
  store_.reset();
  ASSERT_TRUE(CreateDirectories(root_ + "/staging/123.1.abc/tree/x").ok());
  ASSERT_TRUE(CreateDirectories(root_ + "/layers/" + std::string(64, 'a') + "/tree").ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/blobs/sha256/" + std::string(64, 'b'), "x").ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/blobs/sha256/x.tmp.1.2", "x").ok());
  auto store = LayerStore::Open(root_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(*store);
  EXPECT_EQ(store_->recovery_notes().size(), 4u);
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/staging"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/layers/" + std::string(64, 'a')));
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/blobs/sha256"));
  EXPECT_TRUE(store_->LayerTreePath(info->diff_id).ok());
  EXPECT_TRUE(store_->Verify()->ok());
}

TEST_F(LayerStoreTest, ASecondOpenerIsRefused) {
  auto second = LayerStore::Open(root_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
}

TEST(PlatformTest, ParsesAndMatches) {
  auto arm = Platform::Parse("linux/arm/v7");
  ASSERT_TRUE(arm.ok());
  EXPECT_EQ(arm->variant, "v7");
  EXPECT_TRUE(arm->Accepts(Platform{"linux", "arm", "v7"}));
  EXPECT_FALSE(arm->Accepts(Platform{"linux", "arm", "v6"}));
  EXPECT_TRUE(Platform::Parse("linux/arm64")->Accepts(Platform{"linux", "arm64", "v8"}));
  EXPECT_FALSE(Platform::Parse("linux").ok());
  EXPECT_EQ(Platform::Host().os, "linux");
}

// What a device runs (the node refuses a release it does not): only its own
// architecture; an arm device its variant and older ones.
TEST(PlatformTest, AHostRunsItsOwnArchitectureAndOlderArmVariantsOnly) {
  auto runs = [](std::string_view host, std::string_view image) {
    return Platform::Parse(host)->Runs(*Platform::Parse(image));
  };
  EXPECT_TRUE(runs("linux/amd64", "linux/amd64"));
  EXPECT_TRUE(runs("linux/amd64", "linux/amd64/v1"));
  EXPECT_FALSE(runs("linux/amd64", "linux/amd64/v3")) << "the CPU's level is not checked";
  EXPECT_FALSE(runs("linux/amd64", "linux/arm64"));
  EXPECT_FALSE(runs("linux/amd64", "linux/386")) << "32-bit support is not assumed";
  EXPECT_FALSE(runs("linux/amd64", "windows/amd64"));
  EXPECT_TRUE(runs("linux/arm64", "linux/arm64"));
  EXPECT_TRUE(runs("linux/arm64", "linux/arm64/v8"));
  EXPECT_TRUE(runs("linux/arm64/v8", "linux/arm64"));
  EXPECT_FALSE(runs("linux/arm64", "linux/arm/v7"));
  EXPECT_FALSE(runs("linux/arm64", "linux/amd64"));
  EXPECT_TRUE(runs("linux/arm/v7", "linux/arm/v7"));
  EXPECT_TRUE(runs("linux/arm/v7", "linux/arm/v6"));
  EXPECT_TRUE(runs("linux/arm/v7", "linux/arm/v5"));
  EXPECT_TRUE(runs("linux/arm/v7", "linux/arm")) << "no variant is v7";
  EXPECT_FALSE(runs("linux/arm/v6", "linux/arm/v7"));
  EXPECT_FALSE(runs("linux/arm/v6", "linux/arm"));
  EXPECT_FALSE(runs("linux/arm/v7", "linux/arm/v9x"));
  EXPECT_FALSE(runs("linux/arm/v7", "linux/arm64"));
  EXPECT_TRUE(runs("linux/riscv64", "linux/riscv64"));
  EXPECT_FALSE(runs("linux/riscv64", "linux/riscv64/rva23"));
  EXPECT_TRUE(Platform::Host().Runs(Platform::Host()));
}

}  // namespace
}  // namespace flotilla::layerstore
