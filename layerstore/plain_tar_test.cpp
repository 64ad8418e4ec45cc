// Plain tars: what PlainTarWriter writes reads back byte for byte; every
// entry that is not a regular file, a duplicate, too many entries and a cut
// file are refused by the header scan, before any data is copied.
#include "layerstore/plain_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace flotilla::layerstore {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PlainTarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/plaintarXXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A tar written by libarchive itself with one entry of `type` (and a
  // regular file before it), as another tool would make it.
  std::string TarWith(mode_t type, const std::string& name, const char* link = nullptr) {
    const std::string path = dir_ + "/odd.tar";
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    EXPECT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
    for (int i = 0; i < 2; ++i) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, i == 0 ? "bundle.json" : name.c_str());
      archive_entry_set_filetype(e, i == 0 ? AE_IFREG : type);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, i == 0 || type == AE_IFREG ? 2 : 0);
      if (i == 1 && link && type == AE_IFLNK) archive_entry_set_symlink(e, link);
      if (i == 1 && link && type == AE_IFREG) {
        archive_entry_set_hardlink(e, link);
        archive_entry_set_size(e, 0);
      }
      EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
      if (archive_entry_size(e) > 0) archive_write_data(a, "{}", 2);
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
  }

  std::string dir_;
};

TEST_F(PlainTarTest, WhatIsWrittenScansAndExtractsExactly) {
  const std::string file = dir_ + "/blob";
  std::ofstream(file, std::ios::binary) << std::string(3 << 20, 'x') << "end";
  const std::string tar = dir_ + "/out.tar";
  auto writer = PlainTarWriter::Create(tar);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->AddBytes("bundle.json", "{\"a\":1}").ok());
  ASSERT_TRUE((*writer)->AddFile("artifacts/blob", file, (3 << 20) + 3).ok());
  EXPECT_FALSE((*writer)->AddFile("artifacts/short", file, 5).ok());  // not its length
  ASSERT_TRUE((*writer)->Close().ok());

  auto entries = ScanPlainTar(tar, {"artifacts"}, 10);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].name, "artifacts/blob");
  EXPECT_EQ((*entries)[1].size, (3u << 20) + 3);
  std::filesystem::create_directories(dir_ + "/x");
  ASSERT_TRUE(ExtractPlainTar(tar, {{"artifacts/blob", dir_ + "/x/blob"}}).ok());
  EXPECT_EQ(Slurp(dir_ + "/x/blob"), Slurp(file));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x/bundle.json"));  // not asked for

  EXPECT_EQ(ScanPlainTar(tar, {}, 1).status().code(), StatusCode::kResourceExhausted);
  std::filesystem::resize_file(tar, 2 << 20);  // cut inside the artifact
  EXPECT_EQ(ScanPlainTar(tar, {}, 10).status().code(), StatusCode::kCorruption);
}

TEST_F(PlainTarTest, LinksDevicesFifosDirectoriesAndDuplicatesAreRefused) {
  struct Case {
    mode_t type;
    std::string name;
    const char* link;
  };
  for (const Case& c :
       {Case{AE_IFLNK, "metadata/root.json", "/etc/passwd"},
        Case{AE_IFREG, "metadata/root.json", "bundle.json"},  // hard link
        Case{AE_IFCHR, "artifacts/dev", nullptr}, Case{AE_IFIFO, "artifacts/fifo", nullptr},
        Case{AE_IFDIR, "elsewhere/", nullptr}}) {
    auto scanned = ScanPlainTar(TarWith(c.type, c.name, c.link), {"metadata", "artifacts"}, 10);
    EXPECT_EQ(scanned.status().code(), StatusCode::kPermissionDenied) << c.name;
    EXPECT_NE(scanned.status().ToString().find("is not a regular file"), std::string::npos)
        << scanned.status().ToString();
  }
  auto duplicate = ScanPlainTar(TarWith(AE_IFREG, "bundle.json"), {}, 10);
  EXPECT_EQ(duplicate.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ScanPlainTar(TarWith(AE_IFDIR, "metadata/"), {"metadata"}, 10).ok());
}

}  // namespace
}  // namespace flotilla::layerstore
