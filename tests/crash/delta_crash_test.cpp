// The delta rebuild under power cuts: two deltas applied into a device's
// store (ApplyDeltaToStore: rebuild the layer tar in a temporary file, then
// the verifying unpack) and the old layer removed, interrupted at every
// durable boundary and at 200 seeded write indices, then cut and reopened.
// The store must verify and hold every layer whose rebuild returned OK.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "layerstore/delta.h"
#include "layerstore/test_tar_builder.h"
#include "tests/crash/crash_harness.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using layerstore::LayerStore;
using Files = std::map<std::string, std::string>;

std::string Text(std::mt19937_64& rng, size_t n) {
  static const char* kWords[] = {"alpha ", "beta ", "gamma ", "delta\n", "usr/lib ", "1.2.3 "};
  std::string out;
  while (out.size() < n) out += kWords[rng() % 6];
  out.resize(n);
  return out;
}

Bytes Tar(const Files& files) {
  layerstore::testing::TarBuilder tar;
  tar.Dir("etc");
  for (const auto& [path, content] : files) tar.File(path, content);
  return tar.Finish();
}

Digest Add(LayerStore& store, const Bytes& tar) {
  layerstore::MemoryByteSource source(tar);
  auto info = store.UnpackLayer(source, Digest::Of(tar), tar.size(), {});
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  return Digest::Of(tar);
}

// A base layer, two releases of it, and the deltas from the base to each,
// made once on a tracker-side store.
struct Deltas {
  std::string dir, one, two;
  Bytes base_tar;
  Digest base, first, second;
  Deltas() {
    dir = ::testing::TempDir() + "/crash-deltas-" + std::to_string(::getpid());
    fs::remove_all(dir);
    std::mt19937_64 rng(7);
    Files v0;
    for (int i = 0; i < 70; ++i) v0["etc/f" + std::to_string(i)] = Text(rng, 500 + rng() % 2500);
    Files v1 = v0, v2;
    for (int i = 0; i < 8; ++i) v1["etc/f" + std::to_string(i)] += "changed in v1\n";
    for (int i = 0; i < 30; ++i) v1["etc/new" + std::to_string(i)] = Text(rng, 2000);
    v2 = v1;
    for (int i = 8; i < 20; ++i) v2["etc/f" + std::to_string(i)] = Text(rng, 3000);
    base_tar = Tar(v0);
    auto tracker = LayerStore::Open(dir + "/tracker").value();
    base = Add(*tracker, base_tar);
    first = Add(*tracker, Tar(v1));
    second = Add(*tracker, Tar(v2));
    one = dir + "/one.delta";
    two = dir + "/two.delta";
    EXPECT_TRUE(layerstore::EncodeDelta(*tracker, {base}, first, one).ok());
    EXPECT_TRUE(layerstore::EncodeDelta(*tracker, {base}, second, two).ok());
  }
  ~Deltas() { fs::remove_all(dir); }
};

class DeltaScenario final : public CrashScenario {
 public:
  explicit DeltaScenario(const Deltas& deltas) : deltas_(deltas) {}

  void SetUp(Env& env, const std::string& dir) override {
    fs::create_directories(dir + "/tmp");
    auto store = LayerStore::Open(dir + "/store", env).value();
    Add(*store, deltas_.base_tar);
  }
  size_t steps() const override { return 4; }

  Status RunStep(Env& env, const std::string& dir, size_t i) override {
    switch (i) {
      case 0: {
        ASSIGN_OR_RETURN(store_, LayerStore::Open(dir + "/store", env));
        return Status::Ok();
      }
      case 1:
        return Apply(dir, deltas_.one);
      case 2:
        return Apply(dir, deltas_.two);
      case 3:
        return store_->RemoveLayer(deltas_.first);
    }
    return Internal("no such step");
  }
  void Close() override { store_.reset(); }

  std::set<Digest> LayersAfter(size_t steps) const {
    const Digest& b = deltas_.base;
    const std::set<Digest> after[] = {
        {b}, {b}, {b, deltas_.first}, {b, deltas_.first, deltas_.second}, {b, deltas_.second}};
    return after[std::min<size_t>(steps, 4)];
  }

  void Check(Env& env, const std::string& dir, size_t done) override {
    store_ = LayerStore::Open(dir + "/store", env).value();
    auto report = store_->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->problems.empty()) << report->problems.front();
    std::set<Digest> ready;
    auto layers = store_->ListLayers();
    ASSERT_TRUE(layers.ok()) << layers.status().ToString();
    for (const auto& layer : *layers) {
      if (layer.state == layerstore::LayerState::kReady) ready.insert(layer.diff_id);
    }
    EXPECT_TRUE(ready == LayersAfter(done) || ready == LayersAfter(done + 1))
        << done << " steps returned OK; the store holds " << ready.size() << " layers";
    Status again = Apply(dir, deltas_.two);
    EXPECT_TRUE(again.ok()) << again.ToString();
    store_.reset();
  }

 private:
  Status Apply(const std::string& dir, const std::string& delta) {
    ASSIGN_OR_RETURN(auto source, layerstore::OpenFileSource(delta));
    layerstore::DeltaApplyOptions options;
    options.temp_dir = dir + "/tmp";
    return layerstore::ApplyDeltaToStore(*store_, *source, options).status();
  }

  const Deltas& deltas_;
  std::unique_ptr<LayerStore> store_;
};

TEST(DeltaCrashTest, RebuiltLayersSurviveAPowerCutAtEveryStep) {
  Deltas deltas;
  ASSERT_FALSE(::testing::Test::HasFailure());
  RunCrashMatrix([&] { return std::make_unique<DeltaScenario>(deltas); }, CrashMatrix{});
}

}  // namespace
}  // namespace flotilla::testing
