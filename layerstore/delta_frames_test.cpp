// The literal frames of format v2 (docs/delta.md, "Literal frames"): new files
// are grouped by kind, each group compressed against similar base files named
// as extents; extents that do not fit the base or the window are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/file_io.h"
#include "layerstore/delta.h"
#include "layerstore/delta_literals.h"
#include "layerstore/test_elf.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

namespace fs = std::filesystem;
using testing::TarBuilder;

std::string RandomBytes(std::mt19937_64& rng, size_t n, bool printable) {
  std::string out(n, '\0');
  for (char& c : out) {
    c = static_cast<char>(printable ? ' ' + rng() % 94 : rng() % 256);
  }
  return out;
}

// An ELF header (64-bit little-endian) of type `elf_type`, then `body`.
std::string Elf(uint16_t elf_type, const std::string& body) {
  std::string head(
      "\x7f"
      "ELF\x02\x01\x01",
      7);
  head.resize(16, '\0');
  head.push_back(static_cast<char>(elf_type & 0xff));
  head.push_back(static_cast<char>(elf_type >> 8));
  head.resize(64, '\0');
  return head + body;
}

using Files = std::vector<std::pair<std::string, std::string>>;

Bytes Tar(const Files& files) {
  TarBuilder tar;
  for (const auto& [path, content] : files) tar.File(path, content);
  return tar.Finish();
}

// Base and target hold one file of each kind under other names (so nothing is
// a COPY or PATCH); each target file is a 16 KiB random block shared with its
// base counterpart plus 2 KiB of its own.
struct KindPair {
  Files base, target;
};

KindPair MakeKindPair(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto shared = [&](bool printable) { return RandomBytes(rng, 16 << 10, printable); };
  auto own = [&](bool printable) { return RandomBytes(rng, 2 << 10, printable); };
  KindPair pair;
  std::string exec = shared(false), lib = shared(false), data = shared(false), text = shared(true);
  const std::string mo("\xde\x12\x04\x95\0\0\0\0", 8);  // a message catalog's magic
  std::string gz = shared(false);
  pair.base = {{"etc/motd", "hello\n"},
               {"usr/bin/oldtool", Elf(2, exec + own(false))},
               {"usr/lib/libold.so.3", Elf(3, lib + own(false))},
               {"usr/share/doc/old/changelog.gz", "\x1f\x8b" + gz + own(false)},
               {"usr/share/locale/de/LC_MESSAGES/old.mo", mo + data + own(false)},
               {"usr/share/doc/old/copyright", text + own(true)}};
  pair.target = {{"etc/motd", "hello\n"},
                 {"usr/bin/newtool", Elf(2, exec + own(false))},
                 {"usr/lib/libnew.so.1", Elf(3, lib + own(false))},
                 {"usr/share/doc/new/changelog.gz", "\x1f\x8b" + gz + own(false)},
                 {"usr/share/locale/de/LC_MESSAGES/new.mo", mo + data + own(false)},
                 {"usr/share/doc/new/copyright", text + own(true)}};
  return pair;
}

class DeltaFramesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flotilla-delta-frames-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    tracker_ = std::move(LayerStore::Open(dir_ / "tracker")).value();
    device_ = std::move(LayerStore::Open(dir_ / "device")).value();
  }
  void TearDown() override {
    tracker_.reset();
    device_.reset();
    fs::remove_all(dir_);
  }

  static Digest Add(LayerStore& store, const Bytes& tar) {
    MemoryByteSource source(tar);
    auto info = store.UnpackLayer(source, Digest::Of(tar), tar.size(), {});
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return Digest::Of(tar);
  }

  // Encodes the pair (window 2^window_log), keeps the delta in delta_.
  DeltaEncodeStats Encode(const KindPair& pair, int window_log = 23) {
    base_tar_ = Tar(pair.base);
    target_tar_ = Tar(pair.target);
    base_ = Add(*tracker_, base_tar_);
    target_ = Add(*tracker_, target_tar_);
    Add(*device_, base_tar_);
    DeltaEncodeOptions options;
    options.window_log = window_log;
    auto stats = EncodeDelta(*tracker_, {base_}, target_, dir_ / "x.delta", options);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    delta_ = ReadFileBounded(dir_ / "x.delta", 1 << 30).value();
    return stats.ok() ? *stats : DeltaEncodeStats{};
  }

  Result<DeltaHeader> Apply(const Bytes& delta) {
    MemoryByteSource source(delta);
    return ApplyDeltaToFile(*device_, source, dir_ / "out.tar");
  }

  // Applies `delta`, expects `code` and that nothing is left behind.
  void ExpectRefused(const Bytes& delta, StatusCode code, std::string_view message) {
    auto result = Apply(delta);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), code) << result.status().ToString();
    EXPECT_NE(result.status().message().find(message), std::string::npos)
        << result.status().ToString();
    for (const auto& entry : fs::directory_iterator(dir_)) {
      EXPECT_EQ(entry.path().filename().string().find("out.tar"), std::string::npos)
          << entry.path();
    }
  }

  fs::path dir_;
  std::unique_ptr<LayerStore> tracker_, device_;
  Bytes base_tar_, target_tar_, delta_;
  Digest base_, target_;
};

