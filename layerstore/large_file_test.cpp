// Delta copies read base files at 64-bit offsets: on 32-bit systems (armhf)
// an offset past 4 GiB must not wrap (a wrapped offset would copy the wrong
// bytes into a layer, caught only by the final hash). The file is sparse.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/file_io.h"
#include "layerstore/delta_format.h"

namespace flotilla::layerstore::delta_internal {
namespace {

constexpr uint64_t kTailOffset = (uint64_t{1} << 32) + 4096;

TEST(LargeFileTest, PreadExactPast4GiBReadsThereNotAtTheWrappedOffset) {
  const std::string dir = ::testing::TempDir() + "/delta_large_file";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(CreateDirectories(dir).ok());
  const std::string path = dir + "/base";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  // Different bytes at 4096 (where a 32-bit wrap lands) and past 4 GiB.
  const std::string wrapped = "WRONG: wrapped offset";
  const std::string tail = "right: 64-bit offset!";
  ASSERT_EQ(::pwrite(fd, wrapped.data(), wrapped.size(), 4096),
            static_cast<ssize_t>(wrapped.size()));
  ASSERT_EQ(::pwrite(fd, tail.data(), tail.size(), static_cast<off_t>(kTailOffset)),
            static_cast<ssize_t>(tail.size()));
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  if (static_cast<uint64_t>(st.st_blocks) * 512 > (uint64_t{16} << 20)) {
    ::close(fd);
    std::filesystem::remove_all(dir);
    GTEST_SKIP() << ::testing::TempDir() << " does not keep files sparse";
  }

  std::string got(tail.size(), '\0');
  Status read = PreadExact(fd, {reinterpret_cast<uint8_t*>(got.data()), got.size()}, kTailOffset);
  // One byte past the end: the file is shorter than the copy asks.
  std::string past(tail.size() + 1, '\0');
  Status short_read =
      PreadExact(fd, {reinterpret_cast<uint8_t*>(past.data()), past.size()}, kTailOffset);
  ::close(fd);
  std::filesystem::remove_all(dir);

  ASSERT_TRUE(read.ok()) << read.ToString();
  EXPECT_EQ(got, tail);
  EXPECT_EQ(short_read.code(), StatusCode::kCorruption) << short_read.ToString();
}

}  // namespace
}  // namespace flotilla::layerstore::delta_internal
