// Round trips and refusals of the delta codec on layers built in memory.
#include "layerstore/delta.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/file_io.h"
#include "layerstore/test_elf.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

namespace fs = std::filesystem;
using testing::TarBuilder;

// A file of a generated layer.
struct GenFile {
  std::string content;
  int mode = 0644;
};
using Tree = std::map<std::string, GenFile>;

std::string RandomText(std::mt19937_64& rng, size_t n) {
  static const char* kWords[] = {"alpha ",   "beta ",   "gamma ",   "delta\n",        "libc ",
                                 "usr/lib ", "0x1f2e ", "package ", "version 1.2.3 ", "\0\1\2"};
  std::string out;
  while (out.size() < n) {
    if (rng() % 8 == 0) {
      out.push_back(static_cast<char>(rng()));
    } else {
      out += kWords[rng() % 10];
    }
  }
  out.resize(n);
  return out;
}

Bytes BuildTar(const Tree& tree, bool extras) {
  TarBuilder tar;
  tar.Dir("etc").Dir("usr").Dir("usr/lib");
  for (const auto& [path, file] : tree) tar.File(path, file.content, file.mode);
  if (extras) {
    tar.Symlink("usr/lib/link", "../../etc/passwd");
    if (tree.count("etc/passwd")) tar.Hardlink("etc/passwd.hard", "etc/passwd");
    tar.Device("dev-null", AE_IFCHR, makedev(1, 3));
    tar.Fifo("fifo");
    tar.File("usr/.wh.removed", "");
    tar.File("etc/attr", "x", 0600, {{"user.flotilla", "value"}});
  }
  return tar.Finish();
}

class DeltaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flotilla-delta-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto store = LayerStore::Open(dir_ / "tracker");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    tracker_ = std::move(store).value();
    auto device = LayerStore::Open(dir_ / "device");
    ASSERT_TRUE(device.ok()) << device.status().ToString();
    device_ = std::move(device).value();
  }
  void TearDown() override {
    tracker_.reset();
    device_.reset();
    fs::remove_all(dir_);
  }

  static Digest Add(LayerStore& store, const Bytes& tar) {
    MemoryByteSource source(tar);
    UnpackOptions options;
    options.allow_devices = true;
    auto info = store.UnpackLayer(source, Digest::Of(tar), tar.size(), options);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return Digest::Of(tar);
  }

  // Encodes target against bases on the tracker; applies on a device holding only
  // the bases; expects the exact target tar. Returns the encode stats.
  DeltaEncodeStats RoundTrip(const std::vector<Bytes>& bases, const Bytes& target,
                             DeltaEncodeOptions options = {}) {
    std::vector<Digest> base_ids;
    for (const Bytes& b : bases) {
      base_ids.push_back(Add(*tracker_, b));
      Add(*device_, b);
    }
    Digest target_id = Add(*tracker_, target);
    const std::string delta = dir_ / "layer.delta";
    auto stats = EncodeDelta(*tracker_, base_ids, target_id, delta, options);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    if (!stats.ok()) return {};
    EXPECT_EQ(stats->header.delta_length, fs::file_size(delta));
    const std::string out = dir_ / "rebuilt.tar";
    auto source = OpenFileSource(delta);
    EXPECT_TRUE(source.ok());
    auto header = ApplyDeltaToFile(*device_, **source, out, {}, &target_id);
    EXPECT_TRUE(header.ok()) << header.status().ToString();
    auto rebuilt = ReadFileBounded(out, 1 << 30);
    EXPECT_TRUE(rebuilt.ok());
    if (rebuilt.ok()) {
      EXPECT_TRUE(*rebuilt == target) << "rebuilt tar differs";
    }
    ExpectNoTempFiles();
    fs::remove(out);
    return *stats;
  }

  void ExpectNoTempFiles() {
    for (const auto& entry : fs::directory_iterator(dir_)) {
      EXPECT_EQ(entry.path().string().find(".partial"), std::string::npos) << entry.path();
    }
  }

  fs::path dir_;
  std::unique_ptr<LayerStore> tracker_;
  std::unique_ptr<LayerStore> device_;
};

