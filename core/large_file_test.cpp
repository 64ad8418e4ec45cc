// Files past 4 GiB on 32-bit systems (armhf): sizes are 64-bit end to end
// (_FILE_OFFSET_BITS=64), and nothing truncates them to size_t. The file is
// sparse, so the test takes no disk space and no time to write.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/file_io.h"

namespace flotilla {
namespace {

constexpr uint64_t kFourGiB = uint64_t{1} << 32;
constexpr std::string_view kTail = "flotilla large-file tail\n";

class LargeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/large_file_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(CreateDirectories(dir_).ok());
    path_ = dir_ + "/artifact";
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    // 4 GiB + 4096 bytes of hole, then the tail: the size is 4294971417,
    // which is 4121 once truncated to 32 bits.
    const off_t tail_offset = static_cast<off_t>(kFourGiB + 4096);
    ASSERT_EQ(::pwrite(fd, kTail.data(), kTail.size(), tail_offset),
              static_cast<ssize_t>(kTail.size()));
    ::close(fd);
    struct stat st;
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    size_ = static_cast<uint64_t>(st.st_size);
    if (static_cast<uint64_t>(st.st_blocks) * 512 > (uint64_t{16} << 20)) {
      GTEST_SKIP() << ::testing::TempDir() << " does not keep files sparse";
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
  uint64_t size_ = 0;
};

TEST_F(LargeFileTest, StatReportsTheFull64BitSize) {
  EXPECT_EQ(sizeof(off_t), 8u);
  EXPECT_EQ(size_, kFourGiB + 4096 + kTail.size());
}

TEST_F(LargeFileTest, BoundedReadRefusesWithTheExactSize) {
  auto read = ReadFileBounded(path_, 1 << 20);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(read.status().message().find(std::to_string(size_) + " bytes"), std::string::npos)
      << read.status().message();
}

TEST_F(LargeFileTest, BoundedReadWithNoLimitRefusesWhatSizeTCannotHold) {
  if (sizeof(size_t) >= 8) {
    // A 64-bit process could hold it: reading 4 GiB of zeros proves nothing here.
    SUCCEED() << "64-bit size_t: covered by the 32-bit (armhf) run";
    return;
  }
  auto read = ReadFileBounded(path_, UINT64_MAX);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(read.status().message().find("more than this process can hold"), std::string::npos)
      << read.status().message();
}

TEST_F(LargeFileTest, ReadAtAnOffsetPast4GiBReadsTheTail) {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string got(kTail.size(), '\0');
  ssize_t n = ::pread(fd, got.data(), got.size(), static_cast<off_t>(kFourGiB + 4096));
  off_t end = ::lseek(fd, 0, SEEK_END);
  ::close(fd);
  ASSERT_EQ(n, static_cast<ssize_t>(kTail.size()));
  EXPECT_EQ(got, kTail);
  EXPECT_EQ(static_cast<uint64_t>(end), size_);
}

}  // namespace
}  // namespace flotilla
