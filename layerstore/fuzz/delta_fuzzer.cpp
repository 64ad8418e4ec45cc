// libFuzzer target over the delta decoder: the fuzz input is a delta file as
// it arrives from a peer or the origin. Once per process it builds a small
// real layer store (in a temporary directory) holding one base layer (text,
// ELF code, a file of repeated blocks, a file of several patch chunks, an
// empty file, links); then, per input, it writes the bytes to a file and runs
// the device's entry points on it: ReadDeltaHeaderFile and ApplyDeltaToFile
// against that store. The same bytes also go through the applier as a recipe
// (wrapped in a well-formed delta around the real base), so that the recipe's
// records and the paths they name are reached without a valid zstd frame.
//
// Any crash, sanitizer report, leak, hang or allocation past libFuzzer's
// -rss_limit_mb is a bug; so is an apply that leaves a file beside its output
// (a failed one must leave nothing, a successful one exactly its output) or
// changes anything in the store.
//
// Seeds: with FLOTILLA_DELTA_FUZZ_SEEDS=DIR set, start-up also encodes a few
// target layers against the base with the project's encoder and writes the
// deltas (and truncated copies of them, and the base's serialized recipe) to
// DIR. Built and run by scripts/fuzz.sh delta.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "layerstore/delta.h"
#include "layerstore/delta_format.h"
#include "layerstore/delta_zstd.h"
#include "layerstore/test_elf.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

namespace fs = std::filesystem;
using namespace delta_internal;  // NOLINT: the codec's own internals
using testing::TarBuilder;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "delta_fuzzer: %s\n", what.c_str());
  std::abort();
}

void CheckOk(const Status& status, const char* what) {
  if (!status.ok()) Fail(std::string(what) + ": " + status.ToString());
}

template <typename T>
T Check(Result<T> result, const char* what) {
  if (!result.ok()) Fail(std::string(what) + ": " + result.status().ToString());
  return std::move(result).value();
}

// The files of the layers the fuzzer works with. Deterministic: every process
// builds the same base (same diff_id), so a saved input reproduces anywhere.
struct Contents {
  std::string licence, list, code, code_next, blocks, big;
};

Contents MakeContents() {
  Contents c;
  for (int i = 1; i <= 40; ++i) {
    c.licence += "Permission is granted to copy line " + std::to_string(i) + " of this licence.\n";
  }
  for (int i = 1; i <= 300; ++i) c.list += std::to_string(i) + "\n";
  std::mt19937_64 rng(7);
  using testing::CodeBody, testing::ElfFile, testing::kElfBodyOffset, testing::kElfX8664;
  const std::vector<uint64_t> calls = {kElfBodyOffset + 64, kElfBodyOffset + 2048};
  c.code = ElfFile(kElfX8664, CodeBody(rng, 6000, kElfX8664, calls, kElfBodyOffset));
  c.code_next = ElfFile(kElfX8664, CodeBody(rng, 6500, kElfX8664, calls, kElfBodyOffset));
  const std::string block(4096, 'B');
  c.blocks = block + block + block + std::string(4096, 'C') + block;
  // Two patch chunks at the smallest window (2^20: chunks of 256 KiB).
  for (size_t i = 0; c.big.size() < 300 * 1024; ++i)
    c.big += "row " + std::to_string(i * 7919) + ";";
  return c;
}

Bytes BaseTar(const Contents& c) {
  TarBuilder tar;
  tar.Dir("etc").Dir("usr").Dir("usr/lib").Dir("usr/share").Dir("usr/share/doc");
  tar.File("etc/motd", "hello\n").File("etc/list", c.list);
  tar.File("usr/share/doc/copyright", c.licence);
  tar.File("usr/lib/libfoo.so.1.2.3", c.code, 0755);
  tar.Symlink("usr/lib/libfoo.so", "libfoo.so.1.2.3");
  tar.Hardlink("etc/motd.hard", "etc/motd");
  tar.File("data.blocks", c.blocks).File("data.big", c.big).File("empty", "");
  return tar.Finish();
}