Tree SampleTree(std::mt19937_64& rng, size_t files) {
  Tree tree;
  tree["etc/passwd"] = {"root:x:0:0:root:/root:/bin/sh\n", 0644};
  for (size_t i = 0; i < files; ++i) {
    std::string dir = (i % 3 == 0) ? "etc/" : "usr/lib/";
    std::string content = RandomText(rng, 100 + rng() % 20000);
    if (i % 4 == 1) {  // an ELF file of one of the fleet's machines, its code filtered
      const uint16_t machines[] = {testing::kElfX8664, testing::kElfAarch64, testing::kElfArm};
      const uint16_t machine = machines[rng() % 3];
      content = testing::ElfFile(
          machine,
          testing::CodeBody(rng, content.size(), machine, {300, 9000}, testing::kElfBodyOffset),
          machine != testing::kElfArm);
    }
    tree[dir + "file" + std::to_string(i) + ".so." + std::to_string(i % 5)] = {
        content, (i % 7 == 0) ? 0755 : 0644};
  }
  return tree;
}

TEST_F(DeltaTest, EditsRenamesDeletionsAndPermissions) {
  std::mt19937_64 rng(1);
  Tree base = SampleTree(rng, 60);
  Tree target = base;
  target["usr/lib/file1.so.1"].content.replace(500, 10, "EDITEDEDIT");
  target["usr/lib/file2.so.2"].content += "appended tail";
  target.erase("usr/lib/file4.so.4");
  auto node = target.extract("usr/lib/file5.so.0");
  node.key() = "usr/lib/renamed5.so.0";
  target.insert(std::move(node));
  target["etc/file6.so.1"].mode = 0600;
  target["usr/lib/new.txt"] = {RandomText(rng, 3000), 0644};
  DeltaEncodeStats stats = RoundTrip({BuildTar(base, true)}, BuildTar(target, true));
  EXPECT_GE(stats.copied_files, 55u);  // unchanged, renamed and chmod'ed files are references
  EXPECT_GE(stats.patched_files, 2u);
  EXPECT_GE(stats.literal_files, 1u);
}

TEST_F(DeltaTest, VersionRenamedFileIsPatched) {
  std::mt19937_64 rng(2);
  Tree base{{"usr/lib/libfoo.so.1.2.3", {RandomText(rng, 50000), 0644}}};
  Tree target{{"usr/lib/libfoo.so.1.2.4", base["usr/lib/libfoo.so.1.2.3"]}};
  target["usr/lib/libfoo.so.1.2.4"].content[100] ^= 1;
  DeltaEncodeStats stats = RoundTrip({BuildTar(base, false)}, BuildTar(target, false));
  EXPECT_EQ(stats.patched_files, 1u);
  EXPECT_LT(stats.header.delta_length, 1000u);
}

TEST_F(DeltaTest, ContentFoundInAnotherBaseLayerIsAReference) {
  std::mt19937_64 rng(3);
  Tree lower{{"usr/lib/big.bin", {RandomText(rng, 200000), 0644}}};
  Tree upper{{"etc/conf", {"a=1\n", 0644}}};
  Tree target{{"opt/app/big-copy.bin", lower["usr/lib/big.bin"]}, {"etc/conf", {"a=2\n", 0644}}};
  DeltaEncodeStats stats =
      RoundTrip({BuildTar(lower, false), BuildTar(upper, false)}, BuildTar(target, false));
  EXPECT_EQ(stats.copied_files, 1u);
  EXPECT_LT(stats.header.delta_length, 2000u);
}

