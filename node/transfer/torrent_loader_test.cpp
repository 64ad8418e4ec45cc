#include "node/transfer/torrent_loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <random>

#include "core/digest.h"
#include "tests/support/test_util.h"

namespace flotilla::node::transfer {
namespace {

struct Made {
  std::string torrent;
  ArtifactRequest request;
};

// A v2-only (or hybrid) single-file torrent of `size` random bytes named <hex>.
Made MakeTorrent(const std::string& dir, size_t size, lt::create_flags_t flags) {
  std::string data(size, '\0');
  std::mt19937 rng(42);
  for (char& c : data) c = static_cast<char>(rng());
  const Digest digest = Digest::Of(data);
  const std::string path = dir + "/" + digest.Hex();
  std::ofstream(path, std::ios::binary) << data;
  lt::file_storage fs;
  lt::add_files(fs, path);
  lt::create_torrent ct(fs, 16 << 10, flags);
  lt::set_piece_hashes(ct, dir);
  ct.add_tracker("http://evil.example/announce");
  ct.add_url_seed("http://evil.example/seed/");
  Made made;
  lt::bencode(std::back_inserter(made.torrent), ct.generate());
  lt::torrent_info info(made.torrent, lt::from_span);
  made.request.sha256 = digest;
  made.request.length = size;
  std::copy(info.info_hashes().v2.begin(), info.info_hashes().v2.end(),
            made.request.info_hash.begin());
  return made;
}

class TorrentLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = flotilla::testing::MakeTempDir("loader"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TorrentLoaderTest, AcceptsTheSignedV2TorrentAndDropsItsTrackersAndSeeds) {
  // 100000 bytes: not a multiple of 16 KiB, so 2.0.8 adds a tail pad file.
  Made made = MakeTorrent(dir_, 100000, lt::create_torrent::v2_only);
  auto loaded = LoadVerifiedTorrent(made.torrent, made.request);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->piece_length, 16 << 10);
  EXPECT_TRUE(loaded->info->trackers().empty());
  EXPECT_TRUE(loaded->info->web_seeds().empty());
  EXPECT_EQ(loaded->info->files().file_size(loaded->payload_file), 100000);
  auto params =
      MakeAddParams(*loaded, dir_ + "/save", "name-we-chose", "http://t/announce/p", false);
  EXPECT_EQ(params.renamed_files.at(loaded->payload_file), "name-we-chose");
  EXPECT_EQ(params.trackers, std::vector<std::string>{"http://t/announce/p"});
  EXPECT_FALSE(params.flags & lt::torrent_flags::auto_managed);
  EXPECT_TRUE(params.flags & lt::torrent_flags::disable_dht);
  EXPECT_TRUE(params.flags & lt::torrent_flags::disable_pex);
}

TEST_F(TorrentLoaderTest, RefusesAnotherInfoHash) {
  Made made = MakeTorrent(dir_, 50000, lt::create_torrent::v2_only);
  made.request.info_hash[0] ^= 1;
  auto loaded = LoadVerifiedTorrent(made.torrent, made.request);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption);
  EXPECT_NE(loaded.status().message().find("not the signed one"), std::string::npos);
}

TEST_F(TorrentLoaderTest, RefusesHybridTorrentsWrongLengthsGarbageAndHugeInput) {
  Made hybrid = MakeTorrent(dir_, 50000, {});
  EXPECT_NE(LoadVerifiedTorrent(hybrid.torrent, hybrid.request).status().message().find("v2-only"),
            std::string::npos);
  Made made = MakeTorrent(dir_, 40000, lt::create_torrent::v2_only);
  ArtifactRequest longer = made.request;
  longer.length += 1;
  EXPECT_FALSE(LoadVerifiedTorrent(made.torrent, longer).ok());
  EXPECT_EQ(LoadVerifiedTorrent("d4:infoi3ee", made.request).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(
      LoadVerifiedTorrent(std::string(kMaxTorrentBytes + 1, 'x'), made.request).status().code(),
      StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace flotilla::node::transfer
