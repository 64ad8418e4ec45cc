// libFuzzer target over the delta decoder: the fuzz input is a delta file as
// it arrives from a peer or the origin. Once per process it builds a small
// real layer store (in a temporary directory) holding one base layer (text,
// ELF code, a file of repeated blocks, a file of several patch chunks, an
// empty file, links); then, per input, it writes the bytes to a file and runs
// the device's entry points on it: ReadDeltaHeaderFile and ApplyDeltaToFile
// against that store.
//
// An input that does not start with the delta magic is read as a delta's
// sections in the clear (ClearSections below) and wrapped in a well-formed
// delta over the real base, so that the recipe's records, the paths they name
// and the patch and literal sections they consume are reached without the
// fuzzer having to make a valid zstd frame of the recipe.
//
// Any crash, sanitizer report, leak, hang or allocation past libFuzzer's
// -rss_limit_mb is a bug; so is an apply that writes anywhere but beside its
// output, writes a file larger than the caller's bound, leaves a file beside
// its output (a failed apply must leave nothing, a successful one exactly its
// output) or changes anything in the store.
//
// Seeds: with FLOTILLA_DELTA_FUZZ_SEEDS=DIR set, start-up also encodes a few
// target layers against the base with the project's encoder and writes the
// deltas, truncated copies of them and their sections in the clear to DIR;
// layerstore/fuzz/corpus holds the inputs of past findings.
// Built and run by scripts/fuzz.sh delta.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// Bounds every applier's write: while watching, a file may be written,
// renamed or removed only inside `allowed_dir`, and no file may grow past
// `max_bytes`.
class WatchedEnv final : public Env {
 public:
  void Watch(std::string allowed_dir, uint64_t max_bytes) {
    allowed_dir_ = std::move(allowed_dir) + "/";
    max_bytes_ = max_bytes;
  }

  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path, OpenMode mode,
                                                     mode_t perms) override {
    CheckPath(path);
    ASSIGN_OR_RETURN(auto file, base_.OpenForWrite(path, mode, perms));
    return std::unique_ptr<WritableFile>(new File(std::move(file), path, max_bytes_));
  }
  Result<std::unique_ptr<WritableFile>> OpenForWriteAt(int dir_fd, const std::string& name,
                                                       OpenMode mode, mode_t perms) override {
    if (!allowed_dir_.empty()) Fail("the applier wrote '" + name + "' through a directory");
    return base_.OpenForWriteAt(dir_fd, name, mode, perms);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    CheckPath(from);
    CheckPath(to);
    return base_.Rename(from, to);
  }
  Status Unlink(const std::string& path) override {
    CheckPath(path);
    return base_.Unlink(path);
  }
  Status MakeDir(const std::string& path, mode_t perms) override {
    CheckPath(path);
    return base_.MakeDir(path, perms);
  }
  Status RemoveTree(const std::string& path) override {
    CheckPath(path);
    return base_.RemoveTree(path);
  }
  Status SyncDir(const std::string& path) override { return base_.SyncDir(path); }
  Status SyncFilesystem(const std::string& path) override { return base_.SyncFilesystem(path); }

 private:
  class File final : public WritableFile {
   public:
    File(std::unique_ptr<WritableFile> file, std::string path, uint64_t max_bytes)
        : file_(std::move(file)), path_(std::move(path)), max_bytes_(max_bytes) {}
    Status Append(ByteSpan data) override {
      CheckSize(offset_ += data.size());
      return file_->Append(data);
    }
    Status WriteAt(ByteSpan data, uint64_t offset) override {
      CheckSize(offset + data.size());
      return file_->WriteAt(data, offset);
    }
    Status Truncate(uint64_t size) override {
      CheckSize(size);
      return file_->Truncate(size);
    }
    Status Sync() override { return file_->Sync(); }
    Status Close() override { return file_->Close(); }
    int fd() const override { return file_->fd(); }

   private:
    void CheckSize(uint64_t size) const {
      if (max_bytes_ != 0 && size > max_bytes_) {
        Fail("the applier wrote " + std::to_string(size) + " bytes to " + path_);
      }
    }
    std::unique_ptr<WritableFile> file_;
    std::string path_;
    uint64_t max_bytes_;
    uint64_t offset_ = 0;
  };

  void CheckPath(const std::string& path) const {
    if (!allowed_dir_.empty() && path.rfind(allowed_dir_, 0) != 0) {
      Fail("the applier wrote outside its output's directory: " + path);
    }
  }

  Env& base_ = Env::Default();
  std::string allowed_dir_;  // empty: not watching
  uint64_t max_bytes_ = 0;
};

uint64_t TakeLittleEndian(ByteSpan& input, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes && !input.empty(); ++i) {
    value |= uint64_t{input[0]} << (8 * i);
    input = input.subspan(1);
  }
  return value;
}