TEST_F(DeltaTest, EmptyAndIdenticalContentLayers) {
  std::mt19937_64 rng(4);
  Tree base = SampleTree(rng, 20);
  RoundTrip({BuildTar(base, true)}, TarBuilder().Finish());
  // Same files, written in a different order around extra entries: all references.
  Bytes reordered = [&] {
    TarBuilder tar;
    tar.Dir("usr").Dir("usr/lib").Dir("etc");
    for (auto it = base.rbegin(); it != base.rend(); ++it) tar.File(it->first, it->second.content);
    return tar.Finish();
  }();
  DeltaEncodeStats stats = RoundTrip({BuildTar(base, true)}, reordered);
  EXPECT_EQ(stats.copied_files, base.size());
  EXPECT_LT(stats.header.delta_length, 1500u);
}

TEST_F(DeltaTest, FileLargerThanTheWindowIsPatchedInChunks) {
  std::mt19937_64 rng(5);
  Tree base{{"usr/lib/huge.bin", {RandomText(rng, 3 << 20), 0644}}};
  Tree target = base;
  std::string& content = target["usr/lib/huge.bin"].content;
  content.insert(700000, "INSERTED BYTES");
  content.replace(2500000, 4, "XXXX");
  DeltaEncodeOptions options;
  options.window_log = 20;  // 1 MiB: chunks of 256 KiB
  DeltaEncodeStats stats = RoundTrip({BuildTar(base, false)}, BuildTar(target, false), options);
  EXPECT_EQ(stats.patched_files, 1u);
  EXPECT_EQ(stats.header.window_log, 20);
  EXPECT_LT(stats.header.delta_length, 20000u);
}

// A filtered file of several chunks: the chunks are cut from the filtered
// file and unfiltered as one stream, branches across chunk edges included.
TEST_F(DeltaTest, FilteredFileLargerThanTheWindowIsPatchedInChunks) {
  for (uint16_t machine : {testing::kElfX8664, testing::kElfAarch64, testing::kElfArm}) {
    SCOPED_TRACE(machine);
    std::mt19937_64 rng(machine + 1);
    const bool wide = machine != testing::kElfArm;
    const std::vector<uint64_t> functions = {400, 90000, 500000};
    std::string code = testing::CodeBody(rng, 900000, machine, functions, testing::kElfBodyOffset);
    Tree base{{"usr/lib/libbig.so.1", {testing::ElfFile(machine, code, wide)}}};
    code.insert(300000, testing::CodeBody(rng, 64, machine, functions, 0));
    Tree target{{"usr/lib/libbig.so.1", {testing::ElfFile(machine, code, wide)}}};
    DeltaEncodeOptions options;
    options.window_log = 20;  // 1 MiB: chunks of 256 KiB
    options.level = 3;        // (the round trip is the point, not the size)
    DeltaEncodeStats stats = RoundTrip({BuildTar(base, false)}, BuildTar(target, false), options);
    EXPECT_EQ(stats.patched_files, 1u);
    TearDown();
    SetUp();
  }
}

TEST_F(DeltaTest, ThreadsGiveTheSameDelta) {
  std::mt19937_64 rng(6);
  Tree base = SampleTree(rng, 40);
  Tree target = base;
  for (auto& [path, file] : target) file.content += "v2";
  Bytes base_tar = BuildTar(base, false), target_tar = BuildTar(target, false);
  DeltaEncodeOptions threaded;
  threaded.threads = 2;
  RoundTrip({base_tar}, target_tar, threaded);
  auto a = ReadFileBounded(dir_ / "layer.delta", 1 << 30);
  ASSERT_TRUE(
      EncodeDelta(*tracker_, {Digest::Of(base_tar)}, Digest::Of(target_tar), dir_ / "single.delta")
          .ok());
  auto b = ReadFileBounded(dir_ / "single.delta", 1 << 30);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b);
}

