// The record of artifacts an import into a stopped node leaves for the next
// run to seed (imported_seeds.h).
#include "node/daemon/imported_seeds.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

class ImportedSeedsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = flotilla::testing::MakeTempDir("imported-seeds-");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/imported-seeds.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static ArtifactRequest Artifact(uint8_t n) {
    ArtifactRequest a;
    a.sha256 = Digest::Of(std::string(1, static_cast<char>(n)));
    a.length = 1000 + n;
    a.info_hash.fill(n);
    return a;
  }

  std::string dir_, path_;
};

TEST_F(ImportedSeedsTest, EntriesRoundTripInOrderAndAMissingFileIsNone) {
  auto none = LoadImportedSeeds(path_);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(RecordImportedSeeds(path_, {"web", 2, {Artifact(1), Artifact(2)}}).ok());
  ASSERT_TRUE(RecordImportedSeeds(path_, {"kiosk", 7, {Artifact(3)}}).ok());
  auto loaded = LoadImportedSeeds(path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].app, "web");
  EXPECT_EQ((*loaded)[0].release, 2u);
  ASSERT_EQ((*loaded)[0].artifacts.size(), 2u);
  EXPECT_EQ((*loaded)[0].artifacts[1].sha256, Artifact(2).sha256);
  EXPECT_EQ((*loaded)[0].artifacts[1].length, Artifact(2).length);
  EXPECT_EQ((*loaded)[0].artifacts[1].info_hash, Artifact(2).info_hash);
  EXPECT_EQ((*loaded)[1].app, "kiosk");
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_TRUE(RemoveImportedSeeds(path_).ok());
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_TRUE(RemoveImportedSeeds(path_).ok());  // nothing to remove
}

TEST_F(ImportedSeedsTest, AtMost64EntriesAreKeptTheOldestDropped) {
  for (uint64_t release = 1; release <= 70; ++release) {
    ASSERT_TRUE(RecordImportedSeeds(path_, {"web", release, {Artifact(1)}}).ok());
  }
  auto loaded = LoadImportedSeeds(path_);
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 64u);
  EXPECT_EQ(loaded->front().release, 7u);
  EXPECT_EQ(loaded->back().release, 70u);
}

TEST_F(ImportedSeedsTest, ABadFileIsAnErrorNamingItAndWhat) {
  ASSERT_TRUE(WriteFileAtomic(path_, "{\"format\": 1, \"releases\": [{\"app\": \"web\"}]}").ok());
  auto missing = LoadImportedSeeds(path_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path_), std::string::npos);
  EXPECT_NE(missing.status().message().find("release"), std::string::npos)
      << missing.status().message();
  ASSERT_TRUE(WriteFileAtomic(path_, "{\"format\": 2, \"releases\": []}").ok());
  EXPECT_FALSE(LoadImportedSeeds(path_).ok());
  ASSERT_TRUE(WriteFileAtomic(path_,
                              "{\"format\": 1, \"releases\": [{\"app\": \"web\", \"release\": 2, "
                              "\"artifacts\": [{\"sha256\": \"sha256:00\", \"length\": 1, "
                              "\"info_hash\": \"00\"}]}]}")
                  .ok());
  EXPECT_FALSE(LoadImportedSeeds(path_).ok());
  ASSERT_TRUE(WriteFileAtomic(path_, "{\"format\": 1, \"rel").ok());
  EXPECT_FALSE(LoadImportedSeeds(path_).ok());
}

}  // namespace
}  // namespace flotilla::node