void PutLittleEndian(Bytes& out, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

ByteSpan TakeBytes(ByteSpan& input, uint64_t n) {
  ByteSpan taken = input.first(std::min<uint64_t>(n, input.size()));
  input = input.subspan(taken.size());
  return taken;
}

// The bound on what one input may make the applier write (and so on the time
// it takes): every file it writes, and the rebuilt layer.
inline constexpr uint64_t kMaxWrite = 16 << 20;

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
    store_ = Check(LayerStore::Open(dir_ + "/store", env_), "open the store");
    base_ = AddLayer(*store_, BaseTar(contents));
    store_listing_ = Listing(dir_ + "/store");
    env_.Watch(dir_ + "/out", kMaxWrite);
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
    auto applied = ApplyDeltaToFile(*store_, *source, Output(), Options());
    if (applied.ok() && !header.ok()) Fail("applied a delta whose header does not parse");
    CheckOutputs(applied.ok());
    return applied.ok();
  }

  // An input in the clear: u16 recipe_length, u16 literal_bytes, u16
  // literal_frames, u32 literal_length (little-endian), then the decompressed
  // recipe, the literal section and the patch section (the rest), wrapped in
  // a delta over the real base whose header and trailer are right.
  void ApplyClearSections(ByteSpan input) {
    WireHeader wire;
    DeltaHeader& h = wire.header;
    h.bases = {base_};
    h.target = Digest::Of(input);
    h.target_length = kMaxWrite;
    h.window_log = kMinDeltaWindowLog;
    const uint64_t recipe_length = TakeLittleEndian(input, 2);
    h.literal_bytes = TakeLittleEndian(input, 2);
    h.literal_frames = TakeLittleEndian(input, 2);
    h.literal_length = TakeLittleEndian(input, 4);
    const ByteSpan recipe = TakeBytes(input, recipe_length);
    const ByteSpan literal = TakeBytes(input, h.literal_bytes);
    h.literal_bytes = literal.size();
    h.patch_bytes = input.size();
    auto compressed = CompressWithPrefix(recipe, {}, 1, h.window_log);
    if (!compressed.ok()) Fail("compress a recipe: " + compressed.status().ToString());
    h.recipe_length = recipe.size();
    h.recipe_bytes = compressed->size();
    Bytes delta = EncodeHeader(wire);
    delta.insert(delta.end(), compressed->begin(), compressed->end());
    delta.insert(delta.end(), literal.begin(), literal.end());
    delta.insert(delta.end(), input.begin(), input.end());
    const Digest trailer = Digest::Of(delta);
    delta.insert(delta.end(), trailer.bytes().begin(), trailer.bytes().end());
    MemoryByteSource source(delta);
    auto applied = ApplyDeltaToFile(*store_, source, Output(), Options());
    CheckOutputs(applied.ok());
  }

 private:
  std::string Output() const { return dir_ + "/out/layer.tar"; }
  // The device's window cap; the rebuilt layer bounded by kMaxWrite.
  static DeltaApplyOptions Options() {
    DeltaApplyOptions options;
    options.max_target_bytes = kMaxWrite;
    return options;
  }

  // A seed delta's sections in the clear (the format ApplyClearSections reads).
  Bytes ClearSections(ByteSpan delta) {
    size_t pos = kMagic.size() + 1;
    const uint64_t body = Check(GetVarint(delta, pos), "a seed's header size");
    const WireHeader wire = Check(DecodeHeaderBody(delta.subspan(pos, body)), "a seed's header");
    pos += body;
    const DeltaHeader& h = wire.header;
    const Bytes prefix =
        Check(BaseRecipeTail(*store_, base_, 0, wire.prefix_length), "a seed's recipe prefix");
    Bytes recipe;
    PrefixDecompressor decoder(h.window_log);
    CheckOk(decoder.Begin(prefix, h.recipe_length,
                          [&](ByteSpan b) {
                            recipe.insert(recipe.end(), b.begin(), b.end());
                            return Status::Ok();
                          }),
            "decode a seed's recipe");
    CheckOk(decoder.Write(delta.subspan(pos, h.recipe_bytes)), "decode a seed's recipe");
    CheckOk(decoder.End(), "decode a seed's recipe");
    pos += h.recipe_bytes;
    if (recipe.size() > 0xffff || h.literal_bytes > 0xffff) Fail("a seed's recipe is too large");
    Bytes out;
    PutLittleEndian(out, recipe.size(), 2);
    PutLittleEndian(out, h.literal_bytes, 2);
    PutLittleEndian(out, h.literal_frames, 2);
    PutLittleEndian(out, h.literal_length, 4);
    out.insert(out.end(), recipe.begin(), recipe.end());
    const ByteSpan sections = delta.subspan(pos, h.literal_bytes + h.patch_bytes);
    out.insert(out.end(), sections.begin(), sections.end());
    return out;
  }

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
  // store (which holds the targets too), their truncations and their
  // sections in the clear.
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
        WriteBytes(path + "-clear", ClearSections(delta));
      }
    }
    tracker.reset();
    fs::remove_all(dir_ + "/tracker");
  }

  std::string dir_;
  WatchedEnv env_;
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
  if (size >= 8 && std::memcmp(data, "FLTDELTA", 8) == 0) {
    flotilla::layerstore::fixture->ApplyFile(input);
  } else {
    flotilla::layerstore::fixture->ApplyClearSections(input);
  }
  return 0;
}