// Code inserted in the middle of a library moves every call after it: with
// branch filters the calls to functions before the insertion stay the same
// bytes, and the patch is much smaller; new ELF files are filtered too.
TEST_F(DeltaTest, BranchFiltersShrinkPatchesOfMovedCode) {
  for (uint16_t machine : {testing::kElfX8664, testing::kElfAarch64, testing::kElfArm}) {
    SCOPED_TRACE(machine);
    std::mt19937_64 rng(machine);
    const bool wide = machine != testing::kElfArm;
    const std::vector<uint64_t> functions = {400, 5000, 20000, 60000};
    const uint64_t body = testing::kElfBodyOffset;
    std::string head = testing::CodeBody(rng, 100000, machine, functions, body);
    std::string inserted = testing::CodeBody(rng, 600, machine, functions, body + 100000);
    std::mt19937_64 tail_rng = rng;  // the tail again, 600 bytes further on
    std::string tail_old = testing::CodeBody(rng, 100000, machine, functions, body + 100000);
    std::string tail_new = testing::CodeBody(tail_rng, 100000, machine, functions, body + 100600);
    Tree base, target;
    base["usr/lib/libcode.so.1"] = {testing::ElfFile(machine, head + tail_old, wide)};
    target["usr/lib/libcode.so.1"] = {testing::ElfFile(machine, head + inserted + tail_new, wide)};
    target["usr/bin/newtool"] = {
        testing::ElfFile(machine, testing::CodeBody(rng, 30000, machine, functions, body), wide)};
    const Bytes base_tar = BuildTar(base, false), target_tar = BuildTar(target, false);
    DeltaEncodeOptions options;
    options.level = 9;  // (faster; the comparison holds at any level)
    DeltaEncodeOptions plain = options;
    plain.branch_filters = false;
    DeltaEncodeStats unfiltered = RoundTrip({base_tar}, target_tar, plain);
    TearDown();
    SetUp();
    DeltaEncodeStats filtered = RoundTrip({base_tar}, target_tar, options);
    EXPECT_EQ(filtered.patched_files, 1u);
    EXPECT_EQ(filtered.literal_files, 1u);
    EXPECT_LT(filtered.header.patch_bytes * 2, unfiltered.header.patch_bytes)
        << filtered.header.patch_bytes << " vs " << unfiltered.header.patch_bytes;
    EXPECT_LT(filtered.header.delta_length, unfiltered.header.delta_length);
  }
}

// Makes a delta of a small edited layer and returns (delta path, target tar).
class DeltaRefusalTest : public DeltaTest {
 protected:
  void SetUp() override {
    DeltaTest::SetUp();
    std::mt19937_64 rng(7);
    base_tree_ = SampleTree(rng, 30);
    Tree& base = base_tree_;
    Tree target = base;
    target["usr/lib/file1.so.1"].content.replace(50, 8, "CHANGED!");
    target["usr/lib/brand-new"] = {RandomText(rng, 5000), 0644};
    base_tar_ = BuildTar(base, true);
    target_tar_ = BuildTar(target, true);
    base_ = Add(*tracker_, base_tar_);
    target_ = Add(*tracker_, target_tar_);
    delta_path_ = dir_ / "layer.delta";
    auto stats = EncodeDelta(*tracker_, {base_}, target_, delta_path_);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    ASSERT_GT(stats->header.literal_bytes, 0u);
    ASSERT_GT(stats->header.patch_bytes, 0u);
    auto bytes = ReadFileBounded(delta_path_, 1 << 30);
    ASSERT_TRUE(bytes.ok());
    delta_ = *bytes;
  }

  // Applies `delta` on the device store; expects failure with `code` and nothing kept.
  void ExpectRefused(const Bytes& delta, StatusCode code) {
    MemoryByteSource source(delta);
    const std::string out = dir_ / "rebuilt.tar";
    auto result = ApplyDeltaToFile(*device_, source, out);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), code) << result.status().ToString();
    EXPECT_FALSE(fs::exists(out));
    ExpectNoTempFiles();
  }

  Tree base_tree_;
  Bytes base_tar_, target_tar_;
  Digest base_, target_;
  std::string delta_path_;
  Bytes delta_;
};

