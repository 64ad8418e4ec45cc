// Hostile layers: each is refused with a clear error, nothing becomes
// visible in the store, and a sentinel outside the store is untouched.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "layerstore/layer_store.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

using testing::TarBuilder;

class AdversarialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/lsadvXXXXXX";
    dir_ = ::mkdtemp(pattern.data());
    // The tree being unpacked is <dir>/store/staging/<name>/tree: four levels below dir_.
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/sentinel", "precious").ok());
    ASSERT_TRUE(CreateDirectories(dir_ + "/outside").ok());
    auto store = LayerStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Unpacks `tar` (with its true digest), expects refusal, checks nothing leaked.
  void ExpectRefused(const Bytes& tar, std::string_view message, UnpackOptions options = {}) {
    MemoryByteSource source(tar);
    auto info = store_->UnpackLayer(source, Digest::Of(tar), tar.size(), options);
    ASSERT_FALSE(info.ok()) << "hostile layer was accepted";
    EXPECT_NE(info.status().message().find(message), std::string::npos) << info.status().ToString();
    ExpectNothingLeaked();
  }

  void ExpectNothingLeaked() {
    auto sentinel = ReadTextFileBounded(dir_ + "/sentinel", 100);
    ASSERT_TRUE(sentinel.ok());
    EXPECT_EQ(*sentinel, "precious");
    EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/outside"));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                            std::filesystem::directory_iterator()),
              3);  // sentinel, outside, store
    EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/store/staging"));
    EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/store/layers"));
    EXPECT_TRUE(store_->ListLayers()->empty());
  }

  std::string dir_;
  std::unique_ptr<LayerStore> store_;
};

TEST_F(AdversarialTest, DotDotPath) {
  ExpectRefused(TarBuilder().File("a/../../../../../sentinel", "pwned").Finish(),
                "escapes its root");
}

TEST_F(AdversarialTest, AbsolutePath) {
  ExpectRefused(TarBuilder().File(dir_ + "/sentinel", "pwned").Finish(), "is absolute");
}

TEST_F(AdversarialTest, FileWrittenThroughASymlinkPointingOutside) {
  ExpectRefused(TarBuilder().Symlink("link", dir_ + "/outside").File("link/evil", "pwned").Finish(),
                "through a symlink");
  ExpectRefused(TarBuilder().Symlink("up", "../../../../outside").File("up/evil", "pwned").Finish(),
                "through a symlink");
}

TEST_F(AdversarialTest, HardlinkToAPathOutside) {
  ExpectRefused(TarBuilder().Hardlink("hl", "../../../../sentinel").Finish(), "outside the layer");
  ExpectRefused(TarBuilder().Hardlink("hl", dir_ + "/sentinel").Finish(), "outside the layer");
  // Through a symlink planted first: the link target must not be followed either.
  ExpectRefused(TarBuilder().Symlink("s", dir_).Hardlink("hl", "s/sentinel").Finish(), "hardlink");
}

TEST_F(AdversarialTest, WhiteoutOfAPathOutside) {
  ExpectRefused(TarBuilder().File("../.wh.sentinel", "").Finish(), "escapes its root");
  ExpectRefused(TarBuilder().Dir("d").File("d/.wh..", "").Finish(), "names no valid entry");
}

TEST_F(AdversarialTest, DeviceNodeWhereDevicesAreNotAllowed) {
  ExpectRefused(TarBuilder().Device("dev/mem", AE_IFCHR, makedev(1, 1)).Finish(), "not allowed");
  UnpackOptions allow;
  allow.allow_devices = true;
  ExpectRefused(TarBuilder().Device("fake-whiteout", AE_IFCHR, makedev(0, 0)).Finish(),
                "overlay whiteout", allow);
}

TEST_F(AdversarialTest, OverlayXattrsFromTheLayer) {
  ExpectRefused(TarBuilder().File("x", "y", 0644, {{"trusted.overlay.redirect", "/etc"}}).Finish(),
                "overlayfs xattr");
}

TEST_F(AdversarialTest, TruncatedArchive) {
  Bytes tar = TarBuilder().File("big", std::string(100000, 'z')).Finish();
  tar.resize(50000);
  ExpectRefused(tar, "");
}

