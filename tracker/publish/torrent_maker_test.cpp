#include "tracker/publish/torrent_maker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <libtorrent/torrent_info.hpp>

#include "core/file_io.h"

namespace flotilla::tracker {
namespace {

namespace lt = libtorrent;

class TorrentMakerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/torrent-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TorrentMakerTest, AddArtifactMakesAV2OnlySingleFileTorrentWithWebSeed) {
  std::string data(300'000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 1000);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/input.bin", data).ok());
  RepositoryLayout repo{dir_ + "/repo"};
  auto made = AddArtifact(repo, dir_ + "/input.bin", {"http://t.example:80", 64 << 10});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const std::string hex = Digest::Of(data).Hex();
  EXPECT_EQ(made->sha256.Hex(), hex);
  EXPECT_EQ(made->length, data.size());
  EXPECT_EQ(ReadTextFileBounded(repo.artifact_path(hex), 1 << 20).value(), data);
  EXPECT_EQ(ReadTextFileBounded(repo.torrent_path(hex), 1 << 20).value(), made->torrent);

  lt::error_code ec;
  lt::torrent_info info(made->torrent, ec, lt::from_span);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(info.info_hashes().has_v2());
  EXPECT_FALSE(info.info_hashes().has_v1());
  EXPECT_EQ(info.name(), hex);
  // 2.0.8 adds a hidden tail pad file; the artifact is file 0.
  EXPECT_EQ(info.files().file_size(lt::file_index_t(0)), static_cast<int64_t>(data.size()));
  EXPECT_EQ(info.piece_length(), 64 << 10);
  EXPECT_EQ(std::memcmp(info.info_hashes().v2.data(), made->info_hash_v2.data(), 32), 0);
  ASSERT_EQ(info.trackers().size(), 1u);
  EXPECT_EQ(info.trackers()[0].url, "http://t.example:80/announce");
  ASSERT_EQ(info.web_seeds().size(), 1u);
  EXPECT_EQ(info.web_seeds()[0].url, "http://t.example:80/artifacts/" + hex + "/");

  // Same input, same torrent bytes.
  auto again = AddArtifact(repo, dir_ + "/input.bin", {"http://t.example:80", 64 << 10});
  EXPECT_EQ(again->torrent, made->torrent);
}

TEST_F(TorrentMakerTest, PersonalizeKeepsTheInfoHash) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/input.bin", std::string(50'000, 'x')).ok());
  RepositoryLayout repo{dir_ + "/repo"};
  auto made = AddArtifact(repo, dir_ + "/input.bin", {"http://t:1"}).value();
  auto personal = PersonalizeTorrent(made.torrent, "http://t:1/announce/abc").value();
  lt::error_code ec;
  lt::torrent_info info(personal, ec, lt::from_span);
  ASSERT_FALSE(ec);
  EXPECT_EQ(std::memcmp(info.info_hashes().v2.data(), made.info_hash_v2.data(), 32), 0);
  ASSERT_EQ(info.trackers().size(), 1u);
  EXPECT_EQ(info.trackers()[0].url, "http://t:1/announce/abc");
  EXPECT_FALSE(PersonalizeTorrent("not bencode", "x").ok());
}

TEST_F(TorrentMakerTest, RefusesFilesNotNamedByTheirHash) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + std::string(64, 'a'), "content").ok());
  auto r = MakeArtifactTorrent(dir_ + "/" + std::string(64, 'a'), {"http://t:1"});
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_FALSE(MakeArtifactTorrent(dir_ + "/input", {"http://t:1"}).ok());
}

}  // namespace
}  // namespace flotilla::tracker