TEST_F(DeltaRefusalTest, CorruptedDeltaIsRefusedAndNothingKept) {
  Add(*device_, base_tar_);
  auto header = ReadDeltaHeaderFile(delta_path_);
  ASSERT_TRUE(header.ok());
  const uint64_t trailer = delta_.size() - 32;
  const uint64_t patches = trailer - header->patch_bytes;
  const uint64_t literals = patches - header->literal_bytes;
  const uint64_t recipe = literals - header->recipe_bytes;
  for (uint64_t at : {recipe + 10, patches - 8, patches + 6, trailer + 3, recipe + 4}) {
    SCOPED_TRACE("byte " + std::to_string(at));
    Bytes bad = delta_;
    bad[at] ^= 0x40;
    ExpectRefused(bad, StatusCode::kCorruption);
  }
  Bytes bad_magic = delta_;
  bad_magic[0] = 'X';
  ExpectRefused(bad_magic, StatusCode::kCorruption);
  // A clean apply after the refusals works: nothing they left gets in the way.
  MemoryByteSource good(delta_);
  ASSERT_TRUE(ApplyDeltaToFile(*device_, good, dir_ / "rebuilt.tar").ok());
  EXPECT_TRUE(*ReadFileBounded(dir_ / "rebuilt.tar", 1 << 30) == target_tar_);
}

TEST_F(DeltaRefusalTest, TruncatedDeltaIsRefused) {
  Add(*device_, base_tar_);
  for (size_t keep : {size_t{0}, size_t{5}, size_t{60}, delta_.size() / 2, delta_.size() - 33,
                      delta_.size() - 1}) {
    SCOPED_TRACE("keep " + std::to_string(keep));
    ExpectRefused(Bytes(delta_.begin(), delta_.begin() + keep), StatusCode::kCorruption);
  }
  Bytes longer = delta_;
  longer.push_back(0);
  ExpectRefused(longer, StatusCode::kCorruption);
}

TEST_F(DeltaRefusalTest, WrongOrMissingBaseIsRefused) {
  std::mt19937_64 rng(8);
  Add(*device_, BuildTar(SampleTree(rng, 5), false));  // some other layer
  ExpectRefused(delta_, StatusCode::kNotFound);
}

TEST_F(DeltaRefusalTest, TamperedBaseFileIsRefused) {
  Add(*device_, base_tar_);
  auto tree = device_->LayerTreePath(base_);
  ASSERT_TRUE(tree.ok());
  std::ofstream(*tree + "/usr/lib/file2.so.2", std::ios::binary | std::ios::trunc) << "evil";
  ExpectRefused(delta_, StatusCode::kCorruption);
  ASSERT_TRUE(
      WriteFileAtomic(*tree + "/usr/lib/file2.so.2", base_tree_["usr/lib/file2.so.2"].content)
          .ok());
  std::string content = base_tree_["usr/lib/file4.so.4"].content;
  content[0] ^= 1;  // same size, other bytes: caught by the final digest
  ASSERT_TRUE(WriteFileAtomic(*tree + "/usr/lib/file4.so.4", content).ok());
  ExpectRefused(delta_, StatusCode::kCorruption);
}

TEST_F(DeltaRefusalTest, WindowAboveTheCapAndWrongTargetAreRefusedUpFront) {
  Add(*device_, base_tar_);
  MemoryByteSource source(delta_);
  DeltaApplyOptions options;
  options.max_window_log = 22;
  auto capped = ApplyDeltaToFile(*device_, source, dir_ / "out.tar", options);
  ASSERT_FALSE(capped.ok());
  EXPECT_EQ(capped.status().code(), StatusCode::kResourceExhausted);
  MemoryByteSource again(delta_);
  auto wrong = ApplyDeltaToFile(*device_, again, dir_ / "out.tar", {}, &base_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ / "out.tar"));
}