// A varint inside the delta: where it is and how many bytes it takes.
struct VarintAt {
  size_t pos = 0;
  size_t length = 0;
  uint64_t value = 0;
};

VarintAt ReadVarintAt(const Bytes& data, size_t pos) {
  VarintAt v{pos, 0, 0};
  for (int shift = 0;; shift += 7) {
    uint8_t byte = data.at(pos + v.length++);
    v.value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return v;
  }
}

// Rewrites the varint in place with `value`, padded to the same byte count,
// and recomputes the trailer so that only the codec's own checks can object.
void Rewrite(Bytes& delta, const VarintAt& at, uint64_t value) {
  for (size_t i = 0; i < at.length; ++i) {
    uint8_t byte = value & 0x7f;
    value >>= 7;
    delta[at.pos + i] = i + 1 < at.length ? byte | 0x80 : byte;
  }
  ASSERT_EQ(value, 0u) << "value does not fit the varint";
  Digest trailer = Digest::Of(ByteSpan(delta.data(), delta.size() - 32));
  std::copy(trailer.bytes().begin(), trailer.bytes().end(), delta.end() - 32);
}

// The first literal frame's first extent: (base, file, offset, length) varints;
// its FILTER follows them.
std::array<VarintAt, 4> FirstExtent(const Bytes& delta, const DeltaHeader& h) {
  size_t pos = delta.size() - 32 - h.patch_bytes - h.literal_bytes;
  ++pos;  // kind
  VarintAt count = ReadVarintAt(delta, pos);
  EXPECT_GE(count.value, 1u);
  pos += count.length;
  std::array<VarintAt, 4> fields;
  for (VarintAt& f : fields) {
    f = ReadVarintAt(delta, pos);
    pos += f.length;
  }
  return fields;
}

TEST_F(DeltaFramesTest, EachKindGetsAFrameWithASimilarBasePrefix) {
  KindPair pair = MakeKindPair(11);
  DeltaEncodeStats stats = Encode(pair);
  EXPECT_EQ(stats.literal_files, 5u);
  EXPECT_EQ(stats.copied_files, 1u);
  ASSERT_EQ(stats.literal_frames.size(), 5u);
  EXPECT_EQ(stats.header.literal_frames, 5u);
  std::vector<std::string> kinds;
  for (const DeltaLiteralFrameStats& f : stats.literal_frames) {
    SCOPED_TRACE(f.kind);
    kinds.push_back(f.kind);
    EXPECT_EQ(f.files, 1u);
    if (f.kind == "compressed") {
      EXPECT_EQ(f.prefix_extents, 0u);  // compressed data never gets a prefix
      EXPECT_GT(f.compressed_bytes, f.input_bytes / 2);
      continue;
    }
    EXPECT_EQ(f.prefix_extents, 1u);  // the one base file of the same kind
    EXPECT_GT(f.prefix_bytes, 16u << 10);
    // 18 KiB of random bytes: only the prefix makes it compress this well.
    EXPECT_LT(f.compressed_bytes, f.input_bytes / 3);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"text", "elf-executable", "shared-library", "opaque",
                                             "compressed"}));
  auto applied = Apply(delta_);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(ReadFileBounded(dir_ / "out.tar", 1 << 30).value() == target_tar_);
}