TEST_F(AdversarialTest, DigestDoesNotMatch) {
  Bytes tar = TarBuilder().File("ok", "fine").Finish();
  MemoryByteSource source(tar);
  Digest wrong = Digest::Of("something else");
  auto info = store_->UnpackLayer(source, wrong, tar.size(), {});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kCorruption);
  EXPECT_NE(info.status().message().find("does not match"), std::string::npos);
  ExpectNothingLeaked();
}

TEST_F(AdversarialTest, StreamLongerThanPromised) {
  Bytes tar = TarBuilder().File("ok", std::string(50000, 'a')).Finish();
  MemoryByteSource source(tar);
  auto info = store_->UnpackLayer(source, Digest::Of(tar), 20000, {});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kResourceExhausted);
  ExpectNothingLeaked();
}

// gzip through libarchive's writer (raw format, no block padding).
Bytes Gzip(const Bytes& data) {
  Bytes out;
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
        auto* sink = static_cast<Bytes*>(ctx);
        sink->insert(sink->end(), static_cast<const uint8_t*>(buf),
                     static_cast<const uint8_t*>(buf) + n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// An OCI layout whose one layer is `blob`, claiming diff_id `diff_id`.
void WriteOciLayout(const std::string& dir, const Bytes& blob, const Digest& diff_id) {
  ASSERT_TRUE(CreateDirectories(dir + "/blobs/sha256").ok());
  auto put = [&](const Bytes& b) {
    Digest d = Digest::Of(b);
    EXPECT_TRUE(WriteFileAtomic(dir + "/blobs/sha256/" + d.Hex(), b).ok());
    return d;
  };
  Json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id.ToString()}}}}};
  std::string config_text = config.dump();
  Bytes config_bytes(config_text.begin(), config_text.end());
  Digest config_digest = put(config_bytes);
  Digest layer_digest = put(blob);
  Json manifest = {{"schemaVersion", 2},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", config_digest.ToString()},
                     {"size", config_bytes.size()}}},
                   {"layers",
                    {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                      {"digest", layer_digest.ToString()},
                      {"size", blob.size()}}}}};
  std::string manifest_text = manifest.dump();
  Bytes manifest_bytes(manifest_text.begin(), manifest_text.end());
  Digest manifest_digest = put(manifest_bytes);
  Json index = {{"schemaVersion", 2},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", manifest_digest.ToString()},
                   {"size", manifest_bytes.size()}}}}};
  ASSERT_TRUE(WriteFileAtomic(dir + "/index.json", index.dump()).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})").ok());
}

TEST_F(AdversarialTest, DecompressionBomb) {
  // 64 MiB of zeros in one file gzips to ~64 KiB; the store allows 8 MiB.
  Bytes tar = TarBuilder().File("zeros", std::string(64 << 20, '\0')).Finish();
  Bytes bomb = Gzip(tar);
  ASSERT_LT(bomb.size(), 1u << 20);
  const std::string image = ::testing::TempDir() + "/bomb-image";
  std::filesystem::remove_all(image);
  WriteOciLayout(image, bomb, Digest::Of(tar));
  tar.clear();
  ImportOptions options;
  options.unpack.max_layer_bytes = 8 << 20;
  auto imported = store_->ImportImage(image, options);
  std::filesystem::remove_all(image);
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), StatusCode::kResourceExhausted)
      << imported.status().ToString();
  ExpectNothingLeaked();
  EXPECT_TRUE(store_->ListImages()->empty());
}

TEST_F(AdversarialTest, ImportedLayerWhoseDiffIdDoesNotMatch) {
  Bytes tar = TarBuilder().File("ok", "fine").Finish();
  const std::string image = ::testing::TempDir() + "/lying-image";
  std::filesystem::remove_all(image);
  WriteOciLayout(image, Gzip(tar), Digest::Of("not this layer"));
  auto imported = store_->ImportImage(image, {});
  std::filesystem::remove_all(image);
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), StatusCode::kCorruption) << imported.status().ToString();
  ExpectNothingLeaked();
}

}  // namespace
}  // namespace flotilla::layerstore
