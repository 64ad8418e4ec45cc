#include "core/file_io.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace flotilla {
namespace {

namespace fs = std::filesystem;

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/file_io_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    ASSERT_TRUE(CreateDirectories(dir_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileIoTest, WriteAtomicReplacesAndLeavesNoTemporaries) {
  const std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, "old", 0640).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "new content", 0640).ok());
  EXPECT_EQ(ReadTextFileBounded(path, 100).value(), "new content");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(FileIoTest, WriteAtomicIntoAMissingDirectoryFailsWithContext) {
  Status st = WriteFileAtomic(dir_ + "/missing/x", "data");
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("missing"), std::string::npos);
}

TEST_F(FileIoTest, ReadBoundedRefusesLargerFilesWithoutReadingThem) {
  const std::string path = dir_ + "/big";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(1000, 'x')).ok());
  EXPECT_EQ(ReadFileBounded(path, 999).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileBounded(path, 1000).value().size(), 1000u);
  EXPECT_EQ(ReadFileBounded(dir_ + "/none", 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFileBounded(dir_, 10).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FileIoTest, CreateDirectoriesIsIdempotentAndRefusesFiles) {
  EXPECT_TRUE(CreateDirectories(dir_ + "/a/b/c").ok());
  EXPECT_TRUE(CreateDirectories(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/file", "x").ok());
  EXPECT_FALSE(CreateDirectories(dir_ + "/file").ok());
  EXPECT_FALSE(CreateDirectories(dir_ + "/file/sub").ok());
}

}  // namespace
}  // namespace flotilla