// An empty file has no head to look at (its span may not even point
// anywhere: UBSan caught a null memchr in the property test): it is text.
TEST(DeltaClassify, EmptyFileIsText) {
  EXPECT_EQ(delta_internal::ClassifyContent("etc/empty", ByteSpan()),
            delta_internal::ContentKind::kText);
}

// New empty files need no literal bytes: alone they make no frame at all,
// and beside other new files they take nothing from one.
TEST_F(DeltaFramesTest, NewEmptyFilesRoundTripWithAndWithoutFrames) {
  KindPair only_empty;
  only_empty.base = {{"etc/motd", "hello\n"}};
  only_empty.target = {{"etc/motd", "hello\n"}, {"etc/empty-a", ""}, {"var/empty-b", ""}};
  DeltaEncodeStats stats = Encode(only_empty);
  EXPECT_EQ(stats.header.literal_frames, 0u);
  auto applied = Apply(delta_);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(ReadFileBounded(dir_ / "out.tar", 1 << 30).value() == target_tar_);

  KindPair mixed = MakeKindPair(13);
  mixed.target.insert(mixed.target.begin(), {"etc/empty-first", ""});
  mixed.target.push_back({"usr/share/empty-last", ""});
  stats = Encode(mixed);
  EXPECT_EQ(stats.header.literal_frames, 5u);
  applied = Apply(delta_);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(ReadFileBounded(dir_ / "out.tar", 1 << 30).value() == target_tar_);
}

TEST_F(DeltaFramesTest, OnlyOneKindMakesOneFrame) {
  KindPair pair = MakeKindPair(12);
  pair.target.erase(pair.target.begin() + 2, pair.target.end());  // motd + newtool
  DeltaEncodeStats stats = Encode(pair);
  ASSERT_EQ(stats.literal_frames.size(), 1u);
  EXPECT_EQ(stats.literal_frames[0].kind, "elf-executable");
  ASSERT_TRUE(Apply(delta_).ok());
  EXPECT_TRUE(ReadFileBounded(dir_ / "out.tar", 1 << 30).value() == target_tar_);
}

TEST_F(DeltaFramesTest, FileOfAQuarterWindowGetsAFrameOfItsOwn) {
  KindPair pair = MakeKindPair(16);
  std::mt19937_64 rng(16);
  const std::string mo("\xde\x12\x04\x95\0\0\0\0", 8);
  pair.target.push_back(
      {"usr/share/locale/fr/LC_MESSAGES/big.mo", mo + RandomBytes(rng, 300 << 10, false)});
  DeltaEncodeStats stats = Encode(pair, 20);  // a quarter window: 256 KiB
  std::vector<uint64_t> opaque_files;
  for (const auto& f : stats.literal_frames) {
    if (f.kind == "opaque") opaque_files.push_back(f.files);
  }
  EXPECT_EQ(opaque_files, (std::vector<uint64_t>{1, 1}));
  ASSERT_TRUE(Apply(delta_).ok());
  EXPECT_TRUE(ReadFileBounded(dir_ / "out.tar", 1 << 30).value() == target_tar_);
}

TEST_F(DeltaFramesTest, ExtentOutsideItsBaseFileIsRefused) {
  Encode(MakeKindPair(13));
  auto header = ReadDeltaHeaderFile(dir_ / "x.delta");
  ASSERT_TRUE(header.ok());
  auto extent = FirstExtent(delta_, *header);
  ASSERT_EQ(extent[2].value, 0u);  // whole-file extents start at 0
  Bytes past_end = delta_;
  Rewrite(past_end, extent[2], 1);  // offset 1 + the file's length: one byte past its end
  ExpectRefused(past_end, StatusCode::kCorruption, "outside");
  Bytes no_such_file = delta_;
  Rewrite(no_such_file, extent[1], 100);  // the base has 6 files
  ExpectRefused(no_such_file, StatusCode::kCorruption, "which has 6 files");
  Bytes no_such_base = delta_;
  Rewrite(no_such_base, extent[0], 1);
  ExpectRefused(no_such_base, StatusCode::kCorruption, "prefix base out of range");
  ASSERT_TRUE(Apply(delta_).ok());  // the untouched delta still applies
}