TEST_F(DeltaRefusalTest, HeaderAndApplyIntoTheStore) {
  auto header = ReadDeltaHeaderFile(delta_path_);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->bases, std::vector<Digest>{base_});
  EXPECT_EQ(header->target, target_);
  EXPECT_EQ(header->target_length, target_tar_.size());
  EXPECT_EQ(header->window_log, 23);
  EXPECT_EQ(header->delta_length, delta_.size());
  Add(*device_, base_tar_);
  MemoryByteSource source(delta_);
  DeltaApplyOptions options;
  options.temp_dir = dir_;
  options.unpack.allow_devices = true;
  auto layer = ApplyDeltaToStore(*device_, source, options, &target_);
  ASSERT_TRUE(layer.ok()) << layer.status().ToString();
  EXPECT_EQ(layer->diff_id, target_);
  Bytes regenerated;
  ASSERT_TRUE(device_
                  ->WriteLayerTar(target_,
                                  [&](ByteSpan b) {
                                    regenerated.insert(regenerated.end(), b.begin(), b.end());
                                    return Status::Ok();
                                  })
                  .ok());
  EXPECT_TRUE(regenerated == target_tar_);
  ExpectNoTempFiles();
}

TEST_F(DeltaRefusalTest, UnknownFormatVersionIsRefusedWithAClearError) {
  Add(*device_, base_tar_);
  for (uint8_t version : {uint8_t{1}, uint8_t{4}}) {
    Bytes other = delta_;
    other[8] = version;
    MemoryByteSource source(other);
    auto header = ReadDeltaHeader(source);
    ASSERT_FALSE(header.ok());
    EXPECT_NE(header.status().message().find("format version " + std::to_string(version) +
                                             " is not supported"),
              std::string::npos)
        << header.status().ToString();
    ExpectRefused(other, StatusCode::kCorruption);
  }
}

TEST_F(DeltaTest, EncoderRefusesBadArguments) {
  std::mt19937_64 rng(9);
  Digest layer = Add(*tracker_, BuildTar(SampleTree(rng, 3), false));
  const std::string out = dir_ / "x.delta";
  EXPECT_EQ(EncodeDelta(*tracker_, {}, layer, out).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeDelta(*tracker_, {layer}, layer, out).status().code(),
            StatusCode::kInvalidArgument);
  Digest missing = Digest::Of(std::string_view("nope"));
  EXPECT_EQ(EncodeDelta(*tracker_, {missing}, layer, out).status().code(), StatusCode::kNotFound);
  DeltaEncodeOptions wide;
  wide.window_log = 30;
  EXPECT_EQ(EncodeDelta(*tracker_, {missing}, layer, out, wide).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out));
}

// Random layer pairs: random edits, inserts, deletions, renames, chmods, new files.
TEST_F(DeltaTest, PropertyRandomPairsRoundTrip) {
  uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("FLOTILLA_DELTA_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::printf("delta property test seed: %llu (rerun with FLOTILLA_DELTA_SEED)\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 25; ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    Tree base = SampleTree(rng, 5 + rng() % 30);
    Tree target;
    for (const auto& [path, file] : base) {
      GenFile f = file;
      switch (rng() % 8) {
        case 0:
          continue;  // deleted
        case 1:
          f.content.insert(rng() % (f.content.size() + 1), RandomText(rng, rng() % 300));
          break;
        case 2:
          if (!f.content.empty()) f.content.erase(rng() % f.content.size(), rng() % 200);
          break;
        case 3:
          f.mode = 0600;
          break;
        case 4:
          target[path + ".moved"] = f;
          continue;
        default:
          break;
      }
      target[path] = f;
    }
    for (int i = rng() % 4; i > 0; --i)
      target["new/" + std::to_string(rng())] = {RandomText(rng, rng() % 4000)};
    DeltaEncodeOptions options;
    options.window_log = 20 + static_cast<int>(rng() % 4);
    options.level = 1 + static_cast<int>(rng() % 19);
    RoundTrip({BuildTar(base, rng() % 2 == 0)}, BuildTar(target, rng() % 2 == 0), options);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace flotilla::layerstore
