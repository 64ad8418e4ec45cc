// The layer store under power cuts: a sequence of imports, a removal and a
// garbage collection, interrupted at every durable boundary and at 200
// seeded write indices, then cut and reopened. The store must verify, hold
// every image whose import returned OK (and not one whose removal returned
// OK), and take the next import.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "core/canonical_json.h"
#include "layerstore/layer_store.h"
#include "layerstore/test_tar_builder.h"
#include "tests/crash/crash_harness.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using layerstore::LayerStore;

// A layer of `files` files of 1-6 KiB (one write each, so a crash can land
// between any two), seeded by `seed`.
Bytes MakeLayer(uint64_t seed, int files) {
  std::mt19937_64 rng(seed);
  layerstore::testing::TarBuilder tar;
  const std::string dir = "d" + std::to_string(seed);
  tar.Dir(dir);
  for (int i = 0; i < files; ++i) {
    std::string content(1024 + rng() % 5120, '\0');
    for (char& c : content) c = static_cast<char>('a' + rng() % 26);
    tar.File(dir + "/f" + std::to_string(i), content);
  }
  return tar.Finish();
}

void WriteBlob(const std::string& layout, ByteSpan bytes, Json& descriptor) {
  Digest digest = Digest::Of(bytes);
  std::ofstream(layout + "/blobs/sha256/" + digest.Hex(), std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  descriptor["digest"] = digest.ToString();
  descriptor["size"] = bytes.size();
}

// An OCI image layout directory holding one image of `layers` named `ref`.
void WriteImage(const std::string& layout, const std::vector<Bytes>& layers,
                const std::string& ref) {
  fs::create_directories(layout + "/blobs/sha256");
  Json descriptors = Json::array(), diff_ids = Json::array();
  for (const Bytes& layer : layers) {
    Json d = {{"mediaType", "application/vnd.oci.image.layer.v1.tar"}};
    WriteBlob(layout, layer, d);
    diff_ids.push_back(d["digest"]);
    descriptors.push_back(d);
  }
  const layerstore::Platform host = layerstore::Platform::Host();
  Json config = {{"os", host.os},
                 {"architecture", host.architecture},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  if (!host.variant.empty()) config["variant"] = host.variant;
  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}}},
                   {"layers", descriptors}};
  WriteBlob(layout, AsBytes(config.dump()), manifest["config"]);
  Json entry = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"annotations", {{"org.opencontainers.image.ref.name", ref}}}};
  WriteBlob(layout, AsBytes(manifest.dump()), entry);
  std::ofstream(layout + "/index.json")
      << Json{{"schemaVersion", 2}, {"manifests", {entry}}}.dump();
  std::ofstream(layout + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
}

// Two images sharing a base layer, outside the store (written once).
struct Images {
  std::string dir, a, b;
  Images() {
    dir = ::testing::TempDir() + "/crash-images-" + std::to_string(::getpid());
    fs::remove_all(dir);
    const Bytes base = MakeLayer(1, 40), app_a = MakeLayer(2, 30), app_b = MakeLayer(3, 20);
    a = dir + "/a";
    b = dir + "/b";
    WriteImage(a, {base, app_a}, "a:1");
    WriteImage(b, {base, app_b}, "b:1");
  }
  ~Images() { fs::remove_all(dir); }
};

// The steps and, after each, which images the store holds.
class StoreScenario final : public CrashScenario {
 public:
  explicit StoreScenario(const Images& images) : images_(images) {}
  size_t steps() const override { return 6; }

  Status RunStep(Env& env, const std::string& dir, size_t i) override {
    switch (i) {
      case 0: {
        ASSIGN_OR_RETURN(store_, LayerStore::Open(dir + "/store", env));
        return Status::Ok();
      }
      case 1:
      case 5:
        return store_->ImportImage(images_.a, {}).status();
      case 2:
        return store_->ImportImage(images_.b, {}).status();
      case 3:
        return store_->RemoveImage("a:1");
      case 4:
        return store_->CollectGarbage().status();
    }
    return Internal("no such step");
  }
  void Close() override { store_.reset(); }

  // The refs held after `steps` steps returned OK.
  static std::set<std::string> RefsAfter(size_t steps) {
    static const std::set<std::string> kAfter[] = {{},      {},      {"a:1"},       {"a:1", "b:1"},
                                                   {"b:1"}, {"b:1"}, {"a:1", "b:1"}};
    return kAfter[std::min<size_t>(steps, 6)];
  }

  void Check(Env& env, const std::string& dir, size_t done) override {
    if (done == 0 && !fs::exists(dir + "/store")) return;  // cut before the store existed
    auto store = LayerStore::Open(dir + "/store", env);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto report = (*store)->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->problems.empty()) << report->problems.front();
    std::set<std::string> refs;
    auto images = (*store)->ListImages();
    ASSERT_TRUE(images.ok()) << images.status().ToString();
    for (const auto& image : *images) {
      refs.insert(image.refs.begin(), image.refs.end());
    }
    EXPECT_TRUE(refs == RefsAfter(done) || refs == RefsAfter(done + 1))
        << done << " steps returned OK; the store holds " << Json(refs).dump();
    auto again = (*store)->ImportImage(images_.b, {});
    EXPECT_TRUE(again.ok()) << again.status().ToString();
  }

 private:
  const Images& images_;
  std::unique_ptr<LayerStore> store_;
};

TEST(StoreCrashTest, ImportsRemovalAndGcSurviveAPowerCutAtEveryStep) {
  Images images;
  RunCrashMatrix([&] { return std::make_unique<StoreScenario>(images); }, CrashMatrix{});
}

}  // namespace
}  // namespace flotilla::testing