TEST_F(DeltaFramesTest, ChangedPrefixBaseFileIsRefused) {
  KindPair pair = MakeKindPair(14);
  Encode(pair);
  auto tree = device_->LayerTreePath(base_);
  ASSERT_TRUE(tree.ok());
  const std::string text = *tree + "/usr/share/doc/old/copyright";
  std::string content = pair.base.back().second;
  std::string changed = content;
  changed[100] ^= 1;  // same size, other bytes: the frame decodes to something else
  ASSERT_TRUE(WriteFileAtomic(text, changed).ok());
  ExpectRefused(delta_, StatusCode::kCorruption, "");
  ASSERT_TRUE(WriteFileAtomic(text, content + "longer").ok());
  ExpectRefused(delta_, StatusCode::kCorruption, "bytes, not");
  ASSERT_TRUE(WriteFileAtomic(text, content).ok());
  ASSERT_TRUE(Apply(delta_).ok());
}

TEST_F(DeltaFramesTest, PrefixLargerThanTheWindowIsRefused) {
  KindPair pair = MakeKindPair(15);
  DeltaEncodeStats stats = Encode(pair, 20);
  ASSERT_EQ(stats.header.window_log, 20);
  for (const auto& f : stats.literal_frames) EXPECT_LE(f.prefix_bytes, 1u << 20);
  auto header = ReadDeltaHeaderFile(dir_ / "x.delta");
  ASSERT_TRUE(header.ok());
  auto extent = FirstExtent(delta_, *header);
  ASSERT_EQ(extent[3].length, 3u);  // an 18 KiB length: room for 2^21 in the same bytes
  Bytes wide = delta_;
  Rewrite(wide, extent[3], (1u << 20) + 1);
  ExpectRefused(wide, StatusCode::kResourceExhausted, "prefix larger than the 2^20 byte window");
  ASSERT_TRUE(Apply(delta_).ok());
}

TEST_F(DeltaFramesTest, PrefixExtentFilterOutsideItsFileOrUnknownIsRefused) {
  std::mt19937_64 rng(16);
  const std::string code =
      testing::CodeBody(rng, 40000, testing::kElfX8664, {300, 7000}, testing::kElfBodyOffset);
  KindPair pair;
  pair.base = {{"usr/lib/libold.so.3", testing::ElfFile(testing::kElfX8664, code)}};
  pair.target = {{"usr/lib/libnew.so.1", testing::ElfFile(testing::kElfX8664, code + "new")}};
  DeltaEncodeStats stats = Encode(pair);
  ASSERT_EQ(stats.literal_frames.size(), 1u);
  ASSERT_EQ(stats.literal_frames[0].prefix_extents, 1u);
  EXPECT_LT(stats.literal_frames[0].compressed_bytes, 200u);  // the filtered prefix matches
  auto header = ReadDeltaHeaderFile(dir_ / "x.delta");
  ASSERT_TRUE(header.ok());
  const VarintAt length = FirstExtent(delta_, *header)[3];
  const size_t filter = length.pos + length.length;
  ASSERT_EQ(delta_[filter], 1);  // x86
  const VarintAt start = ReadVarintAt(delta_, filter + 1);
  const VarintAt range = ReadVarintAt(delta_, start.pos + start.length);
  EXPECT_EQ(start.value, testing::kElfBodyOffset);
  EXPECT_EQ(range.value, code.size());
  Bytes past_end = delta_;
  Rewrite(past_end, range, code.size() + 1);
  ExpectRefused(past_end, StatusCode::kCorruption, "branch filter range outside its file");
  Bytes unknown = delta_;
  unknown[filter] = 9;
  Rewrite(unknown, length, length.value);  // (recomputes the trailer)
  ExpectRefused(unknown, StatusCode::kCorruption, "unknown branch filter");
  ASSERT_TRUE(Apply(delta_).ok());
}

}  // namespace
}  // namespace flotilla::layerstore