// Targets the seeds rebuild: every op (COPY by path and by content, PATCH of
// one and of several chunks, LITERAL frames of several kinds), and a layer
// with no files.
std::vector<Bytes> TargetTars(const Contents& c) {
  std::vector<Bytes> tars;
  {
    std::string big = c.big;
    big[1000] = 'X';
    big[290 * 1024] = 'Y';
    std::string blocks = c.blocks;
    blocks[4096 * 4 + 10] = 'D';
    TarBuilder tar;
    tar.Dir("etc").Dir("usr").Dir("usr/lib");
    tar.File("etc/motd", "hello, world\n").File("etc/list", c.list + "301\n");
    tar.File("usr/share/doc/b/copyright", c.licence + "One line more.\n");
    tar.File("usr/lib/libfoo.so.1.2.4", c.code_next, 0755);
    tar.File("usr/lib/libbar.so.1", c.code.substr(0, 3000) + c.list, 0755);
    tar.File("data.blocks", blocks).File("data.big", big).File("moved", c.licence);
    tar.File("archive.gz", std::string("\x1f\x8b\x08\x00", 4) + c.list.substr(0, 700));
    tar.File("opaque.bin", std::string("\0\1\2\3", 4) + c.list.substr(100, 900));
    tars.push_back(tar.Finish());
  }
  {
    TarBuilder tar;
    tar.File("empty", "").File("etc/motd", "hello\n").File("copy-of-list", c.list);
    tar.Symlink("link", "../../etc/passwd");
    tars.push_back(tar.Finish());
  }
  {
    TarBuilder tar;
    tar.Dir("only-a-directory");
    tars.push_back(tar.Finish());
  }
  return tars;
}

Digest AddLayer(LayerStore& store, const Bytes& tar) {
  MemoryByteSource source(tar);
  const Digest id = Digest::Of(tar);
  CheckOk(store.UnpackLayer(source, id, tar.size(), UnpackOptions{}).status(), "unpack a layer");
  return id;
}

void WriteBytes(const std::string& path, ByteSpan bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) Fail("cannot write " + path);
}

// Every path under `root` with its size (directories as -1).
std::vector<std::pair<std::string, int64_t>> Listing(const std::string& root) {
  std::vector<std::pair<std::string, int64_t>> entries;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    entries.emplace_back(e.path().string(),
                         e.is_regular_file() ? static_cast<int64_t>(e.file_size()) : -1);
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

class Fixture {
 public:
  Fixture() {
    std::string tmp = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    std::string templ = tmp + "/flotilla-delta-fuzz-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) Fail("mkdtemp " + templ);
    dir_ = buf.data();
    fs::create_directories(dir_ + "/out");
    const Contents contents = MakeContents();
    store_ = Check(LayerStore::Open(dir_ + "/store"), "open the store");
    base_ = AddLayer(*store_, BaseTar(contents));
    store_listing_ = Listing(dir_ + "/store");
    if (const char* seeds = std::getenv("FLOTILLA_DELTA_FUZZ_SEEDS")) {
      WriteSeeds(contents, seeds);
    }
  }
  ~Fixture() {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // The device's path: the delta is a file, its header read, then applied.
  // True if it rebuilt its target.
  bool ApplyFile(ByteSpan delta) {
    const std::string path = dir_ + "/input.delta";
    WriteBytes(path, delta);
    auto header = ReadDeltaHeaderFile(path);
    auto source = Check(OpenFileSource(path), "open the input");
    DeltaApplyOptions options;
    // Bounds the bytes an input may make the applier write (and the time it
    // takes); the window cap is the device's default.
    options.max_target_bytes = 16 << 20;
    auto applied = ApplyDeltaToFile(*store_, *source, Output(), options);
    if (applied.ok() && !header.ok()) Fail("applied a delta whose header does not parse");
    CheckOutputs(applied.ok());
    return applied.ok();
  }

  // The bytes as the recipe of a well-formed delta over the real base.
  void ApplyRecipe(ByteSpan recipe) {
    WireHeader wire;
    DeltaHeader& h = wire.header;
    h.bases = {base_};
    h.target = Digest::Of(recipe);
    h.target_length = 1 << 20;
    h.window_log = kMinDeltaWindowLog;
    auto compressed = CompressWithPrefix(recipe, {}, 1, h.window_log);
    if (!compressed.ok()) return;
    h.recipe_length = recipe.size();
    h.recipe_bytes = compressed->size();
    Bytes delta = EncodeHeader(wire);
    delta.insert(delta.end(), compressed->begin(), compressed->end());
    const Digest trailer = Digest::Of(delta);
    delta.insert(delta.end(), trailer.bytes().begin(), trailer.bytes().end());
    MemoryByteSource source(delta);
    auto applied = ApplyDeltaToFile(*store_, source, Output());
    CheckOutputs(applied.ok());
  }

 private:
  std::string Output() const { return dir_ + "/out/layer.tar"; }

  // A failed apply leaves nothing in out/, a successful one its output only;
  // the store is never touched.
  void CheckOutputs(bool applied) {
    auto outputs = Listing(dir_ + "/out");
    if (applied) {
      if (outputs.size() != 1 || outputs[0].first != Output()) Fail("apply left extra files");
      fs::remove(Output());
    } else if (!outputs.empty()) {
      Fail("a failed apply left " + outputs[0].first);
    }
    if ((++applies_ % 64) == 0 && Listing(dir_ + "/store") != store_listing_) {
      Fail("an apply changed the store");
    }
  }

  // Deltas of each target against the base, made by the encoder in a second
  // store (which holds the targets too), their truncations, and the base's
  // serialized recipe.
  void WriteSeeds(const Contents& contents, const std::string& out_dir) {
    auto tracker = Check(LayerStore::Open(dir_ + "/tracker"), "open the tracker store");
    AddLayer(*tracker, BaseTar(contents));
    int n = 0;
    for (const Bytes& tar : TargetTars(contents)) {
      const Digest target = AddLayer(*tracker, tar);
      for (bool filters : {true, false}) {
        DeltaEncodeOptions options;
        options.window_log = kMinDeltaWindowLog;
        options.level = 3;
        options.branch_filters = filters;
        const std::string path = out_dir + "/seed-" + std::to_string(n++);
        Check(EncodeDelta(*tracker, {base_}, target, path, options), "encode a seed");
        Bytes delta = Check(ReadFileBounded(path, 1 << 20), "read a seed");
        if (!ApplyFile(delta)) Fail("a seed does not apply: " + path);
        for (size_t cut : {delta.size() / 3, delta.size() / 2, delta.size() - 33}) {
          WriteBytes(path + "-cut-" + std::to_string(cut), ByteSpan(delta).first(cut));
        }
      }
    }
    Bytes recipe;
    CheckOk(SerializeBaseRecipe(*store_, base_, 0,
                                [&](ByteSpan b) {
                                  recipe.insert(recipe.end(), b.begin(), b.end());
                                  return Status::Ok();
                                }),
            "serialize the base recipe");
    WriteBytes(out_dir + "/seed-base-recipe", recipe);
    tracker.reset();
    fs::remove_all(dir_ + "/tracker");
  }

  std::string dir_;
  std::unique_ptr<LayerStore> store_;
  Digest base_;
  std::vector<std::pair<std::string, int64_t>> store_listing_;
  uint64_t applies_ = 0;
};

Fixture* fixture = nullptr;

}  // namespace
}  // namespace flotilla::layerstore

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using flotilla::layerstore::Fixture;
  flotilla::layerstore::fixture = new Fixture();
  std::atexit([] { delete flotilla::layerstore::fixture; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flotilla::ByteSpan input(data, size);
  flotilla::layerstore::fixture->ApplyFile(input);
  flotilla::layerstore::fixture->ApplyRecipe(input);
  return 0;
}
